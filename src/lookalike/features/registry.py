"""Named feature extractors.

An extractor turns a decoded image into one stored value (a numpy array). It declares its name,
version (bumped whenever its output changes, so stale rows are recomputed), kind and size:

    @register
    class PHash(Extractor):
        name, version, kind, dim = "phash", "1", "binary", 64
        def compute(self, img): ...

Heavy extractors (CNN, segmentation) create their models lazily, once per worker process.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from lookalike.imageio import Decoded
from lookalike.imageio.load import opencv

opencv()  # every extractor may use OpenCV: one thread each, parallelism comes from worker processes


class Extractor:
    name: ClassVar[str]
    version: ClassVar[str]
    kind: ClassVar[str]  # "binary" (packed uint8 bits), "float" (float32 vector) or "blob" (bytes)
    dim: ClassVar[int]  # bits for binary, length for float, 0 for blob
    needs_model: ClassVar[str | None] = None

    def compute(self, img: Decoded) -> np.ndarray | bytes:
        raise NotImplementedError

    def value(self, img: Decoded):
        """compute() in the form decode() gives a stored row (the same object for array kinds)."""
        out = self.compute(img)
        return self.decode(bytes(out)) if self.kind == "blob" and isinstance(out, (bytes, bytearray)) else out

    def compute_batch(self, imgs: list[Decoded]) -> list[np.ndarray | bytes]:
        return [self.compute(im) for im in imgs]

    # storage: float vectors as float16 (half the bytes, no loss that matters for cosine search)
    def encode(self, value) -> bytes:
        if self.kind == "float":
            return np.asarray(value, dtype=np.float16).tobytes()
        if self.kind == "binary":
            return np.asarray(value, dtype=np.uint8).tobytes()
        return bytes(value)

    def decode(self, blob: bytes):
        if self.kind == "float":
            return np.frombuffer(blob, dtype=np.float16).astype(np.float32)
        if self.kind == "binary":
            return np.frombuffer(blob, dtype=np.uint8)
        return blob


_REGISTRY: dict[str, type[Extractor]] = {}
_INSTANCES: dict[str, Extractor] = {}


def register(cls: type[Extractor]) -> type[Extractor]:
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtin() -> None:
    import lookalike.features.hashes  # noqa: F401  (registers the hash family)
    import lookalike.features.deep  # noqa: F401  (CNN, SIFT, thumbnails: lazy models)
    import lookalike.features.regions  # noqa: F401  (pictures inside screenshots and collages: copy mode)
    import lookalike.features.background  # noqa: F401  (person mask, masked CNN, background colour/keypoints)
    import lookalike.features.faces  # noqa: F401  (every face: box, quality, 128-d embedding)
    import lookalike.features.walltext  # noqa: F401  (OCR of the background: "walltext", rapidocr loaded lazily)
    import lookalike.features.classes  # noqa: F401  (ImageNet logits, Lite2 descriptor: text search)
    import lookalike.features.vae  # noqa: F401  (bg_vae: the index's own background auto-encoder)


def names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def check(names) -> None:
    """ValueError naming the unknown features among `names` and the known ones."""
    _load_builtin()
    bad = [n for n in names if n not in _REGISTRY]
    if bad:
        raise ValueError(f"unknown feature {', '.join(map(repr, bad))}; known: {', '.join(sorted(_REGISTRY))}")


def get(name: str) -> Extractor:
    _load_builtin()
    if name not in _REGISTRY:
        raise KeyError(f"unknown feature {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    if name not in _INSTANCES:
        _INSTANCES[name] = _REGISTRY[name]()
    return _INSTANCES[name]

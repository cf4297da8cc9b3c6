"""Model-backed extractors: CNN global descriptor and SIFT local features (models load lazily,
once per worker process)."""

from __future__ import annotations

import numpy as np

from lookalike.features import registry
from lookalike.features.registry import Extractor, register
from lookalike.imageio import Decoded


@register
class CnnGlobal(Extractor):
    """EfficientNet-Lite0 conv features, GeM-pooled, L2-normalised (1280-d): similar/copy candidates."""

    kind, dim, needs_model = "float", 1280, "efficientnet-lite0"
    name = "cnn"

    def __init__(self):
        from lookalike.features.cnn import CnnDescriptor

        self.net = CnnDescriptor("efficientnet-lite0", threads=1)
        self.version = f"{self.net.name}/v{self.net.version}"

    def compute(self, img: Decoded) -> np.ndarray:
        return self.net.embed([img.rgb])[0]

    def compute_batch(self, imgs):
        return list(self.net.embed([im.rgb for im in imgs])) if imgs else []


@register
class CnnGlobalLarge(CnnGlobal):
    """EfficientNet-Lite2 conv features, GeM-pooled, L2-normalised (1280-d): the `similar` descriptor
    (same place or object). Retrieval mAP on the dev set 0.850 against 0.808 for Lite0, at 1.4x the
    cost; computed only when `similar` is first used, as copy candidates keep Lite0's."""

    kind, dim, needs_model = "float", 1280, "efficientnet-lite2"
    name = "cnn2"

    def __init__(self):
        from lookalike.features.cnn import CnnDescriptor

        self.net = CnnDescriptor("efficientnet-lite2", threads=1)
        self.version = f"{self.net.name}/v{self.net.version}"


@register
class CnnGlobalGrey(Extractor):
    """EfficientNet-Lite2 GeM of the equalised grey image (features.cnn.equalised_grey), 1280-d: the
    light- and colour-independent half of the `similar` descriptor (night, thermal, seasons). Computed
    when `similar` is first used, with the same network as cnn2."""

    kind, dim, needs_model = "float", 1280, "efficientnet-lite2"
    name = "cnn2grey"

    def __init__(self):
        from lookalike.features.cnn import GREY_SIDE

        self.net = registry.get("cnn2").net  # one ONNX session per process
        self.version = f"{self.net.name}/clahe-grey{GREY_SIDE}/v{self.net.version}"

    def compute(self, img: Decoded) -> np.ndarray:
        return self.compute_batch([img])[0]

    def compute_batch(self, imgs):
        from lookalike.features.cnn import equalised_grey

        return list(self.net.embed([equalised_grey(im.rgb) for im in imgs])) if imgs else []


@register
class LocalSift(Extractor):
    """RootSIFT keypoints (about 300 per image) for geometric verification of candidates."""

    name, version, kind, dim = "local", "sift320x320/v1", "blob", 0

    def compute(self, img: Decoded) -> bytes:
        from lookalike.features.local import extract_local, to_bytes

        return to_bytes(extract_local(img.rgb))

    def decode(self, blob: bytes):
        from lookalike.features.local import from_bytes

        return from_bytes(blob)


@register
class Thumb(Extractor):
    """128 px greyscale thumbnail: pixel agreement of geometrically verified copies."""

    name, version, kind, dim = "thumb", "gray128/v1", "blob", 0

    def compute(self, img: Decoded) -> bytes:
        from lookalike.search import photometric

        return photometric.to_bytes(photometric.thumb(img.rgb))

    def decode(self, blob: bytes):
        from lookalike.search import photometric

        return photometric.from_bytes(blob)


@register
class Zoom(Extractor):
    """The working image seen closer, for a copy that shows a small part of it (a crop of a crop, a
    crop inside a screenshot, 2-3x zoomed): SIFT at the full working side with more keypoints, and a
    384 px grey thumbnail. At 320 px the part such a crop shows holds a few coarse keypoints only.
    Computed for the few images whose candidate fit zooms by ZOOM or more (search/zoom.py)."""

    name, version, kind, dim = "zoom", "sift768x1500+gray384/v1", "blob", 0

    def compute(self, img: Decoded) -> bytes:
        from lookalike.search import zoom

        return zoom.to_bytes(zoom.describe(img.rgb))

    def decode(self, blob: bytes):
        from lookalike.search import zoom

        return zoom.from_bytes(blob)


@register
class ColourThumb(Extractor):
    """256 px colour thumbnail (PNG): is what differs between two aligned copies a pasted graphic or
    another moment of a real scene? Computed for the few verified pairs that disagree in one patch."""

    name, version, kind, dim = "cthumb", "rgb256png/v1", "blob", 0

    def compute(self, img: Decoded) -> bytes:
        import cv2

        from lookalike.search import photometric

        return cv2.imencode(".png", photometric.colour_thumb(img.rgb)[:, :, ::-1])[1].tobytes()

    def decode(self, blob: bytes):
        import cv2

        return np.ascontiguousarray(cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1])

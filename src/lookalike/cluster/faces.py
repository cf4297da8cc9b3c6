"""The one place the clustering engine gets faces from (an adapter, so the source can change).

`faces_of(index, ids)` returns, per file id, its faces largest first as `FaceRec(embedding, box, score,
quality)`, from the registered "faces" feature (features/faces.py: detected, checked for face-ness,
aligned, dlib 128-d), stored in the catalog like any feature: animals and objects the detector fired
on are not stored as faces, so they never make a person cluster. `faces_of_paths` gives the same for files outside an index
(the evaluation), optionally cached in an .npz so a second run is instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class FaceRec:
    embedding: np.ndarray  # float32, L2-normalised here
    box: tuple[float, float, float, float]
    score: float
    quality: float


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _from_feature(faces) -> list[FaceRec]:
    return [FaceRec(_unit(f.embedding), tuple(f.box), float(f.score), float(f.quality)) for f in faces]


class _Computer:
    """Faces of one file, from the "faces" extractor (encoded and decoded as the catalog stores them)."""

    def __init__(self):
        from lookalike.features import registry

        self.feature = registry.get("faces")

    def __call__(self, path: str) -> list[FaceRec]:
        from lookalike.errors import BadInput
        from lookalike.imageio import load_file

        try:
            img = load_file(path)
        except BadInput:
            return []
        return _from_feature(self.feature.decode(self.feature.encode(self.feature.compute(img))))


def faces_of_paths(paths: list[str], *, cache: str | Path | None = None, progress=None) -> list[list[FaceRec]]:
    """Faces of image files outside an index, cached in `cache` (.npz) by path if given."""
    store: dict[str, list] = {}
    if cache and Path(cache).is_file():
        z = np.load(cache, allow_pickle=False)
        for p, e, b, s, q in zip(z["path"], z["emb"], z["box"], z["score"], z["quality"]):
            store.setdefault(str(p), []).append(FaceRec(e, tuple(b), float(s), float(q)))
        for p in z["empty"]:
            store[str(p)] = []
    todo = [p for p in paths if p not in store]
    if todo:
        comp = _Computer()
        for n, p in enumerate(todo):
            store[p] = comp(p)
            if progress:
                progress(n + 1, len(todo))
        if cache:
            rows = [(p, f) for p, fs in store.items() for f in fs]
            Path(cache).parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, path=np.array([p for p, _ in rows], dtype=str),
                     emb=np.array([f.embedding for _, f in rows], np.float32).reshape(len(rows), -1),
                     box=np.array([f.box for _, f in rows], np.float32).reshape(len(rows), 4),
                     score=np.array([f.score for _, f in rows], np.float32),
                     quality=np.array([f.quality for _, f in rows], np.float32),
                     empty=np.array([p for p, fs in store.items() if not fs], dtype=str))
    return [store[p] for p in paths]


def faces_of(index, ids) -> dict[int, list[FaceRec]]:
    """Faces of indexed files, largest first, from the "faces" feature (computed and stored if missing)."""
    return {i: _from_feature(v) for i, v in index.feature_values(list(ids), "faces").items()}

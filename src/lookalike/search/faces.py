"""Face mode: the same person. Every face of every file (features/faces.py: detected, checked for
face-ness - an animal or object is no face - aligned, dlib 128-d, unit length) is compared by cosine; a file's score is its best face against the query's best
face. Threshold 0.925: same-person pairs of faces_large at precision 0.894, recall 0.876 (see the
clustering section of the README)."""

from __future__ import annotations

import numpy as np

from lookalike.features import registry
from lookalike.search.modes import Hit, Mode, PairHit, Query


class FaceMode(Mode):
    """Photos of the same person (any face in them), whatever the background or the picture."""

    name, features, threshold = "face", ("faces",), 0.925
    block = 2048  # faces compared at once in `pairs` (memory: block x faces floats)

    def _faces(self, index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(file id per face, face index in its file, unit embeddings (n, 128))."""
        def build():
            ex = registry.get("faces")
            ids, nums, vecs = [], [], []
            for fid, blob in index.catalog.iter_feature("faces", ex.version):
                for j, f in enumerate(ex.decode(blob)):
                    ids.append(fid), nums.append(j), vecs.append(f.embedding)
            X = np.array(vecs, np.float32).reshape(len(vecs), 128)
            return np.array(ids, np.int64), np.array(nums, np.int64), X

        return index.cached("faces-matrix", ("faces",), build)

    def search(self, index, q: Query, k: int, min_score: float) -> list[Hit]:
        ids, nums, X = self._faces(index)
        mine = q.features["faces"]
        if not mine or not len(ids):
            return []
        S = np.clip(np.stack([f.embedding for f in mine]) @ X.T, 0.0, 1.0)  # (query faces, indexed faces)
        best: dict[int, Hit] = {}
        for qi, col in zip(*np.nonzero(S >= min_score)):
            fid, s = int(ids[col]), float(S[qi, col])
            if fid not in best or s > best[fid][1]:
                best[fid] = (fid, s, "face", {"face": int(nums[col]), "query_face": int(qi), "cosine": round(s, 4)})
        return sorted(best.values(), key=lambda h: (-h[1], h[0]))[:k]

    def pairs(self, index, threshold: float) -> list[PairHit]:
        ids, nums, X = self._faces(index)
        best: dict[tuple[int, int], PairHit] = {}
        for start in range(0, len(ids), self.block):
            S = X[start : start + self.block] @ X.T
            for r, c in zip(*np.nonzero(S >= threshold)):
                a, b = int(ids[start + r]), int(ids[c])
                if a >= b:
                    continue
                s = float(min(S[r, c], 1.0))
                if (a, b) not in best or s > best[a, b][2]:
                    best[a, b] = (a, b, s, "face", {"face_a": int(nums[start + r]), "face_b": int(nums[c])})
        return sorted(best.values(), key=lambda h: (-h[2], h[0], h[1]))

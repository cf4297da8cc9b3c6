"""Text -> image search over an index, with the trained head or the zero-shot fallback.

With a head trained by `lookalike train text` (text-head.npz in the index folder), images and the query
are mapped into the head's joint space and ranked by cosine; the score is (1 + cosine) / 2.

Without one, the fallback ranks by what the CNN's ImageNet classifier sees: each image's class
probabilities p (features/classes.py) are scored against the query through the MiniLM vectors E of the
1000 class names ("a photo of a {name}."): score = sum_c p_c * cos(E_c, query), the expected similarity
of the query to what the image shows. It knows only ImageNet's 1000 things (no colours, no actions, no
"two people"); training a head on a few thousand captioned photos of your own is far better (README).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from lookalike.features import registry
from lookalike.search.results import Match, QueryResult
from lookalike.text.head import TextHead

if TYPE_CHECKING:
    from lookalike.api import Index

HEAD_FILE = "text-head.npz"
REPORT_FILE = "text-head.json"
ZERO_SHOT = ("imagenet",)
TRAIN_HINT = ("no trained text head in this index: ranking by ImageNet classes (weak). Train one with "
              "`lookalike train text CAPTIONS.csv` (rows path,caption)")


def head_path(index: "Index") -> Path:
    return Path(index.dir) / HEAD_FILE


def load_head(index: "Index") -> TextHead | None:
    p = head_path(index)
    return TextHead.load(p) if p.is_file() else None


def feature_matrix(index: "Index", names: Sequence[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """ids (n,) of the indexed files that have every feature in `names`, and each feature as (n, d),
    kept in memory until those features change."""
    names = tuple(names)

    def build():
        cols = {}
        for n in names:
            ex = registry.get(n)
            cols[n] = {fid: blob for fid, blob in index.catalog.iter_feature(n, ex.version)}
        ids = sorted(set.intersection(*(set(c) for c in cols.values()))) if cols else []
        mats = {n: (np.stack([registry.get(n).decode(cols[n][i]) for i in ids]) if ids
                    else np.zeros((0, registry.get(n).dim), np.float32)) for n in names}
        return np.array(ids, np.int64), mats

    return index.cached("text:" + "+".join(names), names, build)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float32)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def class_text() -> np.ndarray:
    """(1000, 384) MiniLM vectors of the ImageNet class names (prepared asset)."""
    from lookalike import models
    from lookalike.models import minilm  # noqa: F401  (registers the asset)

    return np.load(models.path("imagenet-class-text"))


def zero_shot_scores(probs: np.ndarray, text_vecs: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(n_texts, n_images) expected similarity of each text to what each image shows."""
    return (text_vecs @ classes.T) @ probs.T


class TextSearcher:
    """Ranks the indexed images for sentences; `mode` is 'head' or 'zero-shot' (fallback)."""

    def __init__(self, index: "Index", *, head: TextHead | None = None, zero_shot: bool = False):
        self.index = index
        self.head = None if zero_shot else (head or load_head(index))
        self.mode = "head" if self.head is not None else "zero-shot"
        self.notice = None if self.head is not None or zero_shot else TRAIN_HINT

    def _gallery(self):
        names = self.head.features if self.head is not None else ZERO_SHOT
        self.index.ensure(names)
        ids, mats = feature_matrix(self.index, names)
        key = f"text-gallery:{self.mode}:{id(self.head)}"
        if self.head is not None:
            return ids, self.index.cached(key, names, lambda: self.head.embed_images(mats))
        return ids, self.index.cached(key, names, lambda: softmax(mats["imagenet"]))

    def scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, (n_texts, n_images) scores in [0, 1])."""
        from lookalike.text.encoder import encoder

        ids, gallery = self._gallery()
        t = encoder().encode(texts)
        if self.head is not None:
            return ids, (1 + self.head.embed_texts(t) @ gallery.T) / 2
        return ids, np.clip(zero_shot_scores(gallery, t, class_text()), 0, 1)

    def search(self, texts: Sequence[str], *, k: int = 10, min_score: float = 0.0) -> list[QueryResult]:
        texts = [str(t) for t in texts]
        out = []
        good = [t for t in texts if t.strip()]
        if good:
            ids, S = self.scores(good)
            paths = self.index.catalog.paths(ids.tolist())
        method = "text-head" if self.head is not None else "text-zeroshot"
        row = 0
        for t in texts:
            if not t.strip():
                out.append(QueryResult(t, [], error="empty query text"))
                continue
            s = S[row]
            row += 1
            top = np.argsort(-s, kind="stable")[:k]
            out.append(QueryResult(t, [Match(paths[int(ids[j])], float(s[j]), method, {}) for j in top
                                       if s[j] >= min_score]))
        return out

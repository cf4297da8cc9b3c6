"""`--mode text-guided`: image -> image search in the trained text head's image space.

The head learned which image features the captions' words distinguish (the seed's text-guided image
features); two images close in that space show the same kind of thing. Needs a head trained with
`lookalike train text` in the index. Registered into the engine's modes when lookalike.text is imported
(the CLI does), so the engine itself never imports this layer.
"""

from __future__ import annotations

import numpy as np

from lookalike.search.modes import MODES, Mode
from lookalike.text.head import IMAGE_FEATURES
from lookalike.text.search import feature_matrix, load_head


def _head(index):
    head = load_head(index)
    if head is None:
        raise ValueError("--mode text-guided needs a text head in the index: run `lookalike train text CAPTIONS.csv`")
    return head


def _gallery(index, head):
    ids, mats = feature_matrix(index, head.features)
    return ids, index.cached(f"text-guided:{id(head)}", head.features, lambda: head.embed_images(mats))


class TextGuidedMode(Mode):
    """Cosine of the head's image vectors (not calibrated as a copy/similar threshold; 0.85 is a guess)."""

    name, features, threshold = "text-guided", IMAGE_FEATURES, 0.85

    def search(self, index, q, k, min_score):
        head = _head(index)
        ids, G = _gallery(index, head)
        v = head.embed_images({n: np.asarray(q.features[n], np.float32)[None] for n in head.features})[0]
        s = G @ v
        top = np.argsort(-s, kind="stable")[: max(k, 1)]
        return [(int(ids[j]), float(np.clip(s[j], 0, 1)), "text-guided", {"cosine": round(float(s[j]), 4)})
                for j in top]

    def pairs(self, index, threshold):
        head = _head(index)
        ids, G = _gallery(index, head)
        out = []
        for start in range(0, len(G), 1024):
            S = G[start : start + 1024] @ G.T
            for r, c in zip(*np.nonzero(S >= threshold)):
                a, b = int(ids[start + r]), int(ids[c])
                if a < b:
                    out.append((a, b, float(min(S[r, c], 1.0)), "text-guided", {"cosine": round(float(S[r, c]), 4)}))
        return sorted(out, key=lambda h: (-h[2], h[0], h[1]))


MODES.setdefault("text-guided", TextGuidedMode())

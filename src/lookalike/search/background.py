""""Same background" search: photos taken in front of the same background, whoever stands in them.

Every feature is computed with the person masked out (features/background.py), so two photos of the
same person in front of different walls share nothing that is scored. Candidates come from the masked
CNN vector index; each is scored by a weighted fusion of three components in [0, 1]:

- global: masked CNN cosine, rescaled between `cos_floor` (unrelated scenes) and `cos_full`;
- local:  geometric verification of SIFT keypoints outside the person (top candidates only);
- colour: Bhattacharyya coefficient of the background LAB histograms, rescaled like the cosine.

Photos where the person hides most of the frame, or whose background is plain, give weak evidence:
their scores are capped and the reason is given in the details.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lookalike.features import background as B
from lookalike.features import registry
from lookalike.search.modes import Hit, Mode, PairHit, Query


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))


@dataclass
class BackgroundMode(Mode):
    name = "background"
    features = B.BACKGROUND_FEATURES
    # Default decision score. On the DEV background set (248 images) 0.55 gave pair precision 1.0 at
    # recall 0.72 and no same-person/other-background pair above it; 0.50 gave 0.80 / 0.80 / 1.1 %.
    threshold = 0.55

    # global, local, colour. Colour is computed and reported but weighted 0 by default: the set's
    # white-balance and exposure shifts made it anti-informative (mAP 0.87 with 0.5/0.3/0.2 vs 0.90).
    weights: tuple[float, float, float] = (0.5, 0.5, 0.0)
    candidates: int = 50  # CNN neighbours scored per query
    rerank: int = 40  # of those, how many are verified geometrically (20: mAP 0.88, 40: 0.90)
    neighbours: int = 15  # CNN neighbours per image for `pairs`
    cos_floor: float = 0.55
    cos_full: float = 0.9
    color_floor: float = 0.6
    color_full: float = 0.95
    inliers_full: int = 25  # RANSAC inliers on the background that count as full local agreement
    max_person: float = 0.6  # person share of the frame above which a photo is not comparable
    min_scene: float = 0.3  # scene score below which the background is "plain"
    weak_cap: float = 0.45  # score cap for weak evidence (below the threshold)

    # -- components -------------------------------------------------------------------------------

    def _local_score(self, v) -> float:
        """Verification -> [0, 1]: inlier count, lifted to 1 for a confirmed near-copy of the scene."""
        return max(min(v.inliers, self.inliers_full) / self.inliers_full if v.inliers >= 8 else 0.0, v.score)

    def fuse(self, cos: float, col: float, local: float | None, ma: B.MaskRecord, mb: B.MaskRecord) -> tuple[float, str, dict]:
        """Fused score, method and details of one pair from its raw components."""
        g = _ramp(cos, self.cos_floor, self.cos_full)
        c = _ramp(col, self.color_floor, self.color_full)
        wg, wl, wc = self.weights
        score = wg * g + wl * (local or 0.0) + wc * c  # not verified (None) counts as no local agreement
        det = {"global": round(g, 4), "cosine": round(cos, 4), "colour": round(c, 4),
               "local": None if local is None else round(local, 4)}
        reasons = []
        person = max(ma.person_share, mb.person_share)
        if person > self.max_person:
            reasons.append(f"not comparable: the person covers {100 * person:.0f}% of the frame")
        scene = min(ma.scene, mb.scene)
        if scene < self.min_scene:
            reasons.append(f"weak evidence: plain background (scene score {scene:.2f})")
        if reasons:
            score = min(score, self.weak_cap)
            det["reasons"] = reasons
        det["person_share"] = round(person, 3)
        det["scene"] = round(scene, 3)
        return float(score), ("bg_cnn+sift" if local else "bg_cnn"), det

    # -- Mode API ---------------------------------------------------------------------------------

    def _query_values(self, q: Query) -> dict:
        return {n: (registry.get(n).decode(v) if isinstance(v, (bytes, bytearray)) else v) for n, v in q.features.items()}

    def search(self, index, q: Query, k: int, min_score: float) -> list[Hit]:
        from lookalike.search.verify import verify_many

        qv = self._query_values(q)
        qvec = np.asarray(qv["bg_cnn"], np.float32)[None]
        sims, ids = index.vectors("bg_cnn").search(qvec, max(k, self.candidates))
        hits = [(int(i), float(s)) for s, i in zip(sims[0], ids[0]) if i >= 0]
        cand = [i for i, _ in hits]
        masks = index.feature_values(cand, "bg_mask")
        colors = index.feature_values(cand, "bg_color")
        top = cand[: self.rerank]
        local = index.feature_values(top, "bg_local")
        vtop = [i for i in top if i in local]
        verified = dict(zip(vtop, verify_many(qv["bg_local"], [local[i] for i in vtop])))
        out = []
        for i, cos in hits:
            if i not in masks or i not in colors:
                continue
            col = float(np.dot(qv["bg_color"], colors[i]))
            loc = self._local_score(verified[i]) if i in verified else None
            score, method, det = self.fuse(cos, col, loc, qv["bg_mask"], masks[i])
            if i in verified:
                det["inliers"] = verified[i].inliers
            out.append((i, score, method, det))
        return sorted(out, key=lambda h: -h[1])

    def pairs(self, index, threshold: float) -> list[PairHit]:
        from lookalike.search.verify import verify

        vx = index.vectors("bg_cnn")
        sims, nbr = vx.knn_graph(self.neighbours)
        cands: dict[tuple[int, int], float] = {}
        for a, row_s, row_i in zip(vx.ids(), sims, nbr):
            for s, b in zip(row_s, row_i):
                if b >= 0:
                    cands[(int(min(a, b)), int(max(a, b)))] = float(s)
        ids = sorted({i for p in cands for i in p})
        masks = index.feature_values(ids, "bg_mask")
        colors = index.feature_values(ids, "bg_color")
        local = index.feature_values(ids, "bg_local")
        wg, wl, wc = self.weights
        out = []
        for (a, b), cos in cands.items():
            if a not in masks or b not in masks:
                continue
            col = float(np.dot(colors[a], colors[b]))
            # verification can only add wl * 1: skip pairs that could not reach the threshold with it
            best = wg * _ramp(cos, self.cos_floor, self.cos_full) + wc * _ramp(col, self.color_floor, self.color_full) + wl
            loc = None
            if best >= threshold and a in local and b in local:
                loc = self._local_score(verify(local[a], local[b]))
            score, method, det = self.fuse(cos, col, loc, masks[a], masks[b])
            if score >= threshold:
                out.append((a, b, score, method, det))
        return sorted(out, key=lambda h: (-h[2], h[0], h[1]))

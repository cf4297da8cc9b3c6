""""Same background" search: photos taken in front of the same background, whoever stands in them.

Every feature is computed with the person masked out (features/background.py), so two photos of the
same person in front of different walls share nothing that is scored. Candidates come from the masked
CNN vector index; each is scored by a weighted fusion of three components in [0, 1]:

- global: masked CNN cosine, rescaled between `cos_floor` (unrelated scenes) and `cos_full`;
- local:  background keypoints: the VLAD similarity over a codebook learned from the collection (every
          candidate), raised by geometric verification (RANSAC inliers, top `rerank` candidates only);
- colour: Bhattacharyya coefficient of the gray-world-balanced background LAB histograms, rescaled.

With a trained pair head (`lookalike train pairs`, heads/pairs.py) switched on, the global component ramps
the head's cosine instead, mapped onto the raw cosine scale by rank (calibrated on the training pairs, no labels).

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
    # Default decision score. DEV background set (pairs from `pairs`, 933 positives, 1356 same-person /
    # other-background pairs): 0.7 -> precision 0.991, recall 0.697, 0 same-person pairs above;
    # 0.65 -> 0.959 / 0.749 / 1; 0.6 -> 0.835 / 0.797 / 10. A fraud flag should rarely be wrong: 0.7.
    threshold = 0.7

    # global, local, colour. Chosen on half A of the DEV backgrounds (bench_background_clusters.py; B held
    # out), mAP A / B: 0.5/0.3/0.2 -> 0.941 / 0.926; 0.5/0.35/0.15 -> 0.946 / 0.933; 0.5/0.4/0.1 -> 0.952 / 0.939
    # but it moved the fraud cases (eval risk: case F1 1.000 -> 0.996). The gray-world colour histogram is
    # what look-alike rooms share most (ScanNet rooms, whose second views it ranked below other rooms).
    weights: tuple[float, float, float] = (0.5, 0.35, 0.15)
    candidates: int = 50  # CNN neighbours scored per query
    rerank: int = 40  # of those, how many are verified geometrically (20: mAP -0.006, 40: best)
    neighbours: int = 15  # CNN neighbours per image for `pairs`
    cos_floor: float = 0.55
    cos_full: float = 0.9
    color_floor: float = 0.65
    color_full: float = 0.95
    vlad_floor: float = 0.0
    vlad_full: float = 0.35
    codebook_size: int = 64  # VLAD centroids (VLAD alone, DEV mAP: 32 -> 0.80, 64 -> 0.83, 128 -> 0.84, 2x slower)
    codebook_sample: int = 20000  # descriptors drawn from the collection to learn the codebook
    vlad_memo: int = 50000  # collection VLADs kept in memory (~16 KB each)
    qe_neighbours: int = 3  # query expansion: best matches added to the query (0: off; DEV mAP 0.904 -> 0.934)
    qe_min_score: float = 0.6  # ... only those scoring at least this
    inliers_full: int = 25  # RANSAC inliers on the background that count as full local agreement
    max_person: float = 0.6  # person share of the frame above which a photo is not comparable
    min_scene: float = 0.3  # scene score below which the background is "plain"
    weak_cap: float = 0.45  # score cap for weak evidence (below the threshold)
    # a match needs background to compare (issue 13: two cut-outs of cars on an empty fill matched at 0.81).
    # A photo whose border ring, person excluded, is one flat colour was cut out of its background; a photo
    # with less than `min_visible` of its frame as background with something in it (not the person, not an
    # empty fill) has too little background. Both give weak evidence. DEV background set: no photo is a
    # cut-out (largest ring 0.46; fraud set 0.68, its plain walls); fewest visible 0.24 (one photo whose
    # mask took the room for the person: 0.01, already "not comparable").
    cutout_ring: float = 0.9
    min_visible: float = 0.1
    # below `verify_visible`, a pair needs verified geometry (>= 8 inliers) to reach the threshold: CNN, colour
    # and VLAD of a small patch of background agree by chance. Unverified pairs are held at threshold -
    # margin_band (below the cluster threshold too). DEV: fewest visible 0.24 (but one "not comparable"), no change.
    verify_visible: float = 0.3
    # near the threshold a pair without verified geometry (< 8 RANSAC inliers, or not checked) scores
    # lower, by `unverified_margin` at the threshold, fading to 0 at +-`margin_band`: two rooms furnished
    # alike or neighbouring streets agree on CNN, colour and VLAD but not on geometry. DEV pairs at 0.7:
    # fp 6 -> 1, tp 650 -> 641; CNN + colour alone (<= 0.7) can no longer reach the threshold.
    unverified_margin: float = 0.05
    margin_band: float = 0.1
    # trained pair head for the global component: "index" (the index's setting: on after `train pairs`, off
    # with --no-use), "on" or "off"; env LOOKALIKE_PAIR_HEAD overrides. DEV figures: README "Background pair head".
    pair_head: str = "index"

    def photo_reasons(self, person: float, scene: float, visible: float = 1.0, empty_ring: float = 0.0) -> list[str]:
        """Why a photo (or the weaker photo of a pair) gives weak evidence; empty when it is comparable."""
        reasons = []
        if person > self.max_person:
            reasons.append(f"not comparable: the person covers {100 * person:.0f}% of the frame")
        if empty_ring >= self.cutout_ring:
            reasons.append(f"no background: a cut-out on an empty fill ({100 * empty_ring:.0f}% of its border)")
        elif visible < self.min_visible:
            reasons.append(f"too little background: {100 * visible:.0f}% of the frame")
        if scene < self.min_scene:
            reasons.append(f"weak evidence: plain background (scene score {scene:.2f})")
        return reasons

    # -- components -------------------------------------------------------------------------------

    def _verified_score(self, v) -> float:
        """Verification -> [0, 1]: inlier count, lifted to 1 for a confirmed near-copy of the scene."""
        return max(min(v.inliers, self.inliers_full) / self.inliers_full if v.inliers >= 8 else 0.0, v.score)

    def fuse(self, cos: float, col: float, local: float | None, ma: B.MaskRecord, mb: B.MaskRecord, *,
             vlad: float | None = None, head: float | None = None) -> tuple[float, str, dict]:
        """Fused score, method and details of one pair from its raw components: CNN cosine `cos`, colour
        coefficient `col`, verified local score `local` (None: not verified), VLAD similarity `vlad` and the
        pair head's cosine on the raw scale `head` (None: no head; the global component then ramps `cos`)."""
        g = _ramp(cos if head is None else head, self.cos_floor, self.cos_full)
        c = _ramp(col, self.color_floor, self.color_full)
        v = None if vlad is None else _ramp(vlad, self.vlad_floor, self.vlad_full)
        loc = max(local or 0.0, v or 0.0)
        wg, wl, wc = self.weights
        score = wg * g + wl * loc + wc * c
        det = {"global": round(g, 4), "local": round(loc, 4), "colour": round(c, 4), "cosine": round(cos, 4),
               "vlad": None if vlad is None else round(vlad, 4), "verified": None if local is None else round(local, 4)}
        if head is not None:
            det["head"] = round(head, 4)
        person = max(ma.person_share, mb.person_share)
        scene = min(ma.scene, mb.scene)
        visible = min(ma.visible, mb.visible)
        reasons = self.photo_reasons(person, scene, visible, max(ma.empty_ring, mb.empty_ring))
        if not local:  # slope of the penalty <= margin / band < 1: the order of scores is kept
            score -= self.unverified_margin * max(0.0, 1.0 - abs(score - self.threshold) / self.margin_band)
        verified = (local or 0.0) >= 8 / self.inliers_full
        if not verified and visible < self.verify_visible and score > self.threshold - self.margin_band:
            score = self.threshold - self.margin_band
            det["held"] = f"little background ({100 * visible:.0f}% of the frame) and no verified geometry"
        if reasons:
            score = min(score, self.weak_cap)
            det["reasons"] = reasons
        det["person_share"] = round(person, 3)
        det["scene"] = round(scene, 3)
        det["visible"] = round(visible, 3)
        return float(score), ("bg_cnn+sift" if local else "bg_cnn+vlad" if v else "bg_cnn"), det

    def codebook(self, index) -> np.ndarray:
        """VLAD centroids learned from the collection's background keypoints (cached until they change)."""

        def build():
            import itertools

            ex = registry.get("bg_local")
            n = max(1, index.catalog.counts().get("ok", 1))
            stride = max(1, n // self.codebook_sample)  # at most ~codebook_sample images are read
            per = max(1, self.codebook_sample * stride // n)  # descriptors from each, spread over all
            rng = np.random.default_rng(0)
            parts = []
            for _, blob in itertools.islice(index.catalog.iter_feature("bg_local", ex.version), 0, None, stride):
                d = ex.decode(blob).desc
                parts.append(d[rng.permutation(len(d))[:per]])
            x = np.concatenate(parts) if parts else np.zeros((0, 128), np.uint8)
            if len(x) < 39 * 4:
                return None  # too few keypoints in the collection to learn anything
            return B.learn_codebook(x, k=self.codebook_size)

        return index.cached("bg_codebook", ("bg_local",), build)

    def _vlads(self, index, cb, ids, local: dict | None = None) -> dict:
        """VLAD of these files, kept in memory (float16, 16 KB each) until their keypoints change."""
        if cb is None:
            return {}
        memo = index.cached("bg_vlad", ("bg_local",), dict)
        if len(memo) > self.vlad_memo:
            memo.clear()  # a bound on memory for very large collections
        missing = [i for i in ids if i not in memo]
        if missing:
            need = [i for i in missing if i not in (local or {})]  # keypoints the caller has not loaded
            local = {**(local or {}), **(index.feature_values(need, "bg_local") if need else {})}
            for i in missing:
                if i in local:
                    memo[i] = B.vlad(local[i].desc, cb).astype(np.float16)
        return {i: memo[i].astype(np.float32) for i in ids if i in memo}

    # -- Mode API ---------------------------------------------------------------------------------

    def _head_cosines(self, index, head, q: np.ndarray, ids: list[int]) -> dict[int, float]:
        """The pair head's cosine of the query vector with each of `ids`, on the raw cosine scale."""
        if head is None or not ids:
            return {}
        vals = index.feature_values(ids, "bg_cnn")
        have = [i for i in ids if i in vals]
        if not have:
            return {}
        cos = head.embed(np.stack([vals[i] for i in have])) @ head.embed(q[None])[0]
        return dict(zip(have, map(float, head.raw_scale(cos))))

    def _score_candidates(self, index, qv: dict, qcnn: np.ndarray, qvlad, cb, k: int, verified: dict,
                          head=None) -> dict:
        """Candidates of one (possibly expanded) query vector, each scored: {id: (score, method, details)}.
        `verified` memoises the geometric checks of the query's own keypoints across passes."""
        from lookalike.search.verify import verify_many

        sims, ids = index.vectors("bg_cnn").search(qcnn[None], max(k, self.candidates))
        hits = [(int(i), float(s)) for s, i in zip(sims[0], ids[0]) if i >= 0]
        cand = [i for i, _ in hits]
        hcos = self._head_cosines(index, head, qcnn, cand)
        masks = index.feature_values(cand, "bg_mask")
        colors = index.feature_values(cand, "bg_color")
        near = cand[: self.candidates]
        todo = [i for i in near[: self.rerank] if i not in verified]
        local = index.feature_values(todo, "bg_local")  # read once: for the VLADs and the verification
        vl = self._vlads(index, cb, near, local)
        todo = [i for i in todo if i in local]
        # no mirrored matching: backgrounds are not mirrored between shots (only pasted people are)
        verified.update(zip(todo, verify_many(qv["bg_local"], [local[i] for i in todo], mirror=False)))
        out = {}
        for rank, (i, cos) in enumerate(hits):
            if i not in masks or i not in colors:
                continue
            col = float(np.dot(qv["bg_color"], colors[i]))
            v = verified.get(i) if rank < self.rerank else None
            loc = None if v is None else self._verified_score(v)
            vs = float(np.dot(qvlad, vl[i])) if qvlad is not None and i in vl else None
            score, method, det = self.fuse(cos, col, loc, qv["bg_mask"], masks[i], vlad=vs, head=hcos.get(i))
            if v is not None:
                det["inliers"] = v.inliers
            out[i] = (score, method, det)
        return out

    def search(self, index, q: Query, k: int, min_score: float) -> list[Hit]:
        qv = q.features
        qcnn = np.asarray(qv["bg_cnn"], np.float32)
        cb = self.codebook(index)
        qvlad = None if cb is None else B.vlad(qv["bg_local"].desc, cb)
        verified: dict = {}
        from lookalike.heads.pairs import head_for_search

        head = head_for_search(index, self.pair_head)
        first = self._score_candidates(index, qv, qcnn, qvlad, cb, k, verified, head)
        # query expansion: the query's surest matches show more of its background (other angles, parts
        # the person hid); their descriptors are added to the query's and the search is run again
        best = sorted(first.items(), key=lambda h: -h[1][0])
        nb = [(i, sc) for i, (sc, _, det) in best if sc >= self.qe_min_score and det["cosine"] < 0.9999][: self.qe_neighbours]
        final = dict(first)
        if nb:
            ids = [i for i, _ in nb]
            cnn = index.feature_values(ids, "bg_cnn")
            ecnn = qcnn + sum(sc * cnn[i] for i, sc in nb if i in cnn)
            ecnn = (ecnn / max(float(np.linalg.norm(ecnn)), 1e-12)).astype(np.float32)
            evlad = qvlad
            if qvlad is not None:
                vl = self._vlads(index, cb, ids)
                evlad = qvlad + sum(sc * vl[i] for i, sc in nb if i in vl)
                evlad = evlad / max(float(np.linalg.norm(evlad)), 1e-12)
            for i, (sc, method, det) in self._score_candidates(index, qv, ecnn, evlad, cb, k, verified, head).items():
                if i not in final or sc > final[i][0]:  # a candidate keeps the better of its two scores
                    final[i] = (sc, method, {**det, "expanded_by": len(nb)})
        return sorted(((i, sc, m, d) for i, (sc, m, d) in final.items()), key=lambda h: -h[1])

    def pairs(self, index, threshold: float) -> list[PairHit]:
        from lookalike.search.verify import verify

        vx = index.vectors("bg_cnn")
        sims, nbr = vx.knn_graph(self.neighbours)
        cands: dict[tuple[int, int], float] = {}
        for a, row_s, row_i in zip(vx.ids(), sims, nbr):
            for s, b in zip(row_s, row_i):
                if b >= 0 and b != a:
                    cands[(int(min(a, b)), int(max(a, b)))] = float(s)
        ids = sorted({i for p in cands for i in p})
        masks = index.feature_values(ids, "bg_mask")
        colors = index.feature_values(ids, "bg_color")
        local = index.feature_values(ids, "bg_local")
        vl = self._vlads(index, self.codebook(index), ids, local)
        from lookalike.heads.pairs import head_for_search

        head = head_for_search(index, self.pair_head)
        emb = {}
        if head is not None:
            vals = index.feature_values(ids, "bg_cnn")
            have = [i for i in ids if i in vals]
            emb = dict(zip(have, head.embed(np.stack([vals[i] for i in have])))) if have else {}
        wg, wl, wc = self.weights
        out = []
        for (a, b), cos in cands.items():
            if a not in masks or b not in masks:
                continue
            col = float(np.dot(colors[a], colors[b]))
            vs = float(np.dot(vl[a], vl[b])) if a in vl and b in vl else None
            hc = float(head.raw_scale(float(np.dot(emb[a], emb[b])))) if a in emb and b in emb else None
            # verification can only lift local to 1: skip pairs that could not reach the threshold with it
            best = (wg * _ramp(cos if hc is None else hc, self.cos_floor, self.cos_full)
                    + wc * _ramp(col, self.color_floor, self.color_full) + wl)
            loc = None
            if best >= threshold and a in local and b in local:
                loc = self._verified_score(verify(local[a], local[b], mirror=False))
            score, method, det = self.fuse(cos, col, loc, masks[a], masks[b], vlad=vs, head=hc)
            if score >= threshold:
                out.append((a, b, score, method, det))
        return sorted(out, key=lambda h: (-h[2], h[0], h[1]))

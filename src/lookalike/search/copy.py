"""Copy mode: copies that hashes miss (crops, rotations by any angle, screenshots, heavy overlays,
pictures inside screenshots and collages), found by CNN neighbours and confirmed geometrically; and
the copy-scale score that tells a copy from the same fixed camera at another moment."""

from __future__ import annotations

import numpy as np

from lookalike.features import registry
from lookalike.search.keypoints import keypoint_index
from lookalike.search.modes import HashMode, Query, _best_per_pair, _Groups, transitive_pairs
from lookalike.search.zoom import OutsideImage


VERIFIED_COPY = 0.65  # verification score that copy mode maps to its 0.8 threshold


def verified_copy_score(v: float) -> float:
    """Geometric verification score on the copy scale (>= 0.8 = copy), linear on both sides of
    VERIFIED_COPY. verify() calls 0.5 a confirmed copy; copy mode asks for more, because different
    photos of one facade from nearly the same spot verify at 0.5-0.64 (near_duplicate: landmark photos)."""
    if v >= VERIFIED_COPY:
        return 0.8 + 0.2 * (v - VERIFIED_COPY) / (1 - VERIFIED_COPY)
    return 0.8 * v / VERIFIED_COPY


MIN_AGREEMENT = 0.8  # share of aligned thumbnail blocks that must correlate (search/photometric.py)
MOMENT_PATCH = 0.025  # a disagreeing patch this large (share of blocks) may be another moment (a head that
# turned: 2.7 %; 0.03 before let it through) ...
MAX_GRAPHIC = 0.6  # ... unless what changed is graphic (a logo, a caption): see photometric.graphic_change
SAME_SCENE = 0.7  # copy-scale score of "same fixed camera, another moment": alike, not a copy
UNCONFIRMED = 0.75  # copy-scale score of a weak link that its triangle contradicts (CopyMode._chained)
SAME_FRAME = 0.6  # copy-scale score of two composite frames whose pictures differ (regions.pictures_differ)
FIXED_FRAMING = 1.75  # ... which keeps the framing: scale of the fit within 1/1.75-1.75 (one background composited
# at another zoom: up to 1.69; crops of crops: 1.9+, and their changed pixels are few: see graphic_change)


def _keeps_framing(v) -> bool:
    """A fit a fixed camera gives two of its photos: not mirrored, turned by under 10 degrees, scale
    within 1/FIXED_FRAMING-FIXED_FRAMING. Rotated, mirrored and cropped copies are not judged as
    moments (at 8 px blocks their resampled thumbnails decorrelate in textured patches)."""
    import math

    if v.flipped or v.H is None or not 1 / FIXED_FRAMING <= v.cues.get("scale", 0) <= FIXED_FRAMING:
        return False
    return abs(math.degrees(math.atan2(v.H[1, 0], v.H[0, 0]))) < 10


def copy_score(v, thumb_a, thumb_b, local_a, local_b, colours=None, slack: int = 0) -> tuple[float, dict]:
    """Copy-scale score of a Verification of (local_a, local_b) given both 128 px grey thumbnails
    (photometric.thumb), and its evidence. A geometric fit is confirmed only where
    the aligned pixels agree: different photos in one social-media frame, or of one facade from nearly
    the same spot, fit a homography (0.5-0.98 verification) but agree in only 52-76 % of the blocks;
    copies, even recoloured, captioned or screenshotted, in 88-100 % (near_duplicate).

    colours: a function giving both 256 px colour thumbnails (photometric.colour_thumb), asked only
    when the aligned thumbnails disagree in one connected patch: if what changed there is not a
    graphic (another person, a subject that moved in front of a fixed camera), the pair is the same
    scene at another moment, relation "same-scene", scored below the copy threshold.
    slack: pixel agreement tolerates shifts of this many thumbnail pixels (photometric.agreement)."""
    from lookalike.search.photometric import agreement, changed_region, graphic_change

    s = verified_copy_score(v.score)
    det = {"inliers": v.inliers, "verification": round(v.score, 3)}
    if v.H is not None:
        det["scale"] = round(v.cues.get("scale", 0.0), 3)  # a zoomed fit is looked at closer (search/zoom.py)
    if s >= 0.8 * MIN_AGREEMENT and v.H is not None and thumb_a is not None and thumb_b is not None:
        sizes = (local_a.width, local_a.height), (local_b.width, local_b.height)
        ag = agreement(thumb_a, thumb_b, v.H, *sizes, slack=slack)
        det["agreement"] = round(ag, 3)
        if ag < MIN_AGREEMENT:
            s = min(s, 0.8 * ag)
        elif s >= 0.8 and colours is not None and _keeps_framing(v):
            patch = changed_region(thumb_a, thumb_b, v.H, *sizes)
            pair = colours() if patch >= MOMENT_PATCH else None
            if pair is not None:
                graphic = graphic_change(pair[0], pair[1], v.H, *sizes)
                det.update(changed_patch=round(patch, 3), graphic=round(graphic, 3))
                if graphic < MAX_GRAPHIC:
                    s = min(s, SAME_SCENE)
                    det["relation"] = "same-scene"
    return s, det


PART_SCALE = 1.25  # a fit that shrinks one side's frame by this much shows it as a part of the other


def _larger_side(method: str, det: dict) -> int | None:
    """Which side of a pair (a, b) that whole-image SIFT verified shows the other's content as a part of a
    larger frame: 0, 1, or None (about the same framing, or not known: hash and region links)."""
    from lookalike.search.zoom import part_side

    if method != "sift":
        return None
    if "larger" in det:  # scored again seen closer (_zoom_again)
        return det["larger"]
    s = det.get("scale")
    return part_side(s, PART_SCALE) if s else None


def _query_zoom(q: Query):
    """The query seen closer (search/zoom.py), computed once and only when a zoomed fit asks for it."""
    from functools import cache

    from lookalike.search.zoom import describe

    return cache(lambda: describe(q.rgb))


class CopyMode(HashMode):
    """Copies that hashes miss (crops, crops of crops, rotations by any angle, perspective,
    screenshots, heavy overlays): images sharing distinctive SIFT keypoints (search/keypoints.py) and
    CNN neighbours are confirmed geometrically with SIFT + RANSAC."""

    name, features, threshold = "copy", ("phash8", "pdq8", "cnn", "local", "regions"), 0.8
    pair_features = ("thumb",)  # thumbnails of candidates: nearly every file has one
    neighbours = 10  # CNN candidates per image: mirrored copies and pictures with few keypoints (SIFT
    # is not mirror-invariant; keypoint votes find the rest)
    mirror_min_cosine = 0.6  # pairs less alike than this in every CNN view are not matched mirrored: the CNN
    # was trained on flipped images, so a mirrored copy is as close as a plain one (near_duplicate: 0.67+)
    min_cosine = 0.55  # below this, CNN candidates are not worth verifying

    def _verify(self, index, pairs: list[tuple[int, int]], extra: dict | None = None,
                joined: "_Groups | None" = None, plain_only: set | None = None) -> tuple[dict, dict]:
        """Score each pair on the copy scale -> ({pair: (score, details)}, {id: LocalFeatures}).

        extra: {id: zoom.OutsideImage} of images outside the index (a query). joined: copy
        groups found so far; a pair already inside one group is skipped (the closure will hold it)
        and each confirmed pair joins its two groups. plain_only: pairs not matched mirrored."""
        from lookalike.ingest import compute_for
        from lookalike.search.batchverify import score_pairs

        ids = sorted({i for p in pairs for i in p if i >= 0})
        # local features and thumbnails of candidates are computed on first use, in one decoding pass
        need = {n: registry.get(n).version for n in ("local", "thumb")}
        have = {n: {fid for fid, _ in index.catalog.features_by_ids(ids, n, v)} for n, v in need.items()}
        missing = [i for i in ids if not all(i in have[n] for n in need)]
        if missing:
            compute_for(index.catalog, missing, list(need))
        local = index.feature_values(ids, "local")
        thumbs = index.feature_values(ids, "thumb")
        for i, e in (extra or {}).items():
            local[i], thumbs[i] = e.local, e.thumb
        # colour thumbnails only for pairs whose aligned pixels disagree in one patch: asked for in
        # one batch after the first pass (one decoding pass), then those pairs are scored again
        pending: list = []
        out, fits = {}, {}

        def done(pair, scored, asked_colours):
            out[pair] = scored = self._frames(index, *pair, scored)
            if asked_colours is not None:
                pending.append(pair)
                fits[pair] = asked_colours
            elif joined and scored[0] >= self.threshold:
                joined.join(*pair)

        # on every core, in rounds: a pair that earlier rounds put in one group is skipped
        score_pairs([(a, b) for a, b in pairs if a in local and b in local], local, thumbs,
                    skip=(lambda a, b: joined.same(a, b)) if joined else (lambda a, b: False), done=done,
                    plain_only=plain_only)
        if pending:
            colour = {i: e.colour for i, e in (extra or {}).items() if e.colour is not None}
            colour.update(index.feature_values(sorted({i for p in pending for i in p} - set(colour)), "cthumb"))
            for a, b in pending:
                out[(a, b)] = self._frames(index, a, b, copy_score(
                    fits[(a, b)], thumbs.get(a), thumbs.get(b), local[a], local[b],
                    lambda a=a, b=b: (colour[a], colour[b]) if a in colour and b in colour else None))
                if joined and out[(a, b)][0] >= self.threshold:
                    joined.join(a, b)
        self._zoom_again(index, out, local, thumbs, extra, joined)
        return out, local

    def _zoom_again(self, index, out: dict, local: dict, thumbs: dict, extra, joined) -> None:
        """Pairs whose fit zooms by zoom.ZOOM or more and that fell short: scored again against the
        larger side seen closer (search/zoom.py). A better score replaces the first."""
        from lookalike.search import zoom as Z

        todo = []
        for pair, (s, det) in out.items():
            side = Z.larger_side(det)
            if s < self.threshold and side is not None and not (joined and joined.same(*pair)):
                todo.append((pair, pair[1 - side], pair[side]))  # (pair, smaller side, larger side)
        if not todo:
            return
        zooms = Z.values(index, {big for *_, big in todo}, extra)
        for pair, small, big in todo:
            if big not in zooms or (joined and joined.same(*pair)):
                continue
            scored = Z.rescore(local[small], thumbs.get(small), zooms[big])
            scored = (scored[0], {**scored[1], "larger": pair.index(big)})
            if scored[0] > out[pair][0]:
                out[pair] = self._frames(index, *pair, scored)
                if joined and out[pair][0] >= self.threshold:
                    joined.join(*pair)

    def _frames(self, index, a: int, b: int, scored: tuple[float, dict]) -> tuple[float, dict]:
        """A whole-image copy of two composite frames holds only if a picture of one is in the other."""
        from lookalike.search import regions as R

        if scored[0] < self.threshold or not R.pictures_differ(index, a, b, self.threshold):
            return scored
        return min(scored[0], SAME_FRAME), {**scored[1], "relation": "same-frame"}

    def _voted_regions(self, index, pairs, own: dict | None = None, own_cnn: dict | None = None) -> list:
        """Region candidates of files that share keypoints (regions.voted). own, own_cnn: the regions
        and CNN vector of images outside the index (a query)."""
        from lookalike.search import regions as R

        owners = {**R.region_table(index).regions, **(own or {})}
        pairs = [p for p in pairs if owners.get(p[0]) or owners.get(p[1])]
        wholes = index.feature_values(sorted({i for p in pairs for i in p if i >= 0}), "cnn")
        return [c for c in R.voted(owners, pairs, {**wholes, **(own_cnn or {})}) if c[3] >= self.min_cosine]

    def _query_regions(self, index, q: Query, zoom=None, voted=()) -> dict:
        """Region matches of a query: its own picture regions against indexed images, and its whole
        image against indexed regions -> {(owner, other): (score, details)}, the query as id -1.
        voted: the files the query shares keypoints with."""
        from lookalike.features.local import extract_local
        from lookalike.search import regions as R
        from lookalike.search.photometric import thumb

        value = q.features.get("regions")
        own = {-1: value} if value is not None else {}
        cands = R.candidates(index, own, {-1: q.features["cnn"]}, self.min_cosine)
        cands += self._voted_regions(index, [(-1, o) for o in voted], own, {-1: q.features["cnn"]})
        if not cands:
            return {}
        qloc = q.features.get("local")
        return R.verify_regions(index, cands, own, {-1: OutsideImage(
            qloc if qloc is not None else extract_local(q.rgb), thumb(q.rgb), zoom or _query_zoom(q))})

    def _file_regions(self, index, fids: list[int], joined: "_Groups | None" = None) -> dict:
        """Region matches of indexed files, as pairs() finds them: their picture regions against whole
        images and their whole images against regions -> {(owner, other): (score, details)}."""
        from lookalike.search import regions as R

        table = R.region_table(index)
        own = {f: table.regions[f] for f in fids if f in table.regions}
        cnn = index.feature_values(fids, "cnn")
        cands = R.candidates(index, own, cnn, self.min_cosine)
        votes = keypoint_index(index)
        cands += self._voted_regions(index, [(f, o) for f in fids for o in votes.of_file(f)])
        if joined is not None:
            cands = [c for c in cands if not joined.same(c[0], c[1])]
        return R.verify_regions(index, cands, own)

    def search(self, index, q, k, min_score):
        hits = {h[0]: h for h in super().search(index, q, k, min_score)}
        qzoom = _query_zoom(q)
        vx = index.vectors("cnn")
        # one query has no copies of copies to lean on (pairs() has): look deeper than pairs() does,
        # past the query's easy copies that fill the nearest places
        sims, ids = vx.search(np.asarray(q.features["cnn"], np.float32)[None], max(k, 3 * self.neighbours))
        qloc = q.features.get("local")
        if qloc is None:
            from lookalike.features.local import extract_local

            qloc = extract_local(q.rgb)
        voted = keypoint_index(index).query(qloc.desc)
        cands = []
        for s_, i in [*zip(sims.ravel(), ids.ravel()), *((1.0, i) for i in voted)]:
            i = int(i)
            confirmed = i in hits and hits[i][1] >= self.threshold
            if i >= 0 and s_ >= self.min_cosine and not confirmed and i not in cands:
                cands.append(i)
        if cands:
            from lookalike.search.photometric import colour_thumb, thumb

            scored, _ = self._verify(index, [(-1, c) for c in cands],
                                     {-1: OutsideImage(qloc, thumb(q.rgb), qzoom, colour_thumb(q.rgb))})
            for (a, b), (s, det) in scored.items():
                if s >= min_score and (b not in hits or s > hits[b][1]):
                    hits[b] = (b, s, "sift", det)
        for (a, b), (s, det) in self._query_regions(index, q, qzoom, voted).items():
            other = b if a == -1 else a
            if s >= min_score and (other not in hits or s > hits[other][1]):
                hits[other] = (other, s, "region", det)
        self._expand(index, hits)
        return sorted(hits.values(), key=lambda h: -h[1])

    def _file_candidates(self, index, fid: int) -> tuple[dict[int, float], list[int]]:
        """What pairs() would look at for one indexed file -> ({hash match: score}, other candidates:
        files it shares keypoints with, then its CNN neighbours)."""
        hashed: dict[int, float] = {}
        m = self._matcher(index)
        row = m._row.get(fid)
        if row is not None:
            variants = {meth: c[row] for meth, c in m.codes.items()}
            for i, (s_, meth, _) in m.query(variants, self.threshold).items():
                if i != fid and not m.weak_pair(fid, i):
                    hashed[i] = max(s_, hashed.get(i, 0.0))
        others = list(keypoint_index(index).of_file(fid))
        cnn = index.feature_values([fid], "cnn").get(fid)
        if cnn is not None:
            sims, ids = index.vectors("cnn").search(np.asarray(cnn, np.float32)[None], self.neighbours)
            others += [int(i) for s_, i in zip(sims.ravel(), ids.ravel())
                       if i >= 0 and i != fid and s_ >= self.min_cosine]
        return hashed, list(dict.fromkeys(i for i in others if i not in hashed))

    max_expansion = 500  # copies of copies followed per query at most (pairs()' closure limit)

    def _expand(self, index, hits: dict) -> None:
        """Copies of copies, as pairs() joins them: from every confirmed hit, the pairs pairs() would
        verify for it (its hash matches, the files it shares keypoints with, its CNN neighbours) are
        verified, and what they confirm joins the query's hits, scored by the weakest link (method
        "transitive"). So `search` finds every file `dedup` puts in one copy group with it (a copy
        rotated by 135 degrees that only its 90- and 180-degree siblings match)."""
        joined = _Groups()
        frontier = [h[0] for h in hits.values() if h[1] >= self.threshold]
        for f in frontier:
            joined.join(-1, f)
        while frontier and len(hits) < self.max_expansion:
            todo: list[tuple[int, int]] = []
            verified = {}
            for f in frontier:
                hashed, others = self._file_candidates(index, f)
                for c, s_ in hashed.items():  # near-certain hash matches: accepted as pairs() does
                    if s_ >= self.hash_sure and not joined.same(-1, c):
                        verified[(f, c)] = (s_, {"method": "hash"})
                        joined.join(f, c)
                todo += [(f, c) for c in [*hashed, *others] if not joined.same(-1, c)]
            more, _ = self._verify(index, list(dict.fromkeys(todo)), joined=joined)
            verified.update(more)
            for (a, b), sd in self._file_regions(index, frontier, joined).items():
                f, c = (a, b) if a in set(frontier) else (b, a)
                if f in hits and not joined.same(-1, c) and sd[0] > verified.get((f, c), (-1.0,))[0]:
                    verified[(f, c)] = sd
            frontier = []
            for (f, c), (s_, det) in verified.items():
                if s_ < self.threshold:
                    continue
                if c not in hits or hits[c][1] < self.threshold:
                    frontier.append(c)
                link = min(s_, hits[f][1])
                if c not in hits or link > hits[c][1]:
                    hits[c] = (c, link, "transitive", {"via": int(f), **det})

    def _verify_any(self, index, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], tuple[float, dict]]:
        """Each pair verified as whole images and, where either has picture regions, region against
        whole image (a screenshot's picture against its original): the better score counts."""
        from lookalike.search import regions as R

        scored, _ = self._verify(index, pairs)
        owners = R.region_table(index).regions
        asked = set(pairs)
        for (o, x), sd in R.verify_regions(index, R.each_way(owners, pairs), owners).items():
            key = (o, x) if (o, x) in asked else (x, o)
            if sd[0] > scored.get(key, (-1.0,))[0]:
                scored[key] = sd
        return scored

    def _candidates(self, index, joined: "_Groups") -> dict[tuple[int, int], tuple[int, float]]:
        """Pairs worth verifying, unless already joined in one copy group -> (keypoint votes, cosine):
        files that share keypoints, and CNN neighbours (0 votes)."""
        vx = index.vectors("cnn")
        cands: dict[tuple[int, int], tuple[int, float]] = {}
        voted = keypoint_index(index).candidates()
        ids = sorted({i for p in voted for i in p})
        cnn = index.feature_values(ids, "cnn")
        for (a, b), v in voted.items():
            if not joined.same(a, b):
                cos = float(np.dot(cnn[a], cnn[b])) if a in cnn and b in cnn else 0.0
                cands[(a, b)] = (v, cos)
        sims, nbr = vx.knn_graph(self.neighbours)
        for a, row_s, row_i in zip(vx.ids(), sims, nbr):
            for s_, b in zip(row_s, row_i):
                key = (int(min(a, b)), int(max(a, b)))
                if b >= 0 and b != a and s_ >= self.min_cosine and key not in cands and not joined.same(*key):
                    cands[key] = (0, float(s_))
        return cands

    hash_sure = 0.9  # hash pairs scoring below this are checked by SIFT too
    min_keypoints = 100  # ... and dropped when SIFT, with this many keypoints on both sides, finds no copy

    def _other_moments(self, index, pairs) -> set:
        """Near-identical hash pairs whose thumbnails, aligned by their sizes, disagree in one patch
        (a burst shot, a fixed camera's other moment): verified like other pairs, not accepted."""
        from lookalike.search.photometric import unaligned_patch

        th = index.feature_values(sorted({i for p in pairs for i in p}), "thumb")
        return {(a, b) for a, b in pairs if a in th and b in th and unaligned_patch(th[a], th[b]) >= MOMENT_PATCH}

    def pairs(self, index, threshold):
        found = {(h[0], h[1]): h for h in super().pairs(index, threshold)}
        # low-content pictures matched by one hash alone are left to the CNN + SIFT path below
        m = self._matcher(index)
        found = {k: h for k, h in found.items() if h[3] not in ("pdq", "phash") or not m.weak_pair(*k)}
        # near-certain hash pairs need no verification; borderline ones (different photos of one
        # scene with similar layouts reach pHash distance 8) are checked, and CNN neighbours are verified
        sure = {k for k, h in found.items() if h[2] >= self.hash_sure}
        sure -= self._other_moments(index, sure)
        joined = _Groups()
        for a, b in sure:
            joined.join(a, b)
        # borderline hash pairs first, then CNN candidates from the most alike: pairs that earlier
        # confirmations already put in one group are not verified again (the closure adds them)
        cands = self._candidates(index, joined)
        todo = sorted(set(found) - sure) + sorted(set(cands) - set(found), key=lambda k: (-cands[k][0], -cands[k][1], k))
        plain_only = {k for k, (_, c) in cands.items() if c < self.mirror_min_cosine and k not in found}
        verified, local = self._verify(index, todo, joined=joined, plain_only=plain_only)
        sizes = {i: len(lf) for i, lf in local.items()}
        for (a, b), (s, det) in verified.items():
            old = found.get((a, b))
            if old is not None and s < self.threshold and min(sizes.get(a, 0), sizes.get(b, 0)) >= self.min_keypoints:
                # a textured pair that SIFT cannot match is not a copy, whatever a 64-bit hash says
                found[(a, b)] = (a, b, s, f"{old[3]}+sift", {**old[4], **det})
            elif s >= threshold and (old is None or s > old[2]):
                found[(a, b)] = (a, b, s, "sift", det)
        from lookalike.search import regions as R

        table = R.region_table(index)
        cands = R.candidates(index, table.regions, {}, self.min_cosine)
        cands += self._voted_regions(index, keypoint_index(index).candidates())
        cands = [c for c in cands if not joined.same(c[0], c[1])]
        for (a, b), (s, det) in R.verify_regions(index, cands, table.regions).items():
            key = (min(a, b), max(a, b))
            if s >= threshold and (key not in found or s > found[key][2]):
                found[key] = (*key, s, "region", det)
        direct = [h for h in _best_per_pair(list(found.values())) if h[2] >= threshold]
        # copies of copies only through confident links: a low threshold adds weaker direct pairs,
        # never chains of them (one weak false link would join two whole groups)
        linked = max(threshold, self.threshold)
        chain, doubtful = self._chained(index, [h for h in direct if h[2] >= linked])
        direct = [h for h in direct if h[:2] not in doubtful] + [
            (a, b, min(s, UNCONFIRMED), m, {**det, "relation": "unconfirmed"}) for a, b, s, m, det in doubtful.values()]
        return _best_per_pair([h for h in direct if h[2] >= threshold] + transitive_pairs(chain))

    strong_link = 0.9  # links below this join two groups only if a triangle confirms them (_chained)

    def _chained(self, index, links: list) -> tuple[list, dict]:
        """The links that copies of copies follow, and {pair: link} of those its triangle contradicts.
        A link below strong_link that would join two groups must be confirmed by a triangle: one side
        verifies as a copy of one of the other side's closest partners (up to 3 each way). A crop of a
        facade that fits another photo of that facade (0.82-0.85), two screenshots of one layout alike
        by their hashes, two collages on one patterned background: each matched one file of a group and
        none of its copies. Unconfirmed, such a link joins nothing and is scored UNCONFIRMED."""
        strong = [h for h in links if h[2] >= self.strong_link]
        groups = _Groups()
        for h in strong:
            groups.join(h[0], h[1])
        partners: dict[int, list] = {}
        for a, b, s_, *_ in strong:
            partners.setdefault(a, []).append((s_, b))
            partners.setdefault(b, []).append((s_, a))
        best = {i: [j for _, j in sorted(ps, reverse=True)[:3]] for i, ps in partners.items()}
        weak = sorted((h for h in links if h[2] < self.strong_link), key=lambda h: -h[2])
        checks = {}
        for a, b, _, method, det in weak:
            if not groups.same(a, b):
                # a part of a copy is a copy: only the side that shows more than the other must verify
                # against the other's partners (a crop of a crop joins its original's group freely)
                larger = _larger_side(method, det)
                if larger is None and not (best.get(a) and best.get(b)):
                    continue  # alike framings: one file joins a group, no two groups merge
                checks[(a, b)] = ([(p, b) for p in best.get(a, []) if p != b] if larger != 0 else []) + (
                    [(a, p) for p in best.get(b, []) if p != a] if larger != 1 else [])
        scored = self._verify_any(index, sorted({c for cs in checks.values() for c in cs}))
        out, doubtful = list(strong), {}
        for h in weak:
            tri = checks.get(h[:2], [])
            if groups.same(h[0], h[1]) or not tri or any(scored.get(c, (0.0,))[0] >= self.threshold for c in tri):
                groups.join(h[0], h[1])
                out.append(h)
            else:
                doubtful[h[:2]] = h
        return out, doubtful

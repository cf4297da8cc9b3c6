"""Copies shown small inside a larger frame: a crop in a desktop screenshot, a photo in a collage.

The whole frame's CNN descriptor hardly sees a picture that fills a fifth of it, and the frame's SIFT
keypoints fall mostly on UI text or the collage's pattern. Each picture region of a composite
(features/regions.py) carries its own CNN vector, SIFT and thumbnail: region vectors are searched
against whole images (the frame holds a copy of an indexed photo) and whole images against region
vectors (an indexed frame holds a copy of the query), and every candidate is verified like a whole
image (copy_score) with the region standing in for its frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lookalike.features.regions import Region

NEIGHBOURS = 30  # whole-image candidates per region: a screenshot's picture ranked its original 11th-20th
# among 330 images, behind crops of other photos (those of its own copy group are not verified again)
REVERSE_NEIGHBOURS = 20  # region candidates per whole image
MIN_SCORE = 0.9  # a region confirms a copy only this surely: another photo of one landmark reached
# 0.81-0.84 against a scaled picture's region on near_duplicate (and chained two copy groups); true
# region copies there scored 0.91-1.0
REGION_ZOOM, FIT_FOUND = 1.25, 0.5  # see _look_closer


@dataclass
class RegionTable:
    owners: np.ndarray  # (m,) file id of each region
    vecs: np.ndarray  # (m, dim) region CNN vectors
    regions: dict[int, list[Region]]


def region_table(index) -> RegionTable:
    """Every indexed region, cached until the `regions` feature changes."""
    from lookalike.features import registry

    def build():
        ex = registry.get("regions")
        regions = {}
        for fid, blob in index.catalog.iter_feature("regions", ex.version):
            if len(blob) > 8:  # an empty list is 8 bytes
                regions[fid] = ex.decode(blob)
        owners = [fid for fid, rs in regions.items() for _ in rs]
        vecs = [r.cnn for rs in regions.values() for r in rs]
        dim = registry.get("cnn").dim
        return RegionTable(np.array(owners, np.int64), np.array(vecs, np.float32).reshape(-1, dim), regions)

    return index.cached("copy-regions", ("regions",), build)


def candidates(index, owners: dict[int, list[Region]], sources: dict[int, np.ndarray], min_cosine: float,
               ) -> list[tuple[int, int, int, float]]:
    """(key, other file id, region number, cosine) to verify. owners: {key: its regions}: each region is
    searched among whole images; the pair is (key, other) with the key's region. sources: {key: whole
    CNN vector}: searched among indexed regions; the pair is (key, owner) with the owner's region."""
    out = []
    rows = [(k, n, r.cnn) for k, rs in owners.items() for n, r in enumerate(rs)]
    if rows:
        vx = index.vectors("cnn")
        sims, ids = vx.search(np.stack([v for *_, v in rows]).astype(np.float32), NEIGHBOURS)
        for (k, n, _), row_s, row_i in zip(rows, sims, ids):
            out += [(k, int(i), n, float(s)) for s, i in zip(row_s, row_i) if i >= 0 and i != k and s >= min_cosine]
    table = region_table(index)
    if sources and len(table.owners):
        keys = list(sources)
        sims = np.stack([np.asarray(sources[k], np.float32) for k in keys]) @ table.vecs.T
        for k, row in zip(keys, sims):
            for j in np.argsort(-row)[:REVERSE_NEIGHBOURS]:
                owner = int(table.owners[j])
                if row[j] >= min_cosine and owner != k:
                    n = int(np.sum(table.owners[:j] == owner))
                    out.append((owner, k, n, float(row[j])))
    return out


def voted(owners: dict[int, list[Region]], pairs, wholes: dict[int, np.ndarray]) -> list[tuple[int, int, int, float]]:
    """(key, other, region number, cosine) for each region of either file of a pair that shares
    keypoints (search/keypoints.py), against the other's whole image: a picture small in its frame
    whose region's CNN vector ranks its original too low. Not against another composite: two collages
    that share one photo are no copies of each other. owners: {key: regions}; wholes: {id: CNN}."""
    out = []
    for a, b in pairs:
        for k, o in ((a, b), (b, a)):
            for n, r in enumerate(owners.get(k) or ()):
                if o in wholes and not owners.get(o):
                    out.append((k, o, n, float(np.dot(r.cnn, wholes[o]))))
    return out


def verify_regions(index, cands, owners: dict[int, list[Region]], extra: dict | None = None,
                   ) -> dict[tuple[int, int], tuple[float, dict]]:
    """Copy-scale score of each candidate (owner key, other, region number, cosine), the region
    verified against the other's whole image -> {(owner, other): (best score, details)}.
    extra: {key: zoom.OutsideImage} of images outside the index (a query). A region whose fit shows
    the other's content enlarged by zoom.ZOOM and falls short is verified again against the other
    seen closer (a crop in a screenshot: search/zoom.py)."""
    from lookalike.search import zoom as Z
    from lookalike.search.batchverify import score_pairs

    if not cands:
        return {}
    table = region_table(index)
    ids = sorted({o for _, o, *_ in cands if o >= 0 and o not in (extra or {})})
    local = index.feature_values(ids, "local")
    thumbs = index.feature_values(ids, "thumb")
    for k, e in (extra or {}).items():
        local[k], thumbs[k] = e.local, e.thumb
    # each region stands in for its frame under its own key, so that they are verified like whole images
    cosine: dict[tuple, float] = {}
    for key, other, n, cos in cands:
        regs = owners.get(key) or table.regions.get(key)
        if regs and n < len(regs) and other in local:
            rk = ("region", key, n)
            local[rk], thumbs[rk] = regs[n].local, regs[n].thumb
            cosine[(rk, other)] = max(cos, cosine.get((rk, other), -1.0))
    out: dict[tuple[int, int], tuple[float, dict]] = {}
    closer = []

    def keep(pair, s, det):
        (_, key, n), other = pair
        if s < MIN_SCORE:
            s = min(s, 0.75)
        if s > out.get((key, other), (-1.0, {}))[0]:
            box = (owners.get(key) or table.regions.get(key))[n].box
            out[(key, other)] = (s, {**det, "region": list(map(int, box)), "cosine": round(cosine[pair], 4)})

    def done(pair, scored, _fit):
        keep(pair, *scored)
        if scored[0] < MIN_SCORE and _look_closer(scored[1]):
            closer.append(pair)

    score_pairs(list(cosine), local, thumbs, skip=lambda a, b: False, done=done)
    if closer:
        zooms = Z.values(index, {o for _, o in closer}, extra)
        for pair in closer:
            rk, other = pair
            if out[(rk[1], other)][0] < MIN_SCORE and other in zooms:
                keep(pair, *Z.rescore(local[rk], thumbs[rk], zooms[other], whole=False))
    return out


def _look_closer(det: dict) -> bool:
    """Is a region pair that fell short seen closer (the other side's `zoom` feature)? When its fit shows
    the other's content enlarged by zoom.ZOOM, as for whole images; from REGION_ZOOM on when a fit was
    found (verification >= FIT_FOUND) but not confirmed: at a modest zoom the first look finds the fit
    if there is one, and only its confirmation needs finer pixels (dev set: 5 of the 29 such pairs
    with a fit rescued, none of the 193 without one)."""
    from lookalike.search import zoom as Z

    if Z.larger_side(det) == 1:
        return True
    return Z.larger_side(det, REGION_ZOOM) == 1 and det.get("verification", 0.0) >= FIT_FOUND


def pictures_differ(index, a: int, b: int, threshold: float) -> bool:
    """Two composite frames (both with picture regions) that verify as whole images are copies only if
    a picture of one is found in the other: two phone screenshots of different photos match on their
    status bars, buttons and caption layout, and their 60 px wide pictures agree at the thumbnail's
    resolution (different photos of one street: 0.98). False when either has no region."""
    table = region_table(index)
    if not table.regions.get(a) or not table.regions.get(b):
        return False
    cands = each_way(table.regions, [(a, b)])
    return max((s for s, _ in verify_regions(index, cands, table.regions).values()), default=0.0) < threshold


def each_way(owners: dict[int, list[Region]], pairs) -> list[tuple[int, int, int, float]]:
    """Candidates (key, other, region number, 1.0) of every region of either file of each pair against
    the other's whole image."""
    return [(o, x, n, 1.0) for a, b in pairs for o, x in ((a, b), (b, a)) for n in range(len(owners.get(o) or ()))]

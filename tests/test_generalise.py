"""Failure classes of issue 13 (right on photos never seen), each on a small fixture made from
../shared/data at test time: two faces of one photo are never one person; `search` finds every pair
`dedup` reports."""

from __future__ import annotations

import numpy as np
from PIL import Image

from lookalike.eval.datasets import read_faces


# -- faces: cannot-link ---------------------------------------------------------------------------

def test_refine_never_joins_items_of_one_source():
    """Synthetic: two tight groups; two near-identical vectors of one source (a photo) inside one group
    end in different clusters, and a first cluster of two such items splits."""
    from lookalike.cluster.engine import cluster_vectors

    rng = np.random.default_rng(0)
    centre = rng.normal(size=(2, 64))
    X = np.concatenate([centre[0] + 0.05 * rng.normal(size=(6, 64)), centre[1] + 0.05 * rng.normal(size=(6, 64)),
                        centre[0] + 0.01 * rng.normal(size=(1, 64))])
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    sources = list(range(12)) + [0]  # item 12 comes from the photo of item 0
    free = cluster_vectors(X, threshold=0.9, k=5, link_threshold=0.75, floor=0.85).labels
    assert free[12] == free[0]  # without the constraint the two join, as they look alike
    lab = cluster_vectors(X, threshold=0.9, k=5, link_threshold=0.75, floor=0.85, sources=sources).labels
    assert lab[12] != lab[0]
    assert len(set(lab[:6])) <= 2 and lab[6] == lab[11]  # the rest keeps its groups
    pair = cluster_vectors(X[[0, 12]], threshold=0.9, k=2, sources=[5, 5]).labels
    assert pair[0] != pair[1]


def test_two_faces_of_one_photo_are_two_people(tmp_path, data_dir, face_models):
    """A collage of two photos of ONE person holds two faces; the engine must still not call them one
    person (a photo never shows a person twice), while each original joins one of them."""
    from lookalike.api import Index
    from lookalike.cluster import cluster_index

    ds = read_faces(data_dir / "faces")
    person = sorted({ds.identity[k] for k in ds.images})[0]
    a, b = sorted(str(ds.files[k]) for k in ds.images if ds.identity[k] == person)[:2]
    ims = [Image.open(p).convert("RGB") for p in (a, b)]
    h = min(im.height for im in ims)
    ims = [im.resize((round(im.width * h / im.height), h)) for im in ims]
    collage = Image.new("RGB", (sum(im.width for im in ims) + 20, h), "white")
    collage.paste(ims[0], (0, 0))
    collage.paste(ims[1], (ims[0].width + 20, 0))
    collage.save(tmp_path / "collage.jpg", quality=92)
    with Index.open(tmp_path / "idx") as idx:
        idx.add([a, b, str(tmp_path / "collage.jpg")], workers=1)
        rows = cluster_index(idx, by="face", save=False).rows()
    mine = {f: c for p, f, c in rows if p.endswith("collage.jpg")}
    assert len(mine) == 2, rows
    assert mine[0] != mine[1]
    assert {c for p, f, c in rows if f == 0 and p in (a, b)} <= set(mine.values())



def test_representative_is_the_trusted_face():
    """A cluster's representative (its most confident member) weighs the member's quality: a blurred or
    doubtful detection that happens to sit in the middle of its cluster does not represent it."""
    from lookalike.cluster.engine import member_confidence

    confidence = np.array([0.95, 0.9, 0.88, 0.85], np.float32)  # member 0: the most central
    quality = np.array([0.1, 0.9, 0.9, 0.9], np.float32)
    assert int(np.argmax(member_confidence(confidence, None))) == 0
    assert int(np.argmax(member_confidence(confidence, quality))) == 1

# -- copy: search and dedup agree -------------------------------------------------------------------

def test_search_finds_every_pair_dedup_reports(tmp_path, data_dir):
    """A photo of a landmark rotated in 45-degree steps: `dedup --mode copy` groups the photo with its
    rotations (some only through their siblings), and `search --mode copy` of any file of a reported
    pair finds the other; another photo of the place stays apart."""
    from lookalike.api import Index

    root = data_dir / "near_duplicate" / "images" / "sacre_coeur_rot_scale"
    stems = sorted(p.stem for p in (root / "mapping").glob("*.jpg"))[:2]
    files = [str(root / "mapping" / f"{s}.jpg") for s in stems]
    files += [str(p) for p in sorted((root / "mapping_rot").glob(f"{stems[0]}_rot*.jpg"))]
    with Index.open(tmp_path / "idx") as idx:
        idx.add(files, workers=1)
        res = idx.dedup(mode="copy")
        partners: dict[str, set] = {}
        for p in res.pairs:
            partners.setdefault(p.a, set()).add(p.b)
            partners.setdefault(p.b, set()).add(p.a)
        assert not any(stems[1] in p for p in partners)
        assert sum(len(v) for v in partners.values()) >= 2 * 24  # most of the group's 28 pairs
        found = {r.query: {m.path for m in r.results} for r in idx.search(sorted(partners), mode="copy", k=100,
                                                                          min_score=res.threshold)}
    missed = [(q, o) for q, want in partners.items() for o in want if o not in found[q]]
    assert not missed, missed

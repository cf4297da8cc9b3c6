"""Readers of the ground-truth formats: a tiny hand-made set, then the real data tree.

The exact counts stated in the DEV README are checked only on the DEV tree; the structural
checks hold for any tree in the format (the hidden twin set has other counts).
"""

from pathlib import Path

import pytest

from lookalike.eval import datasets as D
from lookalike.eval.metrics import pair


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_near_duplicate_format(tmp_path):
    root = tmp_path / "near_duplicate"
    names = ["images/a.jpg", "images/b.jpg", "images/c.jpg", "images/d e.jpg", "images/x.jpg", "images/bad.jpg"]
    for n in names:
        _write(root / n, "")
    _write(root / "images.txt", "\n".join(names) + "\n")
    _write(root / "pairs.csv", 'a,b,transform\nimages/a.jpg,images/b.jpg,hflip\n'
           'images/b.jpg,images/c.jpg,gray\n"images/d e.jpg",images/x.jpg,crop\n')
    _write(root / "hard_negatives.csv", 'a,b,note\nimages/a.jpg,images/x.jpg,"same place, other photo"\n')
    _write(root / "unreadable.txt", "images/bad.jpg\n")
    s = D.read_set(tmp_path, "near_duplicate")
    assert s.components == [frozenset({"images/a.jpg", "images/b.jpg", "images/c.jpg"}),
                            frozenset({"images/d e.jpg", "images/x.jpg"})]
    assert len(s.true_pairs()) == 4
    assert s.transform_of("images/b.jpg", "images/a.jpg") == "hflip"
    assert s.transform_of("images/a.jpg", "images/c.jpg") == D.TRANSITIVE
    assert s.transform_of("images/a.jpg", "images/x.jpg") is None
    assert s.hard_negative_pairs() == {("images/a.jpg", "images/x.jpg")}
    assert s.hard_negatives[0].note == "same place, other photo"
    assert s.readable == names[:-1] and s.unreadable == {"images/bad.jpg"}
    assert s.files["images/d e.jpg"] == root / "images/d e.jpg"
    assert s.key_of(root / "images" / "d e.jpg") == "images/d e.jpg"
    assert s.key_of("images/./a.jpg") == "images/a.jpg"
    assert s.component_labels()["images/c.jpg"] == 0 and s.component_labels()["images/x.jpg"] == 1
    assert "images/bad.jpg" not in s.component_labels()


def test_missing_file_and_column_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="--data"):
        D.read_retrieval(tmp_path)
    _write(tmp_path / "groups.csv", "path,grp\nimages/a.jpg,x\n")
    with pytest.raises(ValueError, match="group"):
        D.read_retrieval(tmp_path)
    with pytest.raises(ValueError, match="choose one of"):
        D.read_set(tmp_path, "nope")


def test_background_format(tmp_path):
    _write(tmp_path / "groups.csv", "path,background,person\nimages/r/1.jpg,r,p\nimages/r/2.JPG,r,q\n"
           "images/s/3.jpg,s,p\nimages/t/4.jpg,t,\n")
    _write(tmp_path / "masks/r/1.png", "")
    _write(tmp_path / "masks/r/2.png", "")
    s = D.read_background(tmp_path)
    assert s.positive_pairs() == {("images/r/1.jpg", "images/r/2.JPG")}
    assert s.hard_negative_pairs() == {("images/r/1.jpg", "images/s/3.jpg")}
    assert s.mask_path("images/r/2.JPG") == tmp_path / "masks/r/2.png"
    assert s.mask_path("images/s/3.jpg") is None
    assert s.queries == ["images/r/1.jpg", "images/r/2.JPG"]  # backgrounds with one image are no query
    assert s.relevant("images/r/1.jpg") == {"images/r/2.JPG"}


def _is_dev(data_dir: Path) -> bool:
    readme = data_dir / "README.md"
    return readme.is_file() and "DEV tree" in readme.read_text(encoding="utf-8").splitlines()[0]


def test_near_duplicate_real(data_dir):
    s = D.read_near_duplicate(data_dir / "near_duplicate")
    assert all(p.is_file() for p in s.files.values())
    true = s.true_pairs()
    assert not (s.hard_negative_pairs() & true)  # hard negatives never lie inside a component
    assert all(pair(p.a, p.b) in true for p in s.pairs)
    assert s.unreadable <= set(s.images)
    assert not s.unreadable & {k for c in s.components for k in c}
    assert set(s.pair_transforms().values()) >= {p.transform for p in s.pairs}
    if _is_dev(data_dir):
        assert len(s.images) == 1042 and len(s.pairs) == 915
        assert len(s.components) == 87 and sum(map(len, s.components)) == 1002
        assert len(s.hard_negative_pairs()) == 485 and len(s.unreadable) == 2


def test_retrieval_real(data_dir):
    s = D.read_retrieval(data_dir / "retrieval")
    assert all(p.is_file() for p in s.files.values())
    rel = s.relevant_sets()
    assert all(rel.values()) and all(q not in r for q, r in rel.items())
    distractors = [k for k in s.images if not s.group[k]]
    assert distractors and not any(d in r for d in distractors for r in rel.values())
    if _is_dev(data_dir):
        assert (len(s.images), len(s.groups), len(s.queries)) == (55, 6, 26)


def test_background_real(data_dir):
    s = D.read_background(data_dir / "background")
    assert all(p.is_file() for p in s.files.values())
    assert s.masks and all(p.is_file() for p in s.masks.values())
    assert not s.positive_pairs() & s.hard_negative_pairs()
    if _is_dev(data_dir):
        assert (len(s.images), len(s.groups), len(s.masks)) == (248, 30, 230)
        assert len(s.positive_pairs()) == 933 and len(s.hard_negative_pairs()) == 1356


def test_faces_real(data_dir):
    f = D.read_faces(data_dir / "faces")
    assert all(p.is_file() for p in f.files.values())
    big = D.read_faces(data_dir / "faces_large")
    assert big.multi_face == [] and all(p.is_file() for p in big.files.values())
    if _is_dev(data_dir):
        assert (len(f.images), len(f.clusters()), len(f.same_identity_pairs()), len(f.multi_face)) == (83, 13, 319, 1)
        assert (len(big.images), len(big.clusters())) == (859, 99)


def test_documents_real(data_dir):
    s = D.read_documents(data_dir / "documents")
    assert all(p.is_file() for p in s.files.values())
    inv = set(s.images())
    assert all(p.a in inv and p.b in inv for p in s.pairs)
    # the pair list is transitively closed: every pair inside a group is listed
    assert sum(len(g) * (len(g) - 1) // 2 for g in s.groups()) == len(s.true_pairs())
    if _is_dev(data_dir):
        assert (len(s.documents), len(s.inventory), len(s.pairs), len(s.groups())) == (122, 351, 520, 39)

"""Readers of the ground-truth formats of the evaluation sets (see shared/data/README.md).

Each reader takes the set's folder and returns a plain dataclass. Items are keyed by the path
exactly as the set's files write it (POSIX, relative to the set's folder); `files` maps every
key to its absolute Path and `key_of(path)` maps a path back to its key. Only the files that
the format defines are read (never `sources.csv` or `meta.csv`).
"""

from __future__ import annotations

import csv
import posixpath
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from lookalike.eval.metrics import Pair, connected_components, pair, pairs_within

TRANSITIVE = "transitive"


def _key(text: str) -> str:
    """Normalise a path written in a set file to a relative POSIX key."""
    return posixpath.normpath(text.strip().replace("\\", "/"))


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: point --data at the shared/data folder")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; expected header {','.join(columns)}")
        return [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]


def _read_list(path: Path, *, required: bool = True) -> list[str]:
    if not path.is_file():
        if required:
            raise FileNotFoundError(f"{path} not found: point --data at the shared/data folder")
        return []
    with path.open(encoding="utf-8") as f:
        return [_key(line) for line in f if line.strip()]


def _unique(keys) -> list[str]:
    return list(dict.fromkeys(keys))


@dataclass
class _Set:
    root: Path

    def path(self, key: str) -> Path:
        """Absolute path of a key."""
        return self.root / key

    def key_of(self, path: str | Path) -> str:
        """Key of a path given absolute, relative to the set's folder, or relative to the cwd."""
        p = Path(path)
        if not p.is_absolute():
            if (self.root / p).exists() or not p.exists():
                return _key(p.as_posix())
            p = p.resolve()
        try:
            return _key(p.resolve().relative_to(self.root.resolve()).as_posix())
        except ValueError:
            raise ValueError(f"{path} is not inside the set folder {self.root}") from None


# --- near_duplicate ----------------------------------------------------------------------


@dataclass(frozen=True)
class CopyPair:
    a: str  # original or reference
    b: str  # the copy
    transform: str


@dataclass(frozen=True)
class NotePair:
    a: str
    b: str
    note: str


@dataclass
class NearDuplicateSet(_Set):
    images: list[str]  # every image, readable or not
    files: dict[str, Path]
    unreadable: set[str]
    pairs: list[CopyPair]  # as listed in pairs.csv
    hard_negatives: list[NotePair]
    components: list[frozenset[str]]  # copy groups (transitive closure), 2+ images each
    _transform: dict[Pair, str] = field(default_factory=dict, repr=False)
    _component_of: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def readable(self) -> list[str]:
        """Images that should decode (all but unreadable.txt)."""
        return [k for k in self.images if k not in self.unreadable]

    def true_pairs(self) -> set[Pair]:
        """Every copy pair: all pairs inside each component (canonical, sorted)."""
        return pairs_within(self.components)

    def hard_negative_pairs(self) -> set[Pair]:
        return {pair(p.a, p.b) for p in self.hard_negatives}

    def pair_keys(self, found) -> set[Pair]:
        """Pairs a run found (anything with paths .a and .b, e.g. DedupResult.pairs) as key pairs."""
        return {pair(self.key_of(p.a), self.key_of(p.b)) for p in found}

    def is_copy(self, a: str, b: str) -> bool:
        ca, cb = self._component_of.get(a), self._component_of.get(b)
        return a != b and ca is not None and ca == cb

    def transform_of(self, a: str, b: str) -> str | None:
        """Transform of a listed pair, 'transitive' for other pairs of a component, else None."""
        name = self._transform.get(pair(a, b))
        if name is not None:
            return name
        return TRANSITIVE if self.is_copy(a, b) else None

    def pair_transforms(self) -> dict[Pair, str]:
        """Transform of every true pair (the categories for a recall-per-transform breakdown)."""
        return {p: self.transform_of(*p) for p in self.true_pairs()}

    def component_labels(self) -> dict[str, int | None]:
        """Clustering of the readable images: component number, None for images without copies."""
        return {k: self._component_of.get(k) for k in self.readable}


def read_near_duplicate(root: str | Path) -> NearDuplicateSet:
    root = Path(root)
    images = _unique(_read_list(root / "images.txt"))
    unreadable = set(_read_list(root / "unreadable.txt", required=False))
    pairs = [CopyPair(_key(r["a"]), _key(r["b"]), r["transform"])
             for r in _read_csv(root / "pairs.csv", ("a", "b", "transform"))]
    hard = [NotePair(_key(r["a"]), _key(r["b"]), r.get("note", ""))
            for r in _read_csv(root / "hard_negatives.csv", ("a", "b"))]
    components = [c for c in connected_components((p.a, p.b) for p in pairs) if len(c) > 1]
    transform: dict[Pair, str] = {}
    for p in pairs:
        transform.setdefault(pair(p.a, p.b), p.transform)
    return NearDuplicateSet(
        root=root, images=images, files={k: root / k for k in images}, unreadable=unreadable,
        pairs=pairs, hard_negatives=hard, components=components, _transform=transform,
        _component_of={k: i for i, c in enumerate(components) for k in c},
    )


# --- retrieval and background ------------------------------------------------------------


@dataclass
class RetrievalSet(_Set):
    images: list[str]
    files: dict[str, Path]
    group: dict[str, str]  # key -> group name, "" for distractors

    @property
    def queries(self) -> list[str]:
        """Grouped images (distractors are never queries)."""
        return [k for k in self.images if self.group[k]]

    @property
    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for k in self.images:
            if self.group[k]:
                out[self.group[k]].append(k)
        return dict(out)

    def relevant(self, query: str) -> set[str]:
        """Other images of the query's group (empty for a distractor)."""
        g = self.group.get(query, "")
        return {k for k in self.groups.get(g, ())} - {query} if g else set()

    def relevant_sets(self) -> dict[str, set[str]]:
        """Relevant set of every query, the input of `metrics.retrieval_metrics`."""
        groups = self.groups
        return {q: set(groups[self.group[q]]) - {q} for q in self.queries}


def read_retrieval(root: str | Path) -> RetrievalSet:
    root = Path(root)
    rows = _read_csv(root / "groups.csv", ("path", "group"))
    group = {_key(r["path"]): r["group"] for r in rows}
    images = list(group)
    return RetrievalSet(root=root, images=images, files={k: root / k for k in images}, group=group)


@dataclass
class BackgroundSet(RetrievalSet):
    person: dict[str, str] = field(default_factory=dict)  # key -> person id, "" for nobody
    masks: dict[str, Path] = field(default_factory=dict)  # key -> mask file (composites only)

    @property
    def queries(self) -> list[str]:
        """Images whose background has at least one other image."""
        counts: dict[str, int] = defaultdict(int)
        for k in self.images:
            counts[self.group[k]] += 1
        return [k for k in self.images if self.group[k] and counts[self.group[k]] > 1]

    def positive_pairs(self) -> set[Pair]:
        """Pairs of images with the same background."""
        return pairs_within(self.groups.values())

    def hard_negative_pairs(self) -> set[Pair]:
        """Same person in front of different backgrounds."""
        by_person: dict[str, list[str]] = defaultdict(list)
        for k in self.images:
            if self.person[k]:
                by_person[self.person[k]].append(k)
        return {p for p in pairs_within(by_person.values()) if self.group[p[0]] != self.group[p[1]]}

    def mask_path(self, key: str) -> Path | None:
        return self.masks.get(key)


def mask_key(image_key: str) -> str:
    """`images/x/y.jpg` -> `masks/x/y.png` (the format's rule for person masks)."""
    parts = image_key.split("/", 1)
    rest = parts[1] if len(parts) == 2 and parts[0] == "images" else image_key
    return posixpath.splitext("masks/" + rest)[0] + ".png"


def read_background(root: str | Path) -> BackgroundSet:
    root = Path(root)
    rows = _read_csv(root / "groups.csv", ("path", "background", "person"))
    group = {_key(r["path"]): r["background"] for r in rows}
    person = {_key(r["path"]): r["person"] for r in rows}
    images = list(group)
    # real photos have no mask: the mask file's existence is what tells them apart
    masks = {k: root / mask_key(k) for k in images if (root / mask_key(k)).is_file()}
    return BackgroundSet(root=root, images=images, files={k: root / k for k in images},
                         group=group, person=person, masks=masks)


# --- faces ------------------------------------------------------------------------------


@dataclass
class FacesSet(_Set):
    images: list[str]  # labelled single-face images
    files: dict[str, Path]
    identity: dict[str, str]
    multi_face: list[str]  # group photos without a label (may be empty)

    def clusters(self) -> list[list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for k in self.images:
            out[self.identity[k]].append(k)
        return list(out.values())

    def same_identity_pairs(self) -> set[Pair]:
        return pairs_within(self.clusters())


def read_faces(root: str | Path) -> FacesSet:
    """Reader for `faces/` and `faces_large/` (multi_face.txt is optional)."""
    root = Path(root)
    rows = _read_csv(root / "identities.csv", ("path", "identity"))
    identity = {_key(r["path"]): r["identity"] for r in rows}
    multi = _read_list(root / "multi_face.txt", required=False)
    images = list(identity)
    files = {k: root / k for k in images + multi}
    return FacesSet(root=root, images=images, files=files, identity=identity, multi_face=multi)


# --- documents --------------------------------------------------------------------------

DocImage = tuple[str, str]  # (document key, image id inside it)


@dataclass(frozen=True)
class InventoryRow:
    doc: str
    image: str
    sha256: str


@dataclass(frozen=True)
class DocPair:
    a: DocImage
    b: DocImage
    note: str


@dataclass
class DocumentsSet(_Set):
    documents: list[str]  # every file under docs/
    files: dict[str, Path]
    inventory: list[InventoryRow]
    pairs: list[DocPair]

    def images(self) -> list[DocImage]:
        return [(r.doc, r.image) for r in self.inventory]

    def true_pairs(self) -> set[Pair]:
        """Copy pairs of embedded images, as canonical ((doc, image), (doc, image)) tuples."""
        return {pair(p.a, p.b) for p in self.pairs}

    def groups(self) -> list[frozenset[DocImage]]:
        return [c for c in connected_components((p.a, p.b) for p in self.pairs) if len(c) > 1]


def read_documents(root: str | Path) -> DocumentsSet:
    root = Path(root)
    inv = [InventoryRow(_key(r["doc"]), r["image"], r["sha256"].lower())
           for r in _read_csv(root / "inventory.csv", ("doc", "image", "sha256"))]
    pairs = [DocPair((_key(r["doc_a"]), r["image_a"]), (_key(r["doc_b"]), r["image_b"]), r.get("note", ""))
             for r in _read_csv(root / "pairs.csv", ("doc_a", "image_a", "doc_b", "image_b"))]
    docs_dir = root / "docs"
    docs = sorted(p.relative_to(root).as_posix() for p in docs_dir.rglob("*") if p.is_file()) \
        if docs_dir.is_dir() else []
    docs = _unique(docs + [r.doc for r in inv])
    return DocumentsSet(root=root, documents=docs, files={k: root / k for k in docs},
                        inventory=inv, pairs=pairs)


def read_set(data_dir: str | Path, name: str):
    """Read one set of a data tree by folder name (near_duplicate, retrieval, background, faces,
    faces_large, documents)."""
    readers = {"near_duplicate": read_near_duplicate, "retrieval": read_retrieval,
               "background": read_background, "faces": read_faces, "faces_large": read_faces,
               "documents": read_documents}
    if name not in readers:
        raise ValueError(f"unknown set {name!r}; choose one of {', '.join(readers)}")
    return readers[name](Path(data_dir) / name)

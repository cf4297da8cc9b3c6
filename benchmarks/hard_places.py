"""Hard same-place checks for `similar` search, made from ../shared/data (helpers of bench_similar_hard.py).

Two sets of same-place groups, each with distractors:
- tune: the retrieval set (landmark groups, Lund street photos as distractors) - used while tuning;
- held-out: different photographs of one place from near_duplicate (hard_negatives.csv: landmark
  photos, the two views of each ScanNet room, one object), with its Lund street originals as
  distractors; groups whose photos are also in the retrieval set are left out. Never tuned on.

A query is one grouped photo under a condition (clean, night, thermal, season, viewpoint; see
lookalike.eval.conditions); it is searched in the set WITHOUT its own photo, and its relevant images are
the other photos of its place: a night shot must find the place's day photos, not its own original.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.eval import conditions, datasets
from lookalike.eval.metrics import ranked_ap


@dataclass
class PlaceSet:
    name: str
    files: dict[str, Path]  # key -> file, every gallery image
    group: dict[str, str]  # key -> place, grouped images only


def tune_set(data: Path) -> PlaceSet:
    ds = datasets.read_retrieval(data / "retrieval")
    return PlaceSet("tune", {k: ds.files[k] for k in ds.images}, {k: ds.group[k] for k in ds.queries})


def heldout_set(data: Path, max_group: int = 12) -> PlaceSet:
    """Components of near_duplicate's hard negatives (other photographs of one place) of 2..max_group
    photos; the component larger than that (one long street walk) supplies the distractors."""
    root = data / "near_duplicate"
    parent: dict[str, str] = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    with open(root / "hard_negatives.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            parent[find(row["a"])] = find(row["b"])
    comps: dict[str, list[str]] = {}
    for k in list(parent):
        comps.setdefault(find(k), []).append(k)
    retrieval_names = {Path(k).name for k in datasets.read_retrieval(data / "retrieval").images}
    files, group = {}, {}
    for i, members in enumerate(sorted(comps.values(), key=lambda m: sorted(m))):
        if any(Path(m).name in retrieval_names for m in members) and len(members) <= max_group:
            continue  # the same photos as a tuning group
        for m in members:
            files[m] = root / m
            if len(members) <= max_group:
                group[m] = f"place{i}"
    return PlaceSet("held-out", files, group)


def queries(ps: PlaceSet, images: dict[str, np.ndarray], seed: int) -> list[tuple[str, str, np.ndarray]]:
    """(source key, condition, image) for every grouped image and condition, clean first."""
    out = []
    for i, k in enumerate(sorted(ps.group)):
        out.append((k, "clean", images[k]))
        for j, c in enumerate(conditions.CONDITIONS):
            out.append((k, c, conditions.make(images[k], c, seed * 100003 + i * 17 + j)))
    return out


def per_condition_map(ps: PlaceSet, qs, rankings: list[list[str]]) -> dict[str, float]:
    """mAP per condition and over the four hard ones ('hard'); rankings[i] ranks the gallery for qs[i]
    (its own source may appear; it is removed here)."""
    aps: dict[str, list[float]] = {}
    for (src, cond, _), ranked in zip(qs, rankings):
        pos = {k for k, g in ps.group.items() if g == ps.group[src] and k != src}
        if pos:
            aps.setdefault(cond, []).append(ranked_ap([k for k in ranked if k != src], pos))
    out = {c: float(np.mean(v)) for c, v in aps.items()}
    out["hard"] = float(np.mean([x for c in conditions.CONDITIONS for x in aps.get(c, [])]))
    return out

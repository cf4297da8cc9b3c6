"""`search --mode face` / `dedup --mode face`: photos of the same person, on a few people of the faces set."""

from __future__ import annotations

import csv
from collections import defaultdict

from lookalike import Index


def test_face_search_finds_the_same_person(tmp_path, data_dir, face_models):
    root = data_dir / "faces"
    people = defaultdict(list)
    with open(root / "identities.csv", newline="") as f:
        for r in csv.DictReader(f):
            people[r["identity"]].append(str(root / r["path"]))
    two = sorted((p for p in people.values() if len(p) >= 5), key=lambda p: p[0])[:2]
    a, b = two[0][:5], two[1][:5]
    with Index.open(tmp_path / "idx") as idx:
        idx.add(a + b, features=["faces"], defaults=False, workers=1)
        res = idx.search([a[0]], mode="face")[0]
        found = [m.path for m in res.results]
        assert found[0] == a[0] and res.results[0].details.get("self")
        assert sum(p in a for p in found) >= 4 and not any(p in b for p in found)
        assert all(m.score >= 0.925 and m.method == "face" for m in res.results)
        pairs = idx.dedup(mode="face").pairs
        same = sum((p.a in a) == (p.b in a) for p in pairs)
        assert pairs and same == len(pairs)  # every pair within one person

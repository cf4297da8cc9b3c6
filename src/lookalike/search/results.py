"""Result types shared by every mode."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Match:
    path: str
    score: float  # similarity in [0, 1], higher = more alike
    method: str  # which evidence decided the score (sha256, pdq, phash, cnn, sift, background...)
    details: dict = field(default_factory=dict)  # the why: distances, inliers, component scores

    def to_dict(self) -> dict:
        return {"path": self.path, "score": round(self.score, 4), "method": self.method, **self.details}


@dataclass
class QueryResult:
    query: str
    results: list[Match]
    error: str | None = None
    indexed: bool = False  # the query is itself in the index (its own match has details["self"])

    def to_dict(self) -> dict:
        d = {"query": self.query, "indexed": self.indexed, "results": [m.to_dict() for m in self.results]}
        if self.error:
            d["error"] = self.error
        return d


@dataclass
class Pair:
    a: str
    b: str
    score: float
    method: str
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "score": round(self.score, 4), "method": self.method, **self.details}


@dataclass
class DupGroup:
    """A connected component of alike pairs. keeper: the member to keep (see lookalike.duplicates);
    decided: a keep_all/keep_one decision covers every member (`decision` is its id)."""

    id: int
    members: list[str]
    pairs: list[Pair]
    keeper: str | None = None
    decided: bool = False
    decision: int | None = None

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self):
        return iter(self.members)

    def to_dict(self) -> dict:
        return {"id": self.id, "size": len(self.members), "members": self.members, "keeper": self.keeper,
                "decided": self.decided, "decision": self.decision,
                "pairs": [{"a": p.a, "b": p.b, "score": round(p.score, 4), "method": p.method} for p in self.pairs]}


@dataclass
class DedupResult:
    mode: str
    threshold: float
    pairs: list[Pair]
    groups: list[DupGroup]  # connected components of the pairs, largest first

    def to_dict(self) -> dict:
        return {"mode": self.mode, "threshold": self.threshold,
                "pairs": [p.to_dict() for p in self.pairs], "groups": [g.to_dict() for g in self.groups]}


def dup_groups(pairs: list[Pair]) -> list[DupGroup]:
    """Groups of the pairs (largest first, ids 1..n in that order), each with its own pairs."""
    members = groups_from_pairs(pairs)
    where = {p: n for n, g in enumerate(members) for p in g}
    own: list[list[Pair]] = [[] for _ in members]
    for p in pairs:
        own[where[p.a]].append(p)
    return [DupGroup(n + 1, g, own[n]) for n, g in enumerate(members)]


def groups_from_pairs(pairs: list[Pair]) -> list[list[str]]:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        ra, rb = find(p.a), find(p.b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = {}
    for x in parent:
        groups.setdefault(find(x), []).append(x)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g[0]))


__all__ = ["Match", "QueryResult", "Pair", "DupGroup", "DedupResult", "dup_groups", "groups_from_pairs", "asdict"]

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

    def to_dict(self) -> dict:
        d = {"query": self.query, "results": [m.to_dict() for m in self.results]}
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
class DedupResult:
    mode: str
    threshold: float
    pairs: list[Pair]
    groups: list[list[str]]  # connected components of the pairs, largest first

    def to_dict(self) -> dict:
        return {"mode": self.mode, "threshold": self.threshold,
                "pairs": [p.to_dict() for p in self.pairs], "groups": self.groups}


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


__all__ = ["Match", "QueryResult", "Pair", "DedupResult", "groups_from_pairs", "asdict"]

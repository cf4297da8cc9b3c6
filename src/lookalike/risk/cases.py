"""Cases: groups of applications an analyst reviews together, with ids stable across runs.

The case graph keeps only strong links, so one public place or one busy carrier IP cannot chain unrelated
rings: a shared private background within days (weighted by how private it looks from both ends), the
same device id or a non-randomised MAC within days, the same phone number on the wall, or a shared IP or /24
within days between two applications that are both risky on their own. A shared network between ordinary
customers, GPS, or an old link never joins two applications. Components of that graph with at least two
applications are cases; a component that holds two dense parts joined by one or two links is cut there
(`refine`).
"""

from __future__ import annotations

from collections import defaultdict

from lookalike.risk.signals import Params, device_strength, ramp, time_closeness

EDGE = 0.5  # strength at which a link joins two applications into one case


def pair_strength(ev: dict, a: tuple[float, float], b: tuple[float, float], p: Params) -> float:
    """Strength of one link for the case graph; a, b: (privacy of the background, risk) of its ends."""
    if ev.get("same_applicant"):
        return 0.0
    tc = time_closeness(ev["days"], p)
    g = ramp(ev.get("bg") or 0.0, p.case_bg_floor, p.case_bg_full) * tc * min(a[0], b[0])
    d, _ = device_strength(ev, p)
    # a device id or own MAC joins; a shared IP or /24 within days only between two risky applications (the
    # two views of one ring's room share no background, but its network), never two ordinary customers
    net = d >= 0.85 or (d >= 0.15 and min(a[1], b[1]) >= p.case_risk and ev["days"] <= p.close_days)
    t = 1.0 if ev.get("phones") else 0.0
    return max(g, tc if net else 0.0, t)


def components(nodes, edges: dict[int, set[int]]) -> list[list[int]]:
    seen, out = set(), []
    for n in nodes:
        if n in seen:
            continue
        stack, comp = [n], []
        seen.add(n)
        while stack:
            x = stack.pop()
            comp.append(x)
            for y in edges.get(x, ()):
                if y not in seen:
                    seen.add(y)
                    stack.append(y)
        out.append(sorted(comp))
    return out


def refine(comp: list[int], edges: dict[int, set[int]]) -> list[list[int]]:
    """Cut a component at weak bridges: an application keeps only the links to members that share at least
    one other neighbour with it (a link inside a dense group is confirmed by a triangle), unless the
    component is too small to have triangles."""
    if len(comp) <= 3:
        return [comp]
    cs = set(comp)
    kept: dict[int, set[int]] = defaultdict(set)
    for a in comp:
        for b in edges.get(a, ()):
            if b in cs and a < b and (edges[a] & edges[b]):
                kept[a].add(b)
                kept[b].add(a)
    parts = components(comp, kept)
    big = [c for c in parts if len(c) >= 2]
    # members left alone rejoin the part they have most links to
    for c in parts:
        if len(c) == 1 and big:
            x = c[0]
            best = max(big, key=lambda g: len(edges.get(x, set()) & set(g)))
            if edges.get(x, set()) & set(best):
                best.append(x)
    return [sorted(c) for c in big] or [comp]


def build_cases(adj: dict[int, dict[int, dict]], nodes: dict[int, tuple[float, float]], p: Params) -> list[list[int]]:
    """Cases from the links; nodes: {seq: (privacy of its background, risk)}."""
    edges: dict[int, set[int]] = defaultdict(set)
    for a, nb in adj.items():
        for b, ev in nb.items():
            if pair_strength(ev, nodes.get(a, (1.0, 0.0)), nodes.get(b, (1.0, 0.0)), p) >= EDGE:
                edges[a].add(b)
                edges[b].add(a)
    out = []
    for comp in components(sorted(edges), edges):
        out += [c for c in refine(comp, edges) if len(c) >= 2]
    return out


def stable_ids(groups: list[list[int]], stored: dict[int, int], next_id: int) -> tuple[dict[int, int], int]:
    """Give each group the stored case id most of its members had (ties: the oldest id); a stored id goes
    to one group only (the largest claimant); new groups get new ids. Returns ({seq: case id}, next id)."""
    claims = []
    for gi, g in enumerate(groups):
        votes: dict[int, int] = defaultdict(int)
        for s in g:
            if s in stored:
                votes[stored[s]] += 1
        for cid, n in votes.items():
            claims.append((-n, cid, gi))
    claims.sort()
    taken, given = set(), {}
    for _, cid, gi in claims:
        if cid not in taken and gi not in given:
            taken.add(cid)
            given[gi] = cid
    out = {}
    for gi, g in enumerate(groups):
        if gi not in given:
            given[gi] = next_id
            next_id += 1
        for s in g:
            out[s] = given[gi]
    return out, next_id

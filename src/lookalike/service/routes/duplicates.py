"""Duplicate review: groups of alike images (paged), a suggested keeper, and decisions that persist.

Decisions (keep all / keep one / not duplicates) live in the index (`Index.decide`); the engine's
dedup leaves decided groups out of later scans, so a resolved group never comes back.
"""

from __future__ import annotations

import threading
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from lookalike.api import Index
from lookalike.service.auth import reader, writer
from lookalike.service.routes.common import MAX_ID, Id, describe, engine, store
from lookalike.service.routes.search import _plain

router = APIRouter(prefix="/v1/duplicates", tags=["duplicates"])
Mode = Literal["copy", "exact", "hash", "similar", "background"]
Verdict = Literal["not_duplicates", "keep_all", "keep_one"]
COMPARED = ("resolution", "format", "bytes", "date")


ImageRef = Annotated[int, Field(ge=1, le=MAX_ID)]


class Decision(BaseModel):
    members: list[ImageRef] = Field(..., min_length=2, max_length=10000, description="image ids of the group")
    verdict: Verdict
    keeper: ImageRef | None = Field(None, description="with keep_one: the image to keep")


class Bulk(BaseModel):
    decisions: list[Decision] = Field(..., min_length=1, max_length=1000)


_cache: dict[tuple, dict] = {}
_cache_lock = threading.Lock()


@router.get("")
async def duplicates(request: Request, mode: Mode = "copy", threshold: float | None = Query(None, ge=0.0, le=1.0),
                     offset: int = Query(0, ge=0), limit: int = Query(20, ge=1, le=200),
                     include_decided: bool = False, key=Depends(reader)):
    """Groups of alike images, largest first, `limit` from `offset`: members with size, resolution,
    date and what differs from the suggested keeper (highest resolution, then largest file, then
    oldest, EXIF date first), the pairs with scores, and with include_decided also decided groups
    (`decided`, `decision`: its id)."""
    eng, st = engine(request), store(request)
    await eng.ensure_mode(mode)
    groups = await eng.read(lambda idx: _groups(idx, st, mode, threshold, include_decided, eng.generation),
                            models=mode == "background")
    page = groups["groups"][offset:offset + limit]
    return {"mode": mode, "threshold": groups["threshold"], "total_groups": len(groups["groups"]),
            "offset": offset, "limit": limit, "groups": page}


def _groups(idx: Index, st, mode: str, threshold, include_decided: bool, generation: int) -> dict:
    stamp = (str(idx.dir), mode, threshold, include_decided, generation, idx.catalog.stamp("files"), len(idx.decisions()))
    with _cache_lock:
        if stamp in _cache:
            return _cache[stamp]
    res = idx.dedup(mode=mode, threshold=threshold, include_decided=include_decided)
    path_ids = {}
    for g in res.groups:
        for p in g.members:
            r = idx.catalog.file(p)
            if r is not None:
                path_ids[p] = r.id
    meta = describe(idx, st, list(path_ids.values()))
    out = []
    for g in res.groups:
        members = [meta[path_ids[p]] for p in g.members if p in path_ids]
        if len(members) < 2:
            continue
        keeper_id = path_ids.get(g.keeper) if g.keeper else suggest_keeper(members)
        pairs = [{"a": path_ids[p.a], "b": path_ids[p.b], "score": round(p.score, 4), "method": p.method,
                  "details": _plain(p.details)} for p in g.pairs if p.a in path_ids and p.b in path_ids]
        out.append({"group": g.id, "members": _differences(members, keeper_id), "pairs": pairs,
                    "suggested_keeper": keeper_id, "decided": g.decided, "decision": g.decision})
    result = {"threshold": res.threshold, "groups": out}
    with _cache_lock:
        _cache.clear()
        _cache[stamp] = result
    return result


def suggest_keeper(members: list[dict]) -> int:
    """Highest resolution, then largest file, then oldest (the engine's own choice wins when it has one)."""
    best = max(members, key=lambda m: ((m["width"] or 0) * (m["height"] or 0), m["bytes"] or 0,
                                       _neg_date(m["date"]), -m["id"]))
    return best["id"]


def _neg_date(date: str | None) -> str:
    # ISO dates sort as text; an older date must rank higher, so compare on the complement of each digit
    return "".join(chr(ord("9") - ord(c) + ord("0")) if c.isdigit() else c for c in (date or "9999"))


def _differences(members: list[dict], keeper: int | None) -> list[dict]:
    """Each member with `differs`: the compared fields whose value is not the keeper's."""
    ref = next((m for m in members if m["id"] == keeper), members[0])

    def values(m):
        return {"resolution": (m["width"], m["height"]), "format": m["format"], "bytes": m["bytes"],
                "date": m["date"]}

    rv = values(ref)
    return [{**m, "differs": [f for f, v in values(m).items() if v != rv[f]]} for m in members]


@router.post("/decisions", status_code=201)
async def decide(request: Request, body: Decision, key=Depends(writer)):
    """Record a decision on a group; the group is not offered again. 201 {"id"}."""
    return {"id": (await engine(request).write(lambda idx: _decide(idx, body)))}


@router.post("/decisions/bulk", status_code=201)
async def decide_many(request: Request, body: Bulk, key=Depends(writer)):
    """Several decisions at once (e.g. "accept the suggested keeper" for a page of groups). 201 {"ids"}."""
    return {"ids": await engine(request).write(lambda idx: [_decide(idx, d) for d in body.decisions])}


def _decide(idx: Index, d: Decision) -> int:
    paths = idx.catalog.paths(d.members)
    missing = [i for i in d.members if i not in paths]
    if missing:
        raise HTTPException(404, f"no image with id {missing[0]}")
    if d.verdict == "keep_one" and d.keeper not in paths:
        raise HTTPException(422, "keep_one needs `keeper`, one of the members")
    keeper = paths[d.keeper] if d.keeper is not None and d.keeper in paths else None
    return int(idx.decide([paths[i] for i in d.members], d.verdict, keeper=keeper))


@router.get("/decisions")
async def decisions(request: Request, key=Depends(reader)):
    """Every recorded decision, with member ids where the images are still indexed."""

    def run(idx):
        ids = idx.catalog.ids_by_path()
        out = []
        for d in idx.decisions():
            d = dict(d)
            if isinstance(d.get("members"), list):
                d["member_ids"] = [ids.get(p) for p in d["members"]]
            if isinstance(d.get("keeper"), str):
                d["keeper_id"] = ids.get(d["keeper"])
            out.append(d)
        return {"decisions": out}

    return await engine(request).read(run)


@router.delete("/decisions/{decision_id}", responses={404: {"description": "no such decision"}})
async def undo(request: Request, decision_id: Id, key=Depends(writer)):
    """Undo a decision: its group comes back on the next scan."""

    def run(idx):
        try:
            idx.undo_decision(decision_id)
        except ValueError as e:
            raise HTTPException(404, f"no decision with id {decision_id}") from e
        return {"id": decision_id, "undone": True}

    return await engine(request).write(run)

"""Search: what in the index looks like this photo (an upload, or an indexed image by id)."""

from __future__ import annotations

import json
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from lookalike.search.modes import get_mode
from lookalike.service.auth import reader
from lookalike.service.routes.common import MAX_ID, describe, engine, store
from lookalike.service.routes.images import image_bytes

router = APIRouter(prefix="/v1", tags=["search"])


class Result(BaseModel):
    id: int
    name: str
    score: float
    method: str
    details: dict


class SearchOut(BaseModel):
    mode: str
    results: list[Result]


_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                           "properties": {"file": {"type": "string", "format": "binary"}}}},
        "application/json": {"schema": {"type": "object", "required": ["id"],
                                        "properties": {"id": {"type": "integer", "minimum": 1}}}},
    },
}


@router.post("/search", response_model=SearchOut, openapi_extra={"requestBody": _BODY},
             responses={404: {"description": "no image with that id"}, 422: {"description": "unusable query"}})
async def search(request: Request, mode: Literal["copy", "exact", "hash", "similar", "background"] = "copy",
                 k: int = Query(10, ge=1, le=100), min_score: float = Query(0.5, ge=0.0, le=1.0),
                 key=Depends(reader)):
    """Multipart `file` (the query photo, not stored) or JSON {"id": N} (an indexed image; itself left out).
    Results: best first, score in [0, 1], the deciding method and its evidence in details."""
    data, exclude = await _query(request)
    eng, st = engine(request), store(request)
    await eng.ensure_mode(mode)

    def run(idx):
        m = get_mode(mode)
        raw = data if data is not None else image_bytes(idx, exclude)
        q = idx.make_query("query", raw, m.features)
        hits = [h for h in m.search(idx, q, k + 1, min_score) if h[1] >= min_score and h[0] != exclude][:k]
        meta = describe(idx, st, [h[0] for h in hits])
        return {"mode": mode, "results": [{"id": h[0], "name": meta[h[0]]["name"], "score": round(float(h[1]), 4),
                                           "method": h[2], "details": _plain(h[3])} for h in hits if h[0] in meta]}

    return await eng.read(run, models=mode == "background")


async def _query(request: Request) -> tuple[bytes | None, int | None]:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        f = form.get("file")
        if f is None or isinstance(f, str):
            raise HTTPException(422, "multipart body needs a `file` part holding the query image")
        data = await f.read()
        if not data:
            raise HTTPException(422, "empty file (0 bytes)")
        return data, None
    if ctype.startswith("application/json"):
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise HTTPException(422, "body is not valid JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("id"), int) or isinstance(body.get("id"), bool):
            raise HTTPException(422, 'JSON body must be {"id": <indexed image id>}; URLs and server paths are '
                                     "not accepted (upload the file instead)")
        if not 1 <= body["id"] <= MAX_ID:
            raise HTTPException(404, f"no image with id {body['id']}")
        return None, body["id"]
    raise HTTPException(415, "send the query as multipart/form-data (`file`) or JSON {\"id\": N}")


def _plain(d: dict) -> dict:
    """Evidence as JSON-safe values (numpy numbers become floats/ints)."""
    out = {}
    for k, v in (d or {}).items():
        if hasattr(v, "item"):
            v = v.item()
        elif isinstance(v, (list, tuple)):
            v = [x.item() if hasattr(x, "item") else x for x in v]
        out[str(k)] = v
    return out

"""Health (open), metrics, index info and key management."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

import lookalike
from lookalike.service import keys as K
from lookalike.service.auth import admin, reader
from lookalike.service.metrics import CONTENT_TYPE_LATEST
from lookalike.service.routes.common import Id, engine, store

router = APIRouter(tags=["service"])


@router.get("/v1/health")
async def health():
    """Liveness; needs no key."""
    return {"status": "ok", "version": lookalike.__version__}


@router.get("/v1/info")
async def info(request: Request, key=Depends(reader)):
    """What the index holds, and who is asking."""
    data = await engine(request).read(lambda idx: idx.info())
    data.pop("index", None)  # the server's directory layout is not the client's business
    return {**data, "role": next(r for r in reversed(K.ROLES) if key.can(r)), "key": key.label,
            "max_upload_mb": request.app.state.settings.max_upload_mb}


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request, key=Depends(reader)):
    """Prometheus text format (scrape with a reader key: `authorization: {credentials: KEY}`)."""
    m = request.app.state.metrics
    counts = await engine(request).read(lambda idx: idx.catalog.counts())
    for status in ("ok", "error"):
        m.images.labels(status).set(counts.get(status, 0))
    for status in ("queued", "running", "done", "failed"):
        m.jobs.labels(status).set(request.app.state.jobs.counts().get(status, 0))
    return Response(m.render(), media_type=CONTENT_TYPE_LATEST)


class NewKey(BaseModel):
    role: Literal["reader", "writer", "admin"]
    name: str | None = Field(None, max_length=100)


@router.get("/v1/keys", tags=["keys"])
async def list_keys(request: Request, key=Depends(admin)):
    return {"keys": [k.to_dict() for k in K.all_keys(store(request))]}


@router.post("/v1/keys", status_code=201, tags=["keys"])
async def create_key(request: Request, body: NewKey, key=Depends(admin)):
    """A new key: shown once, in this answer; the index keeps only its hash."""
    secret, k = K.create(store(request), body.role, body.name)
    return {"key": secret, **k.to_dict()}


@router.delete("/v1/keys/{key_id}", tags=["keys"], responses={404: {"description": "no such live key"}})
async def revoke_key(request: Request, key_id: Id, key=Depends(admin)):
    if not K.revoke(store(request), str(key_id)):
        raise HTTPException(404, f"no live key with id {key_id}")
    return {"id": key_id, "revoked": True}

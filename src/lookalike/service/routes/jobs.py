"""Jobs: long work with progress (folder index under --allow-root, duplicate scan, clustering, features)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from lookalike.search.modes import get_mode
from lookalike.service.auth import reader, writer

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


class JobIn(BaseModel):
    kind: Literal["index", "dedup", "cluster", "features"]
    paths: list[str] = Field(default_factory=list, max_length=1000,
                             description="index: server-side files or folders, each under an --allow-root")
    mode: Literal["copy", "exact", "hash", "similar", "background"] = "copy"
    by: Literal["image", "background", "face"] = "image"


@router.post("", status_code=202, responses={403: {"description": "a path outside every --allow-root"}})
async def start(request: Request, body: JobIn, key=Depends(writer)):
    """Start a job; 202 with its id. Poll GET /v1/jobs/{id} for progress and the result."""
    settings = request.app.state.settings
    if body.kind == "index":
        if not body.paths:
            raise HTTPException(422, "an index job needs `paths`")
        real = []
        for p in body.paths:
            if "://" in p:
                raise HTTPException(422, f"{p}: URLs are not fetched; give a server-side path under an --allow-root")
            ok = settings.allowed(p)
            if ok is None:
                raise HTTPException(403, f"{p}: not under any --allow-root of this server"
                                         + ("" if settings.allow_roots else " (none was given)"))
            if not ok.exists():
                raise HTTPException(422, f"{p}: no such file or folder")
            real.append(str(ok))
        params, work = {"paths": real}, _index(real)
    elif body.kind == "dedup":
        params, work = {"mode": body.mode}, _dedup(body.mode)
    elif body.kind == "cluster":
        params, work = {"by": body.by}, _cluster(body.by)
    else:
        params, work = {"mode": body.mode}, _features(body.mode)
    return request.app.state.jobs.start(body.kind, params, key.label, work).to_dict()


def _index(paths):
    def work(idx, job):
        rep = idx.add(paths)
        return {"added": rep.added, "unchanged": rep.unchanged, "copies": rep.copies, "failed": rep.failed,
                "errors": [{"path": p, "reason": r} for p, r in rep.errors[:100]]}
    return work


def _dedup(mode):
    def work(idx, job):
        res = idx.dedup(mode=mode)
        return {"pairs": len(res.pairs), "groups": len(res.groups), "threshold": res.threshold}
    return work


def _cluster(by):
    def work(idx, job):
        res = idx.cluster(by=by)
        return {"clusters": len(res.clusters), "with_2_or_more": sum(c.size > 1 for c in res.clusters)}
    return work


def _features(mode):
    def work(idx, job):
        return {"computed": idx.ensure(get_mode(mode).features)}
    return work


@router.get("")
async def list_jobs(request: Request, key=Depends(reader)):
    return {"jobs": [j.to_dict() for j in request.app.state.jobs.all()]}


@router.get("/{job_id}", responses={404: {"description": "no such job"}})
async def job(request: Request, job_id: str, key=Depends(reader)):
    j = request.app.state.jobs.get(job_id)
    if j is None:
        raise HTTPException(404, f"no job with id {job_id}")
    return j.to_dict()

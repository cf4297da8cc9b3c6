"""Clusters by image, background or face: galleries and names.

The engine stores clusters (batch runs as jobs, online assignment as images arrive) and their names
(`Index.rename_cluster`, keyed by stable cluster ids) but has no merge or split of clusters yet, so
the service offers renaming only.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from lookalike.service.auth import reader, writer
from lookalike.service.routes.common import Id, describe, engine, store

router = APIRouter(prefix="/v1/clusters", tags=["clusters"])
By = Literal["image", "background", "face"]


class Rename(BaseModel):
    name: str = Field(..., max_length=200, description="empty: remove the name")


@router.get("")
async def clusters(request: Request, by: By = "image", min_size: int = Query(2, ge=1),
                   offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=500), key=Depends(reader)):
    """Stored clusters, largest first, with their members (representative first). Empty until the index
    is clustered: POST /v1/jobs {"kind": "cluster", "by": ...} (or `lookalike cluster --by ...`)."""
    st = store(request)

    def run(idx):
        res = idx.clusters(by=by)
        ids = idx.catalog.ids_by_path()
        names = idx.cluster_names(by=by)
        shown = [c for c in res.clusters if c.size >= min_size]
        page = shown[offset:offset + limit]
        meta = describe(idx, st, [ids[p] for c in page for p, _ in c.members if p in ids])
        out = []
        for c in page:
            members = [{**meta[ids[p]], "face": f, "confidence": round(float(s), 4)}
                       for (p, f), s in zip(c.members, c.confidence) if p in ids and ids[p] in meta]
            box = {f"{ids[p]}:{f}": [round(float(v), 1) for v in b] for (p, f), b in (res.boxes or {}).items()
                   if p in ids and (p, f) in set(c.members)}
            out.append({"id": c.id, "name": names.get(c.id), "size": len(members), "members": members,
                        **({"face_boxes": box} if by == "face" else {})})
        return {"by": by, "total": len(shown), "offset": offset, "limit": limit, "clusters": out,
                "merge_split_supported": False}

    return await engine(request).read(run, models=by != "image")


@router.patch("/{by}/{cluster_id}")
async def rename(request: Request, by: By, cluster_id: Id, body: Rename, key=Depends(writer)):
    """Name a cluster (a person, a room, a product); ids are stable across clustering runs."""
    def run(idx):
        if not any(c.id == cluster_id for c in idx.clusters(by=by).clusters):
            raise HTTPException(404, f"no {by} cluster with id {cluster_id}")
        idx.rename_cluster(cluster_id, body.name.strip(), by=by)
        return {"by": by, "id": cluster_id, "name": body.name.strip() or None}

    return await engine(request).write(run)

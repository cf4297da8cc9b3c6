"""Clusters by image, background or face: galleries and names.

The engine stores clusters (batch runs as jobs, online assignment as images arrive) and their names
(`Index.rename_cluster`, keyed by stable cluster ids). Hand edits: merge clusters into the oldest id
(`Index.merge_clusters`) and split members off into a new id (`Index.split_cluster`); a later batch
run keeps both (cluster/edit.py).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from lookalike.service.auth import reader, writer
from lookalike.service.routes.common import MAX_ID, Id, describe, engine, store

router = APIRouter(prefix="/v1/clusters", tags=["clusters"])
By = Literal["image", "background", "face"]


class Merge(BaseModel):
    by: By = "image"
    ids: list[Annotated[int, Field(ge=0, le=MAX_ID)]] = Field(..., min_length=2, max_length=1000,
                                                            description="cluster ids; all merge into the smallest")


class Member(BaseModel):
    id: int = Field(..., ge=1, le=MAX_ID, description="image id")
    face: int | None = Field(None, ge=0, description="by face: which face (none: all of that image's faces)")


class Split(BaseModel):
    by: By = "image"
    members: list[Union[Member, Annotated[int, Field(ge=1, le=MAX_ID)]]] = Field(
        ..., min_length=1, max_length=10000, description="members to move: image ids, or {id, face}")


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
                "merge_split_supported": True}

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


def _edit(run):
    """An engine edit: an unknown cluster is 404, any other refusal (members not in the cluster) 422."""
    from lookalike.cluster.edit import UnknownCluster

    def guarded(idx):
        try:
            return run(idx)
        except UnknownCluster as e:
            raise HTTPException(404, str(e)) from None
        except ValueError as e:
            raise HTTPException(422, str(e)) from None

    return guarded


@router.post("/merge")
async def merge(request: Request, body: Merge, key=Depends(writer)):
    """Merge clusters into the oldest (smallest) id, returned; the others disappear; a name is kept (the
    target's, else the first named one's). A later batch run keeps the merge."""
    def run(idx):
        return {"by": body.by, "id": idx.merge_clusters(body.ids, by=body.by)}

    return await engine(request).write(_edit(run))


@router.post("/{cluster_id}/split")
async def split(request: Request, cluster_id: Id, body: Split, key=Depends(writer)):
    """Move members (image ids, or {"id", "face"} for faces) of a cluster into a new cluster; returns the
    new id (ids are never reused). At least one member must stay. A later batch run keeps the split."""
    def run(idx):
        members = []
        for m in body.members:
            image, face = (m, None) if isinstance(m, int) else (m.id, m.face)
            row = idx.catalog.file_by_id(image)
            if row is None:
                raise ValueError(f"image {image} is not in the index")
            members.append(row.path if face is None else (row.path, face))
        return {"by": body.by, "id": idx.split_cluster(cluster_id, members, by=body.by)}

    return await engine(request).write(_edit(run))

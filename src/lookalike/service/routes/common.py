"""What every route module shares: the app's parts, how an image is described, reading an upload."""

from __future__ import annotations

from datetime import datetime, timezone

from typing import Annotated

from fastapi import HTTPException, Path, Request, UploadFile

from pydantic import BaseModel

from lookalike.api import Index
from lookalike.service.engine import Engine
from lookalike.service.store import ServiceStore
from lookalike.service.uploads import is_upload

MODES = ("copy", "exact", "hash", "similar", "background")
MAX_ID = 2**62  # SQLite integers are 64-bit signed
ImageId = Annotated[int, Path(ge=1, le=MAX_ID, description="an image id")]
Id = Annotated[int, Path(ge=0, le=MAX_ID)]


class Problem(BaseModel):
    detail: str


# Every error answers {"detail": reason} (a string, also for request validation)
ERRORS = {401: {"model": Problem, "description": "no key or an unknown or revoked one"},
          403: {"model": Problem, "description": "the key's role is too low"},
          413: {"model": Problem, "description": "request body over --max-upload-mb"},
          422: {"model": Problem, "description": "invalid request or unusable file, with the reason"},
          429: {"model": Problem, "description": "rate limit of this key"},
          504: {"model": Problem, "description": "took longer than the request time limit"}}


def engine(request: Request) -> Engine:
    return request.app.state.engine


def store(request: Request) -> ServiceStore:
    return request.app.state.store


def describe(idx: Index, st: ServiceStore, ids) -> dict[int, dict]:
    """Public metadata of these file ids (missing ids are left out). An upload's name is its label;
    a file indexed from the server's disk is named by its path as given to `index`."""
    rows = [r for r in (idx.catalog.file_by_id(int(i)) for i in dict.fromkeys(ids)) if r is not None]
    labels = st.labels([r.path for r in rows])
    out = {}
    for r in rows:
        upload = is_upload(idx.dir.resolve(), r.path)
        d = {"id": r.id, "name": labels.get(r.path, r.path if not upload else f"upload {r.id}"),
             "source": "upload" if upload else "path", "status": r.status, "width": r.width, "height": r.height,
             "format": r.format, "bytes": r.size, "sha256": r.sha256,
             "date": datetime.fromtimestamp(r.mtime_ns / 1e9, timezone.utc).isoformat(timespec="seconds")
             if r.mtime_ns else None}
        if r.status != "ok":
            d["reason"] = r.reason
        out[r.id] = d
    return out


def row_or_404(idx: Index, image_id: int):
    r = idx.catalog.file_by_id(image_id)
    if r is None:
        raise HTTPException(404, f"no image with id {image_id}")
    return r


async def read_upload(file: UploadFile) -> bytes:
    """The part's bytes (already capped by the body limit); an empty part is refused here."""
    data = await file.read()
    if not data:
        raise HTTPException(422, "empty file (0 bytes)")
    return data


def ids_by_path(idx: Index) -> dict[str, int]:
    return idx.catalog.ids_by_path()

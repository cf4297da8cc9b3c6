"""Images: upload (sniffed, labelled, stored inside the index), metadata, thumbnail, inspect, delete."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, Response, UploadFile
from pydantic import BaseModel

from lookalike.errors import BadInput
from lookalike.imageio import read_bytes
from lookalike.reports.thumbs import thumbnail_jpeg
from lookalike.service.auth import admin, reader, writer
from lookalike.service.routes.common import ImageId, describe, engine, read_upload, row_or_404, store
from lookalike.service.uploads import check_image, check_name, is_upload, store_upload

router = APIRouter(prefix="/v1/images", tags=["images"])


class Added(BaseModel):
    id: int
    name: str
    status: str  # added | exists


class Image(BaseModel):
    id: int
    name: str
    source: str
    status: str
    width: int | None = None
    height: int | None = None
    format: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    date: str | None = None
    reason: str | None = None


class Page(BaseModel):
    total: int
    offset: int
    limit: int
    images: list[Image]


@router.post("", status_code=201, response_model=Added,
             responses={413: {"description": "over --max-upload-mb"}, 422: {"description": "not a usable image"}})
async def upload(request: Request, file: UploadFile = File(..., description="The image; its type is read from its bytes"),
                 name: str | None = Form(None, description="A label (default: the file name); never used as a path"),
                 key=Depends(writer)):
    """Add an image to the index. 201 {id, name, status}: status "exists" when the same bytes were uploaded before."""
    data = await read_upload(file)
    label = check_name(name, file.filename or "upload")
    eng, st, metrics = engine(request), store(request), request.app.state.metrics
    try:
        img = await eng.read(lambda idx: check_image(data))
    except BadInput as e:
        metrics.rejected.labels(str(e).split(":")[0][:40]).inc()
        raise

    def add(idx):
        path = store_upload(idx.dir.resolve(), data, img)
        existing = idx.catalog.file(str(path))
        if existing is None or existing.status != "ok":
            rep = idx.add([str(path)], workers=1)
            if rep.errors:  # decoded above, so rare (a feature failed): keep nothing of it
                idx.remove([str(path)])
                path.unlink(missing_ok=True)
                raise BadInput(rep.errors[0][1])
        st.set_label(str(path), label, key.label)
        row = idx.catalog.file(str(path))
        return row.id, "exists" if existing is not None and existing.status == "ok" else "added"

    fid, status = await eng.write(add)
    name_now = (await eng.read(lambda idx: describe(idx, st, [fid])))[fid]["name"]
    return {"id": fid, "name": name_now, "status": status}


@router.get("", response_model=Page)
async def list_images(request: Request, offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=500),
                      key=Depends(reader)):
    """Indexed images, oldest id first."""
    st = store(request)

    def run(idx):
        rows = idx.catalog.files(status=None)
        part = rows[offset:offset + limit]
        meta = describe(idx, st, [r.id for r in part])
        return {"total": len(rows), "offset": offset, "limit": limit, "images": [meta[r.id] for r in part]}

    return await engine(request).read(run)


@router.get("/{image_id}", response_model=Image, responses={404: {"description": "no such image"}})
async def metadata(request: Request, image_id: ImageId, key=Depends(reader)):
    st = store(request)

    def run(idx):
        row_or_404(idx, image_id)
        return describe(idx, st, [image_id])[image_id]

    return await engine(request).read(run)


@functools.lru_cache(maxsize=1024)
def _thumb(path: str, sha: str | None, side: int) -> bytes | None:
    return thumbnail_jpeg(path, side)


@router.get("/{image_id}/thumbnail", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "no such image or no preview"}})
async def thumbnail(request: Request, image_id: ImageId, side: int = Query(256, ge=32, le=1024), key=Depends(reader)):
    """A JPEG thumbnail (long side `side`), re-encoded from the decoded pixels: never the uploaded bytes."""

    def run(idx):
        r = row_or_404(idx, image_id)
        return r.sha256, _thumb(r.path, r.sha256, side)

    sha, jpg = await engine(request).read(run)
    if jpg is None:
        raise HTTPException(404, f"image {image_id} has no preview (its file is unreadable or gone)")
    return Response(jpg, media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=86400", "ETag": f'"{sha}-{side}"'})


@router.get("/{image_id}/inspect", responses={404: {"description": "no such image"}})
async def inspect(request: Request, image_id: ImageId, key=Depends(reader)):
    """What background search sees in this photo: person share, scene score, keypoints, verdict."""
    numbers, _ = await engine(request).read(lambda idx: _inspect(idx, image_id, picture=False), models=True)
    numbers.pop("path", None)
    return {"id": image_id, **numbers}


@router.get("/{image_id}/inspect.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}, 404: {"description": "no such image"}})
async def inspect_picture(request: Request, image_id: ImageId, key=Depends(reader)):
    """The inspection picture: the person tinted red, the ignored margin inside yellow, the background
    keypoints in green, and the numbers as a caption."""
    _, png = await engine(request).read(lambda idx: _inspect(idx, image_id, picture=True), models=True)
    return Response(png, media_type="image/png")


def _inspect(idx, image_id: int, *, picture: bool) -> tuple[dict, bytes | None]:
    from lookalike.inspect import inspect_image

    r = row_or_404(idx, image_id)
    if not picture:
        return inspect_image(r.path, None), None
    (idx.dir / "tmp").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=idx.dir / "tmp") as tmp:
        out = Path(tmp) / "inspect.png"
        numbers = inspect_image(r.path, out, width=1200)
        return numbers, out.read_bytes()


@router.delete("/{image_id}", responses={404: {"description": "no such image"}})
async def delete(request: Request, image_id: ImageId, key=Depends(admin)):
    """Remove the image from the index (and its stored bytes, for an upload no other row uses)."""
    st = store(request)

    def run(idx):
        r = row_or_404(idx, image_id)
        idx.remove([r.path])
        if is_upload(idx.dir.resolve(), r.path):
            Path(r.path).unlink(missing_ok=True)
            st.drop_label(r.path)
        return {"id": image_id, "deleted": True}

    return await engine(request).write(run)


def image_bytes(idx, image_id: ImageId) -> bytes:
    """The stored bytes of an indexed image (for search by id)."""
    return read_bytes(row_or_404(idx, image_id).path)

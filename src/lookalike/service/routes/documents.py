"""Pictures copied within and across uploaded Office/PDF documents, and the Excel report."""

from __future__ import annotations

import dataclasses
import re
import shutil
import uuid
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse

from lookalike.errors import BadInput
from lookalike.service.auth import reader, writer
from lookalike.service.routes.common import engine
from lookalike.service.uploads import check_name, document_kind

router = APIRouter(prefix="/v1/documents", tags=["documents"])
REPORTS = "reports"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.post("/check", responses={422: {"description": "a file that is not a document"}})
async def check(request: Request, files: list[UploadFile] = File(..., description=".docx .xlsx .pptx .pdf (type read from the bytes)"),
                mode: Literal["copy", "exact", "similar"] = Form("copy"),
                threshold: float | None = Form(None, ge=0.0, le=1.0), key=Depends(writer)):
    """Pairs of pictures that look alike within and across the documents (doc_a, image_a, doc_b,
    image_b, score, ...) and `report`: where to download the Excel report (with thumbnails)."""
    from lookalike.docs import check_documents
    from lookalike.reports.xlsx import write_xlsx_report

    if len(files) > 200:
        raise HTTPException(422, f"{len(files)} documents in one request; at most 200")
    docs = []
    for n, f in enumerate(files):
        data = await f.read()
        try:
            kind = document_kind(data)
            label = check_name(f.filename, f"document {n + 1}")
        except BadInput as e:
            raise HTTPException(422, f"{f.filename or f'file {n + 1}'}: {e}") from None
        docs.append((label, kind, data))

    def run(idx):
        work = idx.dir / "tmp" / f"docs-{uuid.uuid4().hex}"
        try:
            labels = {}
            for n, (label, kind, data) in enumerate(docs):
                stem = re.sub(r"[^\w.-]", "_", Path(label).stem)[:80] or "document"
                p = work / str(n) / f"{stem}.{kind}"
                p.parent.mkdir(parents=True)
                p.write_bytes(data)
                labels[str(p)] = label
            res = check_documents(list(labels), mode=mode, threshold=threshold, index_dir=work / "index")
            relabel = lambda d: labels.get(d, d)  # noqa: E731
            pairs = [dataclasses.replace(p, doc_a=relabel(p.doc_a), doc_b=relabel(p.doc_b)) for p in res.pairs]
            documents = [dataclasses.replace(d, doc=relabel(d.doc)) for d in res.documents]
            pictures = {(relabel(doc), image): pic for (doc, image), pic in res.pictures.items()}
            report_id = uuid.uuid4().hex
            (idx.dir / REPORTS).mkdir(exist_ok=True)
            write_xlsx_report(idx.dir / REPORTS / f"{report_id}.xlsx", pairs, pictures, documents=documents)
            body = res.to_dict()
            body["pairs"] = [p.to_dict() for p in pairs]
            for e in body["errors"] + body["skipped"]:
                e["doc"] = relabel(e["doc"])
            return {**body, "documents": len(docs), "report": f"/v1/documents/reports/{report_id}"}
        finally:
            shutil.rmtree(work, ignore_errors=True)

    return await engine(request).write(run)


@router.get("/reports/{report_id}", response_class=FileResponse,
            responses={200: {"content": {XLSX: {}}}, 404: {"description": "no such report"}})
async def report(request: Request, report_id: str, key=Depends(reader)):
    """The Excel report of a documents check."""
    if not re.fullmatch(r"[0-9a-f]{32}", report_id):
        raise HTTPException(404, f"no report {report_id}")
    path = request.app.state.settings.index / REPORTS / f"{report_id}.xlsx"
    if not path.is_file():
        raise HTTPException(404, f"no report {report_id}")
    return FileResponse(path, media_type=XLSX, filename=f"lookalike-documents-{report_id[:8]}.xlsx")

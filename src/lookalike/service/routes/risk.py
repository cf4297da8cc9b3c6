"""Loan applications scored for fraud risk, the case queue, case views and analyst decisions.

A thin shell over `lookalike.risk.RiskEngine` (the fraud issue's engine, state in INDEX/risk.sqlite);
where a build lacks it, every route here answers 501 with that reason.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from lookalike.service.auth import reader, writer
from lookalike.errors import BadInput
from lookalike.service.routes.common import Id, engine, read_upload
from lookalike.service.uploads import check_image

router = APIRouter(tags=["risk"])
NOT_FOUND = (KeyError, LookupError, ValueError, BadInput)  # what the engine raises for a case id it lacks


def risk_engine(idx):
    """One RiskEngine per thread's Index (kept on it), or 501 when the engine is not in this build."""
    try:
        from lookalike.risk import RiskEngine
    except ImportError:
        raise HTTPException(501, "fraud risk scoring needs lookalike.risk (RiskEngine), which this build lacks") from None
    eng = getattr(idx, "_service_risk", None)
    if eng is None:
        eng = idx._service_risk = RiskEngine(idx)
    return eng


class Verdict(BaseModel):
    verdict: Literal["fraud", "not_fraud"]


@router.post("/v1/applications", responses={422: {"description": "unusable photo or fields"},
                                             501: {"description": "no risk engine in this build"}})
async def submit(request: Request, photo: UploadFile = File(..., description="The applicant's photo"),
                 application_id: str = Form(..., min_length=1, max_length=200),
                 applicant_id: str = Form(..., min_length=1, max_length=200),
                 submitted_at: str = Form(..., min_length=1, max_length=64, description="ISO-8601, e.g. 2025-01-06T17:49:12+08:00"),
                 ip: str | None = Form(None, max_length=64),
                 mac: str | None = Form(None, max_length=64), device_id: str | None = Form(None, max_length=200),
                 gps_lat: float | None = Form(None, ge=-90, le=90), gps_lon: float | None = Form(None, ge=-180, le=180),
                 key=Depends(writer)):
    """Score one application (the fields of applications.csv and its photo) against every earlier one:
    {"application_id", "risk_at_submission", "case", "reasons"} (and the current `risk`)."""
    data = await read_upload(photo)
    await engine(request).read(lambda idx: check_image(data))
    fields = {k: v for k, v in dict(application_id=application_id, applicant_id=applicant_id,
                                    submitted_at=submitted_at, ip=ip, mac=mac, device_id=device_id,
                                    gps_lat=gps_lat, gps_lon=gps_lon).items() if v is not None}
    scored = await engine(request).write(lambda idx: risk_engine(idx).submit(fields, data))
    out = scored.to_dict() if hasattr(scored, "to_dict") else dict(scored)
    return {"application_id": out["application_id"], "risk_at_submission": out["risk_at_submission"],
            "case": out["case"], "reasons": out["reasons"], **out}


@router.get("/v1/cases", responses={501: {"description": "no risk engine in this build"}})
async def cases(request: Request, key=Depends(reader)):
    """Open cases, highest risk first."""
    return {"cases": await engine(request).read(lambda idx: risk_engine(idx).cases(), models=True)}


@router.get("/v1/cases/{case_id}", responses={404: {"description": "no such case"},
                                               501: {"description": "no risk engine in this build"}})
async def case(request: Request, case_id: Id, key=Depends(reader)):
    return await engine(request).read(lambda idx: _case_or_404(idx, case_id, "case"), models=True)


def _case_or_404(idx, case_id: int, view: str):
    """RiskEngine.case or .case_html of one case; an unknown case is a 404."""
    try:
        return getattr(risk_engine(idx), view)(case_id)
    except NOT_FOUND:
        raise HTTPException(404, f"no case {case_id}") from None


@router.get("/v1/cases/{case_id}/view", response_class=HTMLResponse,
            responses={404: {"description": "no such case"}, 501: {"description": "no risk engine in this build"}})
async def case_view(request: Request, case_id: Id, key=Depends(reader)):
    """The case as a page: photos side by side, the person masked, the links drawn, the timeline."""
    html = await engine(request).read(lambda idx: _case_or_404(idx, case_id, "case_html"), models=True)
    # the page is the engine's own, shown in a sandboxed frame by the UI: no scripts may run in it
    return HTMLResponse(html, headers={"Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'"})


@router.post("/v1/applications/{application_id}/decision",
             responses={404: {"description": "no such application"}, 501: {"description": "no risk engine in this build"}})
async def decide(request: Request, application_id: str, body: Verdict, key=Depends(writer)):
    """The analyst's verdict (stored for `lookalike risk train`)."""
    def run(idx):
        try:
            risk_engine(idx).decide(application_id, body.verdict)
        except BadInput:
            raise HTTPException(404, f"no application {application_id}") from None
        return {"application_id": application_id, "verdict": body.verdict}

    return await engine(request).write(run)

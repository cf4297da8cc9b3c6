"""The app factory: `create_app(Settings)` gives the FastAPI app that `lookalike serve` runs.

Layout: auth.py (keys, roles, rate limits), engine.py (one writer, many readers), uploads.py (what an
upload must be), jobs.py, metrics.py, routes/ (one module per area), static/ (the web UI at /).
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.formparsers import MultiPartParser
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

import lookalike
from lookalike.errors import BadInput
from lookalike.search.modes import get_mode
from lookalike.service.auth import RateLimiter
from lookalike.service.engine import Engine
from lookalike.service.jobs import Jobs
from lookalike.service.metrics import Metrics
from lookalike.service.settings import Settings
from lookalike.service.store import ServiceStore

log = logging.getLogger("lookalike.service")
STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings) -> FastAPI:
    from lookalike.service.routes import ROUTERS
    from lookalike.service.routes.common import ERRORS

    # Uploaded parts stay in memory (they are capped by --max-upload-mb): Starlette would otherwise spool
    # parts over 1 MB to the system temp folder, and the service writes nothing outside the index.
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, settings.max_upload_bytes + 1)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # the features copy search needs, computed once now rather than by the first searches
        app.state.jobs.start("features", {"mode": "copy"}, "startup", lambda idx, job: {
            "computed": idx.ensure(get_mode("copy").features)})
        yield
        app.state.engine.close()
        app.state.store.close()

    # FastAPIOffline: /docs with the Swagger UI files shipped in its wheel (FastAPI's default loads them from a CDN)
    app = FastAPIOffline(title="lookalike", version=lookalike.__version__, lifespan=lifespan,
                  description="Find images that look alike: copies, similar photos, same background, same face. "
                              "Every /v1 route but /v1/health needs `Authorization: Bearer KEY` "
                              "(`lookalike keys create --role reader|writer|admin`).")
    app.state.settings = settings
    app.state.store = ServiceStore(settings.index)
    app.state.engine = Engine(settings)
    app.state.jobs = Jobs(app.state.engine)
    app.state.metrics = Metrics()
    app.state.limiter = RateLimiter(settings.rate_per_s, settings.rate_burst)

    for router in ROUTERS:
        app.include_router(router, responses=ERRORS)

    @app.exception_handler(BadInput)
    async def bad_input(request: Request, exc: BadInput):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, exc: ValueError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        reasons = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return JSONResponse({"detail": reasons or "invalid request"}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); the server log has the details"},
                            status_code=500)

    app.mount("/", StaticFiles(directory=STATIC, html=True), name="ui")
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=settings.max_upload_bytes)
    app.add_middleware(Observe, settings=settings, metrics=app.state.metrics)
    return app


class Observe:
    """Outermost layer: refuses a declared body over the limit at once (413, nothing read), times and
    counts every request, and logs one JSON line per request (never a body, never a key's secret)."""

    def __init__(self, app, settings: Settings, metrics: Metrics):
        self.app, self.settings, self.metrics = app, settings, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 500}

        async def send_observed(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", [])) + [(b"x-content-type-options", b"nosniff")]
                if scope["path"] not in ("/docs", "/redoc"):  # Swagger's page starts itself with an inline script
                    headers.append((b"content-security-policy", CSP))
                message = {**message, "headers": headers}
            await send(message)

        declared = _content_length(scope)
        self.metrics.in_flight.inc()
        try:
            if declared is not None and declared > self.settings.max_upload_bytes:
                await JSONResponse(
                    {"detail": f"request body is {declared / 2**20:.1f} MiB, above the "
                               f"{self.settings.max_upload_mb:g} MiB limit (--max-upload-mb)"},
                    status_code=413, headers={"Connection": "close"})(scope, receive, send_observed)
            else:
                await self.app(scope, receive, send_observed)
        finally:
            self.metrics.in_flight.dec()
            took = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or ("/ui" if not scope["path"].startswith("/v1") else "other")
            self.metrics.requests.labels(scope["method"], route, str(status["code"])).inc()
            self.metrics.latency.labels(route).observe(took)
            if self.settings.log_requests:
                log.info(json.dumps({"ts": round(time.time(), 3), "method": scope["method"], "path": scope["path"],
                                     "route": route, "status": status["code"], "ms": round(1000 * took, 1),
                                     "key": scope.get("state", {}).get("key"), "bytes_in": declared}))


# The UI runs only its own script; pictures come from the API (blob URLs) or inline (data:); no framing.
CSP = (b"default-src 'self'; script-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
       b"object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def _content_length(scope) -> int | None:
    for k, v in scope.get("headers", ()):
        if k == b"content-length":
            try:
                return int(v)
            except ValueError:
                return None
    return None

"""`Authorization: Bearer KEY` on every /v1 route but health; roles; a token bucket per key."""

from __future__ import annotations

import threading
import time

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lookalike.service import keys as K

bearer = HTTPBearer(auto_error=False, description="An API key from `lookalike keys create --role ...`")


class RateLimiter:
    """Token bucket per key: `rate` requests a second sustained, `burst` at once."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.buckets: dict[int, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def take(self, key_id: int) -> float:
        """0 if allowed, else the seconds to wait."""
        now = time.monotonic()
        with self.lock:
            tokens, last = self.buckets.get(key_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self.buckets[key_id] = (tokens - 1, now)
                return 0.0
            self.buckets[key_id] = (tokens, now)
            return (1 - tokens) / self.rate


def require(role: str):
    """A dependency: the caller's key, which must hold at least `role`."""

    def check(request: Request, cred: HTTPAuthorizationCredentials | None = Depends(bearer)) -> K.Key:
        if cred is None:
            raise HTTPException(401, "missing API key: send 'Authorization: Bearer KEY'",
                                headers={"WWW-Authenticate": "Bearer"})
        key = K.verify(request.app.state.store, cred.credentials)
        if key is None:
            raise HTTPException(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        request.state.key = key.label
        if not key.can(role):
            raise HTTPException(403, f"this route needs a {role} key; yours is a {key.role} key")
        wait = request.app.state.limiter.take(key.id)
        if wait:
            request.app.state.metrics.rate_limited.inc()
            raise HTTPException(429, f"rate limit of {request.app.state.limiter.rate:g} requests/s for this key "
                                     "exceeded; retry later", headers={"Retry-After": str(max(1, round(wait)))})
        return key

    return check


reader = require("reader")
writer = require("writer")
admin = require("admin")

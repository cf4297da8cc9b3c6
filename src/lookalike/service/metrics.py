"""Prometheus metrics (GET /metrics), in a registry of the app's own (several apps in one process
, as in the tests, do not collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST  # noqa: F401  (re-exported for the route)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("lookalike_http_requests", "HTTP requests answered", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("lookalike_http_request_seconds", "Time to answer a request", ["route"],
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120),
                                 registry=self.registry)
        self.rejected = Counter("lookalike_uploads_rejected", "Uploads refused", ["reason"], registry=self.registry)
        self.rate_limited = Counter("lookalike_rate_limited", "Requests refused by the rate limit",
                                    registry=self.registry)
        self.images = Gauge("lookalike_images", "Files in the catalog", ["status"], registry=self.registry)
        self.jobs = Gauge("lookalike_jobs", "Jobs kept in memory", ["status"], registry=self.registry)
        self.in_flight = Gauge("lookalike_requests_in_flight", "Requests being answered", registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)

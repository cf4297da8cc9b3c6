"""REST routes by area; `ROUTERS` is what the app factory mounts."""

from lookalike.service.routes import admin, clusters, documents, duplicates, images, jobs, risk, search

ROUTERS = [admin.router, images.router, search.router, duplicates.router, clusters.router, risk.router,
           documents.router, jobs.router]

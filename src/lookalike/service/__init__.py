"""`lookalike serve`: the HTTP service and web UI, a thin shell over `lookalike.api.Index`.

    from lookalike.service import Settings, create_app
    app = create_app(Settings(index=".lookalike"))
"""

from lookalike.service.settings import Settings


def create_app(settings: Settings):
    from lookalike.service.app import create_app as make

    return make(settings)


__all__ = ["Settings", "create_app"]

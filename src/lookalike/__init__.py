"""lookalike: find images that look alike (copies, similar photos, same background, same face)."""

__all__ = ["Index"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """`lookalike.Index` is imported on first use, so that `lookalike hash` and other light commands
    start without loading the search engine (about a second of imports)."""
    if name == "Index":
        from lookalike.api import Index

        return Index
    raise AttributeError(f"module 'lookalike' has no attribute {name!r}")

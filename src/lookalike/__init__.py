"""lookalike: find images that look alike (copies, similar photos, same background, same face)."""

from lookalike.api import Index

__all__ = ["Index"]
__version__ = "0.1.0"

"""Safe decoding of image files and of pictures embedded in documents."""

__all__ = ["Decoded", "decode_bytes", "load_file", "read_bytes"]


def __getattr__(name: str):
    """Imported on first use: `lookalike hash` reads JPEGs through `imageio.quick` without loading
    Pillow, which `load` imports."""
    if name in __all__:
        from lookalike.imageio import load

        return getattr(load, name)
    raise AttributeError(f"module 'lookalike.imageio' has no attribute {name!r}")

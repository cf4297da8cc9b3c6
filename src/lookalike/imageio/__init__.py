"""Safe decoding of image files and of pictures embedded in documents."""

from lookalike.imageio.load import Decoded, decode_bytes, load_file, read_bytes

__all__ = ["Decoded", "decode_bytes", "load_file", "read_bytes"]

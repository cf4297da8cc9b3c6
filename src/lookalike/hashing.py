"""`lookalike hash`: perceptual hashes of files, fast, in parallel.

Only small thumbnails are hashed, so files are decoded straight to a small luma image (a JPEG
decodes its Y channel at 1/2 to 1/8 scale) instead of the full working image the index uses. The
64-bit hashes follow imagehash's definitions on the whole picture (no border trimming), so the
numbers compare with imagehash's; PDQ is Facebook's reference (pdqhash) fed a 64x64 luma.
"""

from __future__ import annotations

from lookalike import config, parallel
from lookalike.errors import BadInput
from lookalike.features.hashes import file_hashes, hex_code
from lookalike.imageio.load import decode_luma, read_bytes

COLUMNS = ("path", "ahash", "dhash", "phash", "whash", "pdq")
HASH_SIDE = 128  # short side decoded for hashing: about what pHash and wHash look at; PDQ needs 64
CHUNK = 16


def hash_file(path: str) -> dict:
    """Hex aHash, dHash, pHash, wHash (64-bit), PDQ (256-bit) and pdq_quality of one file; or a reason."""
    row: dict = {"path": path}
    try:
        h = file_hashes(decode_luma(read_bytes(path), min_side=HASH_SIDE))
    except BadInput as e:
        row["reason"] = str(e)
        return row
    except Exception as e:  # a decoder bug must not stop the run
        row["reason"] = f"unexpected error while decoding: {type(e).__name__}: {e}"[:300]
        return row
    row.update({k: hex_code(h[k]) for k in COLUMNS[1:]})
    row["pdq_quality"] = h["pdq_quality"]
    return row


def _hash_chunk(paths: list[str]) -> list[dict]:
    return [hash_file(p) for p in paths]


def hash_files(paths: list[str], *, workers: int | None = None) -> list[dict]:
    """One dict per path, in order: hex ahash, dhash, phash, whash, pdq and pdq_quality; or reason."""
    paths = [str(p) for p in paths]
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    n = min(workers or config.workers(), len(chunks))  # a few files: no processes, they cost more
    return [r for res in parallel.imap(_hash_chunk, chunks, workers=n) for r in res]

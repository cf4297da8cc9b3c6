"""`lookalike hash`: perceptual hashes of files, in parallel, with the index's own extractors."""

from __future__ import annotations

import numpy as np

from lookalike.features.hashes import hex_code, split_pdq8
from lookalike.ingest import _run

HASH_FEATURES = ["ahash", "dhash", "phash8", "whash", "pdq8"]


def hash_files(paths: list[str], *, workers: int | None = None) -> list[dict]:
    """One dict per path: hex ahash, dhash, phash, whash (64-bit), pdq (256-bit), pdq_quality; or reason."""
    from lookalike.features import registry

    out = []
    for results in _run([(p, {}) for p in paths], HASH_FEATURES, workers=workers, chunk=32):
        for _, res in results:
            row = {"path": res["row"]["path"]}
            if res["row"]["status"] != "ok":
                row["reason"] = res["row"]["reason"]
                out.append(row)
                continue
            f = {n: registry.get(n).decode(blob) for n, (_, blob) in res["features"].items()}
            row.update(ahash=hex_code(f["ahash"]), dhash=hex_code(f["dhash"]),
                       phash=hex_code(np.asarray(f["phash8"])[:8]), whash=hex_code(f["whash"]))
            pdq, quality = split_pdq8(f["pdq8"])
            row.update(pdq=hex_code(pdq[0]), pdq_quality=quality)
            out.append(row)
    return out

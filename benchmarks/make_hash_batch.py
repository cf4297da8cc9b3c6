"""A small batch for timing `lookalike hash` as a whole process: JPEGs of about 1.5 MP.

Takes the largest photos in the data tree (JPEG or not, found by content; the caption and face-crop
sets are small thumbnails and are skipped), scales each to 1.5 MP with Pillow's Lanczos filter and
saves it as a JPEG (quality 90, 4:2:0), as a camera or phone export would be. `--skip 167` leaves out
the 167 largest and takes the next ones (0.75-0.82 MP originals, scaled up): a second, held-out batch.

    python benchmarks/make_hash_batch.py OUT_DIR [--data ../shared/data] [--count 167] [--skip 0]
    lookalike hash OUT_DIR/*.jpg                          # and the peer:
    python benchmarks/imagehash_phash.py OUT_DIR/*.jpg
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from PIL import Image, ImageOps

SKIP = ("captions", "faces_large")
PIXELS = 1_500_000


def largest_photos(root: Path, count: int) -> list[Path]:
    sizes = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or any(part in SKIP for part in p.relative_to(root).parts):
            continue
        try:
            with Image.open(p) as im:
                if im.mode in ("RGB", "L", "CMYK") and im.size[0] * im.size[1] >= 250_000:
                    sizes.append((-im.size[0] * im.size[1], str(p)))
        except Exception:
            continue
    return [Path(p) for _, p in sorted(sizes)[:count]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    ap.add_argument("--count", type=int, default=167)
    ap.add_argument("--skip", type=int, default=0, help="leave out this many of the largest photos first")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for i, src in enumerate(largest_photos(args.data, args.skip + args.count)[args.skip :]):
        with Image.open(src) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            f = math.sqrt(PIXELS / (im.size[0] * im.size[1]))
            im = im.resize((round(im.size[0] * f), round(im.size[1] * f)), Image.Resampling.LANCZOS)
            im.save(args.out / f"{i:03d}.jpg", quality=90, subsampling="4:2:0")
    print(f"{i + 1} JPEGs of about {PIXELS / 1e6:.1f} MP in {args.out}")


if __name__ == "__main__":
    main()

"""Held-out copy edits that the copy mode was never tuned on, in the near_duplicate format.

    python benchmarks/make_heldout_copies.py [--data ../shared/data] [--out /tmp/heldout] [--n 36] [--seed 13]
    lookalike eval copy --data /tmp/heldout          # then: the usual copy metrics on these edits

Originals are photos of the `retrieval` set (never used by near_duplicate), picked so that several
share a place: their pairs are hard negatives (other photos of one place). Each original gets edits
the dev set does not have:

- crop_of_crop: a crop (55-75 %) of a crop (55-75 %), re-encoded;
- screenshot_of_crop: a crop (35-60 %) shown small inside a large desktop screenshot (title bar,
  side panel, text lines), the picture 25-45 % of the frame's width;
- phone_screenshot: the picture inside a phone screenshot (status bar, caption text, buttons);
- tiled_watermark: semi-transparent text tiled over the whole picture;
- collage: the picture and two photos from outside the set (faces_large) pasted on a patterned
  background (stripes, checks or noise); only the picture is in the set, so the copy relation stays
  a transitive closure of one photo's copies.

"Same fixed camera, different moment" hard negatives, from the `background` set: its real photos of
one place (another person or pose in front of one camera: the balcony, the desk's later frames, the
studio) and its composites of one background (another person, another moment's camera jitter).

Nothing is written into the repository: the folder is made under --out (default /tmp/heldout), seeded,
so a second run makes the same files.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

REPO = Path(__file__).resolve().parents[1]
WORDS = ("holiday", "weekend", "look", "shared", "photo", "amazing", "view", "travel", "friends", "today",
         "the", "best", "place", "ever", "morning", "sunset", "city", "trip", "new", "post")


def _load(path: Path, max_side: int = 1024) -> Image.Image:
    im = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    im.thumbnail((max_side, max_side), Image.LANCZOS)
    return im


def _crop(im: Image.Image, rng: random.Random, lo: float, hi: float) -> Image.Image:
    w, h = im.size
    f = rng.uniform(lo, hi)
    cw, ch = max(16, int(w * f)), max(16, int(h * f))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return im.crop((x, y, x + cw, y + ch))


def _text_lines(draw: ImageDraw.ImageDraw, rng: random.Random, box, colour, n: int, step: int = 18) -> None:
    x0, y0, x1, y1 = box
    for i in range(n):
        y = y0 + i * step
        if y > y1 - step:
            break
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))
        draw.text((x0, y), words, fill=colour)


def crop_of_crop(im, rng):
    return _crop(_crop(im, rng, 0.55, 0.75), rng, 0.55, 0.75)


def screenshot_of_crop(im, rng):
    part = _crop(im, rng, 0.35, 0.6)
    W, H = rng.choice([(1920, 1080), (1600, 900), (1440, 900)])
    canvas = Image.new("RGB", (W, H), rng.choice([(245, 245, 245), (30, 30, 34), (250, 250, 252)]))
    d = ImageDraw.Draw(canvas)
    dark = canvas.getpixel((0, 0))[0] < 128
    ink = (220, 220, 220) if dark else (40, 40, 40)
    d.rectangle((0, 0, W, 40), fill=(60, 60, 70) if dark else (215, 218, 224))
    d.rectangle((0, 40, 260, H), fill=(45, 45, 52) if dark else (235, 236, 240))
    _text_lines(d, rng, (20, 60, 250, H), ink, 30, step=24)
    pw = int(W * rng.uniform(0.25, 0.45))
    ph = max(8, int(part.height * pw / part.width))
    if ph > H - 200:
        ph = H - 200
        pw = max(8, int(part.width * ph / part.height))
    x, y = rng.randint(300, max(300, W - pw - 40)), rng.randint(120, max(120, H - ph - 60))
    canvas.paste(part.resize((pw, ph), Image.LANCZOS), (x, y))
    _text_lines(d, rng, (300, 60, W - 40, y - 10), ink, 3)
    _text_lines(d, rng, (300, y + ph + 10, W - 40, H), ink, 6)
    return canvas


def phone_screenshot(im, rng):
    W, H = 1170 // 2, 2532 // 2
    canvas = Image.new("RGB", (W, H), rng.choice([(255, 255, 255), (0, 0, 0), (18, 18, 18)]))
    d = ImageDraw.Draw(canvas)
    ink = (20, 20, 20) if canvas.getpixel((0, 0))[0] > 128 else (235, 235, 235)
    d.text((20, 12), "9:41", fill=ink)
    d.rectangle((W - 60, 14, W - 24, 26), outline=ink)
    d.ellipse((16, 60, 56, 100), fill=(120, 140, 200))
    _text_lines(d, rng, (70, 66, W - 20, 110), ink, 2)
    pw = W
    ph = int(im.height * pw / im.width)
    ph = min(ph, int(H * 0.6))
    pic = ImageOps.fit(im, (pw, ph), Image.LANCZOS)
    y = 130
    canvas.paste(pic, (0, y))
    for i in range(4):  # like, comment, share, save
        d.ellipse((20 + 50 * i, y + ph + 14, 48 + 50 * i, y + ph + 42), outline=ink, width=2)
    _text_lines(d, rng, (20, y + ph + 60, W - 20, H - 80), ink, 8, step=22)
    d.rectangle((0, H - 70, W, H), fill=canvas.getpixel((0, 0)))
    for i in range(5):
        d.rectangle((40 + i * (W - 80) // 5, H - 50, 70 + i * (W - 80) // 5, H - 20), outline=ink)
    return canvas


def tiled_watermark(im, rng):
    base = im.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    text = rng.choice(["(c) stockphoto", "SAMPLE", "preview only", "www.example.com"])
    alpha = rng.randint(70, 120)
    step_x, step_y = rng.randint(90, 150), rng.randint(50, 90)
    font = ImageFont.load_default(size=rng.randint(22, 36))
    step_x, step_y = int(step_x * 2), int(step_y * 1.5)
    for y in range(-step_y, base.height + step_y, step_y):
        for x in range(-step_x, base.width + step_x, step_x):
            d.text((x + (y // step_y % 2) * step_x // 2, y), text, fill=(255, 255, 255, alpha), font=font)
    layer = layer.rotate(rng.uniform(-30, 30), resample=Image.BICUBIC, center=(base.width / 2, base.height / 2))
    return Image.alpha_composite(base, layer).convert("RGB")


def _pattern(size, rng) -> Image.Image:
    w, h = size
    kind = rng.choice(["stripes", "checks", "noise"])
    a = np.array([rng.randint(0, 255) for _ in range(3)], np.uint8)
    b = np.array([rng.randint(0, 255) for _ in range(3)], np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    if kind == "stripes":
        mask = ((xx + yy) // rng.randint(8, 30)) % 2 == 0
    elif kind == "checks":
        s = rng.randint(12, 40)
        mask = ((xx // s) + (yy // s)) % 2 == 0
    else:
        mask = np.random.default_rng(rng.randint(0, 2**31)).random((h, w)) < 0.5
    return Image.fromarray(np.where(mask[..., None], a, b).astype(np.uint8))


def collage(ims, rng):
    W, H = 1600, 1100
    canvas = _pattern((W, H), rng)
    slots = [(40, 40, 760, 520), (820, 60, 1560, 560), (300, 600, 1300, 1060)]
    for im, (x0, y0, x1, y1) in zip(ims, slots):
        pic = im.copy()
        pic.thumbnail((x1 - x0, y1 - y0), Image.LANCZOS)
        canvas.paste(pic, (x0 + rng.randint(0, max(0, x1 - x0 - pic.width)), y0))
    return canvas


EDITS = {"crop_of_crop": crop_of_crop, "screenshot_of_crop": screenshot_of_crop,
         "phone_screenshot": phone_screenshot, "tiled_watermark": tiled_watermark}


def _originals(data: Path, n: int, rng: random.Random) -> list[tuple[str, str]]:
    """(path relative to data, place) of n retrieval photos: up to three of each place with several
    (their pairs are hard negatives), then photos of no place ("" : distractors)."""
    by_place: dict[str, list[str]] = {}
    with open(data / "retrieval" / "groups.csv", newline="") as f:
        for r in csv.DictReader(f):
            by_place.setdefault(r["group"], []).append(r["path"])
    # the `background` set's composites are some of these very photos with a person pasted in: as
    # originals they would be copies of those composites, which the hard negatives call different
    with open(data / "background" / "meta.csv", newline="") as f:
        used = {Path(r["background_source"]).name for r in csv.DictReader(f)}
    by_place = {k: [p for p in v if Path(p).name not in used] for k, v in by_place.items()}
    out = []
    for p in sorted(k for k, v in by_place.items() if k and len(v) >= 2):
        out += [(f"retrieval/{path}", p) for path in rng.sample(sorted(by_place[p]), min(3, len(by_place[p])))]
    rest = sorted(by_place.get("", []))
    rng.shuffle(rest)
    out += [(f"retrieval/{path}", "") for path in rest]
    return out[:n]


def _fixed_camera(data: Path) -> list[tuple[str, str, str]]:
    """(a, b, note) pairs of `background` photos from one camera at another moment: real photos of one
    place, and composites of one background (another person, another moment's framing)."""
    rows: dict[str, list[str]] = {}
    with open(data / "background" / "groups.csv", newline="") as f:
        for r in csv.DictReader(f):
            rows.setdefault(r["background"], []).append(r["path"])
    out = []
    for bg, paths in sorted(rows.items()):
        real = [p for p in sorted(paths) if "__real" in p]
        comp = [p for p in sorted(paths) if "__real" not in p][:4]
        for a, b in combinations(real, 2):
            out.append((f"background/{a}", f"background/{b}", f"fixed camera, another moment: {bg}"))
        for a, b in combinations(comp, 2):
            out.append((f"background/{a}", f"background/{b}", f"one background, another person: {bg}"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    default=Path(os.environ.get("LOOKALIKE_DATA") or REPO.parent / "shared" / "data"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/heldout"))
    ap.add_argument("--n", type=int, default=36, help="originals")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    root = args.out / "near_duplicate"
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, pairs, hard = [], [], []

    def save(im: Image.Image, rel: str, quality: int | None = None) -> str:
        p = root / "images" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        im.save(p, quality=quality or rng.randint(70, 92))
        images.append(f"images/{rel}")
        return f"images/{rel}"

    originals = _originals(args.data, args.n, rng)
    loaded = {}
    for n, (rel, place) in enumerate(originals):
        im = _load(args.data / rel)
        loaded[rel] = im
        orig = save(im, f"originals/{n:03d}.jpg", 92)
        for name, edit in EDITS.items():
            pairs.append((orig, save(edit(im, rng), f"{name}/{n:03d}.jpg"), name))
    keys = {rel: f"images/originals/{n:03d}.jpg" for n, (rel, _) in enumerate(originals)}
    for (ra, pa), (rb, pb) in combinations(originals, 2):
        if pa and pa == pb:
            hard.append((keys[ra], keys[rb], f"same place, other photo: {pa}"))
    fillers = sorted((args.data / "faces_large").rglob("*.jpg"))
    for n, (rel, _) in enumerate(originals):
        trio = [loaded[rel]] + [_load(p) for p in rng.sample(fillers, 2)]
        order = rng.sample(range(3), 3)
        out = save(collage([trio[i] for i in order], rng), f"collage/{n:03d}.jpg")
        pairs.append((keys[rel], out, "collage"))
    fixed = _fixed_camera(args.data)
    for a, b, note in fixed:
        for rel in (a, b):
            dst = f"fixed_camera/{rel.split('/', 1)[1].replace('/', '__')}"
            if f"images/{dst}" not in images:
                save(_load(args.data / rel, 1280), dst, 90)
        hard.append((f"images/fixed_camera/{a.split('/', 1)[1].replace('/', '__')}",
                     f"images/fixed_camera/{b.split('/', 1)[1].replace('/', '__')}", note))
    (root / "images.txt").write_text("\n".join(images) + "\n")
    (root / "unreadable.txt").write_text("")
    with open(root / "pairs.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["a", "b", "transform"])
        w.writerows(pairs)
    with open(root / "hard_negatives.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["a", "b", "note"])
        w.writerows(hard)
    print(f"{root}: {len(images)} images, {len(pairs)} copy pairs, {len(hard)} hard negatives "
          f"({sum('fixed camera' in h[2] or 'one background' in h[2] for h in hard)} from one fixed camera)")


if __name__ == "__main__":
    main()

import hashlib
import os
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from lookalike import Index
from lookalike.eval import datasets, metrics

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LOOKALIKE_DATA") or REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.exists():
        pytest.fail(f"evaluation data not found at {DATA} (set LOOKALIKE_DATA)")
    return DATA


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """$LOOKALIKE_CACHE when set (CI and `make test`: models converted once and reused), else one
    temporary cache for the whole session. Tests prepare what they need into it with models.prepare."""
    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get("LOOKALIKE_CACHE"):
            mp.setenv("LOOKALIKE_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield Path(os.environ["LOOKALIKE_CACHE"])


FACE_MODELS = ("face-detection-full", "face-detection-short", "dlib-landmarks-5", "dlib-face-resnet")


@pytest.fixture(scope="session")
def face_models(model_cache) -> None:
    """The models of the "faces" feature (features/faces.py), prepared into the session's cache."""
    from lookalike import models

    for name in FACE_MODELS:
        models.prepare(name)


# -- near_duplicate, indexed once per session (test_copy, test_exact, test_index; slow) ----------

@pytest.fixture(scope="session")
def near_dup(data_dir):
    return datasets.read_near_duplicate(data_dir / "near_duplicate")


@pytest.fixture(scope="session")
def near_dup_index(near_dup, tmp_path_factory):
    """(index dir, AddReport of the first run as a dict) for the whole near_duplicate set."""
    where = tmp_path_factory.mktemp("near_dup_index")
    with Index.open(where) as idx:
        report = idx.add([near_dup.root / "images"])
    return where, {"added": report.added, "copies": report.copies, "failed": report.failed,
                   "unchanged": report.unchanged}


@pytest.fixture(scope="session")
def exact_found(near_dup, near_dup_index):
    """((byte-identical pairs, pixel-identical pairs) by an independent reference, pairs exact mode finds)."""
    ref = _exact_reference(near_dup)
    with Index.open(near_dup_index[0]) as idx:
        found = near_dup.pair_keys(idx.dedup(mode="exact").pairs)
    return ref, found


def _full_pixels(path) -> tuple | None:
    """Independent reference decode (full resolution, EXIF applied), or None if unreadable."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            rgb = np.asarray(im.convert("RGBA"))  # alpha counts: RGBA over white is not RGB
    except Exception:
        return None
    return rgb.shape, hashlib.sha256(rgb.tobytes()).hexdigest()


def _oriented_size(path):
    try:
        with Image.open(path) as im:
            w, h = im.size
            return (h, w) if im.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (w, h)
    except Exception:
        return None


def _exact_reference(ds) -> tuple[set, set]:
    """Byte-identical pairs, and pixel-identical pairs (decoded only when oriented sizes collide)."""
    files = ds.files
    by_sha = defaultdict(list)
    for k in ds.readable:  # unreadable files are not indexed, so never duplicates
        by_sha[hashlib.sha256(files[k].read_bytes()).hexdigest()].append(k)
    byte_pairs = metrics.pairs_within(g for g in by_sha.values() if len(g) > 1)
    by_size = defaultdict(list)
    for k in ds.readable:
        by_size[_oriented_size(files[k])].append(k)
    by_pixels = defaultdict(list)
    for size, ks in by_size.items():
        if size is None or len(ks) < 2:
            continue
        for k in ks:
            d = _full_pixels(files[k])
            if d is not None:
                by_pixels[d].append(k)
    return byte_pairs, metrics.pairs_within(g for g in by_pixels.values() if len(g) > 1)


def index_demo_photos(root: Path, names, index_name: str) -> Path:
    """Copy these demo photos into root/<folder> and index them (one worker) in root/index_name."""
    photos = root / "photos"
    photos.mkdir()
    for name in names:
        shutil.copy(REPO / "demo" / name, photos / name)
    with Index.open(root / index_name) as idx:
        idx.add([photos], workers=1)
    return root / index_name


SCREEN_WORDS = "shared photo view travel today the best place morning city trip new post".split()


def desktop_screenshot(photo: Image.Image, rng, *, crop: float = 0.4, size=(1600, 900), panel: int = 260,
                       lines: int = 34, captions: bool = True, at=(520, 120), width: int = 530) -> Image.Image:
    """A crop (`crop` of each side, placed by rng) of the photo, shown `width` px wide at `at` in a desktop
    screenshot of `size`: a title bar, a side panel of text lines, and with `captions` text under it."""
    w, h = photo.size
    cw, ch = int(w * crop), int(h * crop)
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    part = photo.crop((x, y, x + cw, y + ch))
    canvas = Image.new("RGB", size, (245, 245, 245))
    d = ImageDraw.Draw(canvas)
    d.rectangle((0, 0, size[0], 40), fill=(215, 218, 224))
    d.rectangle((0, 40, panel, size[1]), fill=(235, 236, 240))
    for i in range(lines):
        d.text((20, 60 + 24 * i), " ".join(rng.choice(SCREEN_WORDS) for _ in range(5)), fill=(40, 40, 40))
        if captions:
            d.text((300, 700 + 22 * (i % 8)), " ".join(rng.choice(SCREEN_WORDS) for _ in range(9)), fill=(40, 40, 40))
    canvas.paste(part.resize((width, int(part.height * width / part.width)), Image.LANCZOS), at)
    return canvas


class CopyFixture:
    """Named files indexed at `where` and their copy-mode dedup pairs, for copy-mode failure classes."""

    def __init__(self, files: dict[str, str], where: Path):
        self.files, self.where = files, where
        with Index.open(where) as idx:
            idx.add(list(files.values()), workers=1)
            self.pairs = {frozenset((p.a, p.b)): p for p in idx.dedup(mode="copy").pairs}

    def pair(self, a: str, b: str):
        """The dedup pair of files named a and b, or None."""
        return self.pairs.get(frozenset((self.files[a], self.files[b])))

    def search_finds(self, query: str, other: str) -> bool:
        """Does `search` of file `query` find file `other` (search agrees with dedup)?"""
        with Index.open(self.where) as idx:
            return self.files[other] in {m.path for m in idx.search([self.files[query]], mode="copy")[0].results}

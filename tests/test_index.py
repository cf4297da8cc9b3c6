"""Indexing: the whole near_duplicate set, idempotent re-runs, kill -9 and resume, bad inputs."""

from __future__ import annotations

import io
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
from PIL import Image

import lookalike.ingest as ingest
from lookalike import Index
from lookalike.imageio import load_file


# -- the whole near_duplicate set ------------------------------------------------------------

@pytest.mark.slow
def test_near_duplicate_indexed_unreadable_reported(near_dup, near_dup_index):
    where, first = near_dup_index
    ds = near_dup
    with Index.open(where) as idx:
        errors = {ds.key_of(p): reason for p, reason in idx.errors()}
        info = idx.info()
        assert set(errors) == ds.unreadable  # exactly the listed files fail, each with a reason
        assert all(r and "\n" not in r for r in errors.values())
        assert info["files_ok"] == len(ds.readable)
        assert first["added"] + first["copies"] == len(ds.readable)
        assert first["failed"] == len(ds.unreadable)
        again = idx.add([ds.root / "images"])
    assert (again.added, again.copies, again.failed) == (0, 0, 0)
    assert again.unchanged == len(ds.images)


# -- kill -9 mid-run, resume, compare with an uninterrupted run --------------------------------

def _snapshot(db_path) -> tuple[list, list]:
    db = sqlite3.connect(db_path)
    files = db.execute("SELECT path, size, mtime_ns, sha256, pixel_digest, width, height, format, status, reason "
                       "FROM files ORDER BY path").fetchall()
    feats = db.execute("SELECT f.path, x.name, x.version, x.data FROM features x JOIN files f ON f.id = x.file_id "
                       "ORDER BY f.path, x.name").fetchall()
    db.close()
    return files, feats


def _index_cmd(folder, index):
    return [sys.executable, "-m", "lookalike.cli", "index", str(folder), "--index", str(index), "--workers", "2"]


def _count(db_path) -> int:
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1)
        try:
            return db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def test_kill_9_then_resume_equals_uninterrupted_run(near_dup, tmp_path):
    ds = near_dup
    src = tmp_path / "photos"
    keys = [k for k in ds.readable if "/derived_transforms/" in k][:150]
    for k in keys:
        dst = src / k
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ds.files[k], dst)
    killed_db = tmp_path / "killed" / "catalog.sqlite"

    proc = subprocess.Popen(_index_cmd(src, tmp_path / "killed"), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _count(killed_db) < 32 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its worker processes
    proc.wait()
    at_kill = _count(killed_db)
    assert 0 < at_kill < len(keys), f"kill came too late or too early ({at_kill} of {len(keys)} written)"

    subprocess.run(_index_cmd(src, tmp_path / "killed"), check=True, capture_output=True)
    subprocess.run(_index_cmd(src, tmp_path / "clean"), check=True, capture_output=True)
    files_k, feats_k = _snapshot(killed_db)
    files_c, feats_c = _snapshot(tmp_path / "clean" / "catalog.sqlite")
    assert len(files_k) == len(keys) and len({r[0] for r in files_k}) == len(keys)  # none lost, none twice
    assert all(r[8] == "ok" for r in files_k)
    assert files_k == files_c
    assert feats_k == feats_c

    rerun = subprocess.run(_index_cmd(src, tmp_path / "killed"), check=True, capture_output=True, text=True)
    assert f"unchanged {len(keys)}" in rerun.stderr + rerun.stdout


# -- bad inputs ------------------------------------------------------------------------------

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png() -> bytes:
    """A valid PNG header claiming 100000 x 100000 pixels (10 GP) with a tiny body."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + \
        _png_chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + _png_chunk(b"IEND", b"")


def _photo(w=96, h=64) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // w, y * 255 // h, (x + y) % 256], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb)


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture()
def bad_folder(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    photo = _photo()
    jpeg = _save(photo, "JPEG", quality=90)
    (d / "ok.jpg").write_bytes(jpeg)
    (d / "empty.jpg").write_bytes(b"")
    (d / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (d / "garbage.png").write_bytes(b"this is not an image at all" * 10)
    (d / "bomb.png").write_bytes(_bomb_png())
    (d / "png_named.jpg").write_bytes(_save(photo, "PNG"))
    (d / "UPPER.JPG").write_bytes(jpeg)
    (d / "cmyk.jpg").write_bytes(_save(photo.convert("CMYK"), "JPEG"))
    (d / "palette.png").write_bytes(_save(photo.convert("P"), "PNG"))
    (d / "la.png").write_bytes(_save(photo.convert("LA"), "PNG"))
    (d / "i16.png").write_bytes(_save(Image.fromarray((np.asarray(photo.convert("L")).astype(np.uint16) * 257)), "PNG"))
    frames = [photo, photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    (d / "anim.gif").write_bytes(_save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100))
    # left half red: EXIF orientation 6 (rotate 90 degrees clockwise to display) puts red on top
    rot = np.zeros((40, 60, 3), np.uint8)
    rot[:, :30] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    (d / "exif6.jpg").write_bytes(_save(Image.fromarray(rot), "JPEG", quality=95, exif=exif))
    os.symlink(d / "loop_b", d / "loop_a")
    os.symlink(d / "loop_a", d / "loop_b")
    os.symlink(d, d / "dir_loop")  # a directory symlink back to itself
    (d / "vanishes.jpg").write_bytes(jpeg + b"\0")
    (d / "vanishes_late.jpg").write_bytes(jpeg + b"\0\0")
    return d


def test_exif_orientation_applied(bad_folder):
    img = load_file(bad_folder / "exif6.jpg")
    h, w = img.rgb.shape[:2]
    assert (w, h) == (40, 60) and (img.width, img.height) == (40, 60)
    top, bottom = img.rgb[: h // 3].mean(axis=(0, 1)), img.rgb[-h // 3:].mean(axis=(0, 1))
    assert top[0] > 200 and top[1] < 60 and bottom[0] < 60


def test_bad_inputs_recorded_run_continues(bad_folder, tmp_path, monkeypatch):
    d = bad_folder
    real_scan, real_sha = ingest.scan, ingest.file_sha256

    def scan_then_delete(*a, **kw):  # removed between the folder scan and the stat
        found = real_scan(*a, **kw)
        (d / "vanishes.jpg").unlink()
        return found

    def sha_then_delete(path):  # removed between the checksum and the decode
        h = real_sha(path)
        if path.endswith("vanishes_late.jpg"):
            os.unlink(path)
        return h

    monkeypatch.setattr(ingest, "scan", scan_then_delete)
    monkeypatch.setattr(ingest, "file_sha256", sha_then_delete)
    with Index.open(tmp_path / "idx") as idx:
        rep = idx.add([d], workers=1)
        errors = dict(idx.errors())
        ok = {os.path.basename(r.path): r for r in idx.catalog.files()}

    names = {os.path.basename(p): r for p, r in errors.items()}
    expect_error = {"empty.jpg", "garbage.png", "bomb.png", "loop_a", "loop_b"}
    assert expect_error <= set(names), sorted(names)
    # files that vanish during the run are reported, and the index keeps no row of them (it follows the disk)
    vanished = {"vanishes.jpg", "vanishes_late.jpg"}
    assert vanished <= {os.path.basename(p) for p, _ in rep.errors} and not vanished & set(names)
    assert not vanished & set(ok)
    assert all(r and "\n" not in r and len(r) < 300 for r in names.values())
    assert "0 bytes" in names["empty.jpg"]
    assert "MP" in names["bomb.png"] and "limit" in names["bomb.png"]
    # truncated JPEGs are either decoded partially or refused with a reason
    assert ("truncated.jpg" in ok) != ("truncated.jpg" in names)
    decodable = {"ok.jpg", "png_named.jpg", "UPPER.JPG", "cmyk.jpg", "palette.png", "la.png", "i16.png",
                 "anim.gif", "exif6.jpg"}
    assert decodable <= set(ok), sorted(decodable - set(ok))
    assert ok["exif6.jpg"].width == 40 and ok["exif6.jpg"].height == 60
    assert ok["png_named.jpg"].format == "PNG"
    assert not any("dir_loop" in p for p in list(errors) + [r.path for r in ok.values()])  # not walked into
    assert rep.added + rep.copies == len(ok) and rep.failed == len(errors) + len(vanished)
    assert rep.removed == 1  # vanishes_late.jpg: recorded as it failed to decode, dropped as it is gone


# -- `lookalike hash`: imagehash's numbers, fast ---------------------------------------------

def _bits(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def test_hash_files_match_imagehash(near_dup):  # noqa: F811
    """aHash/dHash/pHash/wHash within a bit or two of imagehash's (on the EXIF-oriented picture),
    PDQ within PDQ's usual noise of pdqhash on the full-size image."""
    imagehash = pytest.importorskip("imagehash")
    import pdqhash
    from PIL import ImageOps

    from lookalike.hashing import hash_files

    keys = [k for k in sorted(near_dup.readable)]
    paths = [str(near_dup.files[k]) for k in keys[::4]]
    rows = hash_files(paths, workers=1)
    assert [r["path"] for r in rows] == paths and not any("reason" in r for r in rows)
    dist, pdq = [], []
    for r in rows:
        with Image.open(r["path"]) as im:
            if im.mode not in ("RGB", "L") or "transparency" in im.info:
                continue  # imagehash drops alpha where we flatten it over white
            im = ImageOps.exif_transpose(im)
            theirs = [imagehash.average_hash(im), imagehash.dhash(im), imagehash.phash(im), imagehash.whash(im)]
            dist.append([_bits(r[n], str(h)) for n, h in zip(("ahash", "dhash", "phash", "whash"), theirs)])
            if im.size[0] * im.size[1] <= 4_000_000:
                bits, _ = pdqhash.compute(np.ascontiguousarray(np.asarray(im.convert("RGB"))))
                pdq.append(_bits(r["pdq"], bytes(np.packbits(bits.astype(np.uint8))).hex()))
    d = np.array(dist)
    assert len(d) >= 200
    # measured on every readable file: mean 0.1-0.4 bits, 98-100 % within 2 bits
    assert (d.mean(axis=0) <= 0.6).all(), d.mean(axis=0)
    assert ((d <= 2).mean(axis=0) >= 0.95).all(), (d <= 2).mean(axis=0)
    # measured: mean 9, 95th percentile 18 of 256 bits (PDQ's match threshold is 31)
    assert np.mean(pdq) <= 12 and np.percentile(pdq, 95) <= 24, (np.mean(pdq), np.percentile(pdq, 95))


def test_whash_block_means_equal_pywavelets():
    """wHash without PyWavelets: the 8x8 block means against their median give imagehash's Haar bits."""
    pywt = pytest.importorskip("pywt")
    from lookalike.features.filehash import haar_ll8

    rng = np.random.default_rng(0)
    for i in range(200):
        px = rng.random((64, 64)) if i % 2 else np.cumsum(rng.random((64, 64)), axis=i % 4 // 2)
        coeffs = pywt.wavedec2(px, "haar", level=6)
        coeffs[0] *= 0  # imagehash's remove_max_haar_ll
        ll = pywt.wavedec2(pywt.waverec2(coeffs, "haar"), "haar", level=3)[0]
        assert np.array_equal(haar_ll8(px), np.packbits(ll > np.median(ll)))


def test_hash_files_bad_inputs_in_order(bad_folder):
    from lookalike.hashing import hash_files

    files = sorted(str(p) for p in bad_folder.rglob("*") if p.is_file())
    paths = files * 3  # several chunks: the worker pool runs
    rows = hash_files(paths, workers=2)
    assert [r["path"] for r in rows] == paths
    assert rows[: len(files)] == rows[len(files): 2 * len(files)]
    by_name = {os.path.basename(r["path"]): r for r in rows}
    assert "0 bytes" in by_name["empty.jpg"]["reason"] and "limit" in by_name["bomb.png"]["reason"]
    for name in ("ok.jpg", "png_named.jpg", "cmyk.jpg", "palette.png", "la.png", "i16.png", "anim.gif", "exif6.jpg"):
        assert [len(by_name[name][c]) for c in ("ahash", "dhash", "phash", "whash", "pdq")] == [16, 16, 16, 16, 64]


def test_hash_command_starts_light(tmp_path):
    """`lookalike hash FILE...` answers without the engine, typer, OpenCV or a pool, and JPEGs without
    Pillow or pdqhash: a small batch is a short job and start-up was most of it."""
    demo = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demo")
    files = sorted(os.path.join(demo, f) for f in os.listdir(demo) if f.endswith(".jpg"))[:3] + [str(tmp_path / "missing.jpg")]
    probe = ("import os, sys; sys.argv = ['lookalike', 'hash', *sys.argv[1:]]\n"
             "os._exit = sys.exit  # main() leaves through os._exit (no teardown): here it must come back\n"
             "from lookalike.__main__ import main\n"
             "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
             "heavy = [m for m in ('lookalike.api', 'typer', 'pydantic', 'cv2', 'onnxruntime', 'faiss',"
             " 'multiprocessing.pool', 'PIL.Image', 'pdqhash')"
             " if m in sys.modules]\n"
             "print('HEAVY', heavy, 'CODE', code, file=sys.stderr)\n")
    res = subprocess.run([sys.executable, "-c", probe, *files], capture_output=True, text=True, timeout=120)
    assert "HEAVY [] CODE 1" in res.stderr, res.stderr[-2000:]  # exit 1: one input failed (named on stderr)
    lines = res.stdout.splitlines()
    assert lines[0] == "path,ahash,dhash,phash,whash,pdq" and len(lines) == len(files)  # the missing file has no row
    assert "error:" in res.stderr and "missing.jpg" in res.stderr
    assert all(len(line.split(",")[3]) == 16 for line in lines[1:4])  # the three readable files


def test_heic_decodes_with_lazy_codec(tmp_path):
    """pillow-heif is registered on the first ISO-media file only (its import slowed `hash` start-up):
    a HEIC photo still decodes, by content, whatever its extension."""
    pillow_heif = pytest.importorskip("pillow_heif")
    from lookalike.imageio.load import decode_luma, load_file, read_bytes

    pillow_heif.register_heif_opener()  # only to write the fixture
    rgb = np.random.default_rng(1).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.jpg", format="HEIF")  # wrong extension on purpose
    d = load_file(tmp_path / "photo.jpg")
    assert d.format == "HEIF" and d.rgb.shape == (64, 80, 3)
    assert decode_luma(read_bytes(tmp_path / "photo.jpg")).shape == (64, 80)

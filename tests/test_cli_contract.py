"""The CLI contract for every command (DESIGN.md "Interfaces", issue 14): bad input ends in one line and a
non-zero exit code, never a traceback; `-o FILE` is honoured for every --format; only `index` creates an
index; every option has help. Runs on a hashes-only index of a few demo photos (no models: fast)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from lookalike.cli import app

DEMO = Path(__file__).resolve().parents[1] / "demo"
runner = CliRunner()
PHOTOS = ("bridge.jpg", "bridge_blur.jpg", "bridge_flipped.jpg", "chelsea.jpg", "chelsea_gray_small.jpg", "rocket.jpg")


def run(*args, code: int | None = 0):
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exception is None or isinstance(res.exception, SystemExit), (args, res.output, res.exception)
    if code is not None:
        assert res.exit_code == code, (args, res.exit_code, res.output)
    return res


def one_line_error(res) -> str:
    """The run failed with exactly one line on stderr, no traceback."""
    assert res.exit_code != 0, res.output
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert "Traceback" not in res.output and len(lines) == 1 and lines[0].startswith("error:"), res.output
    return lines[0]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    photos = root / "photos"
    photos.mkdir()
    for name in PHOTOS:
        shutil.copy(DEMO / name, photos / name)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (photos / "bridge.xmp").write_text("<x:xmpmeta/>")  # a sidecar: skipped, not an error
    idx = root / "idx"
    res = run("index", photos, "--index", idx, "--hashes-only", "--workers", "1")
    assert "added 6" in res.output and "failed 1" in res.output
    return root, photos, idx


def test_version():
    res = run("--version")
    assert res.stdout.startswith("lookalike ")


def test_sidecars_skipped(lib):
    root, photos, idx = lib
    errors = run("errors", "--index", idx, "--format", "json").stdout
    assert [Path(e["path"]).name for e in json.loads(errors)] == ["broken.jpg"]


BAD_INPUT = [
    ("search", "{photos}/missing.jpg", "--index", "{idx}"),
    ("search", "{photos}/bridge.jpg", "--mode", "simlar", "--index", "{idx}"),
    ("search", "{photos}/bridge.jpg", "-k", "0", "--index", "{idx}"),
    ("search", "{photos}/bridge.jpg", "--min-score", "2", "--index", "{idx}"),
    ("search", "{photos}/bridge.jpg", "--index", "{idx}", "--format", "html"),
    ("search", "{photos}/bridge.jpg", "--index", "{idx}", "-o", "{root}/nodir/x.csv"),
    ("dedup", "--mode", "faces", "--index", "{idx}"),
    ("dedup", "--threshold", "1.5", "--index", "{idx}"),
    ("dedup", "--keep", "newest", "--index", "{idx}"),
    ("dedup", "--action", "shred", "--index", "{idx}"),
    ("dedup", "--action", "move", "--index", "{idx}"),
    ("dedup", "--apply", "--index", "{idx}"),
    ("index", "{photos}", "--index", "{idx}", "--cluster", "faces"),
    ("index", "{photos}", "--index", "{idx}", "--features", "nonsense"),
    ("index", "{root}/does/not/exist", "--index", "{idx}"),
    ("hash", "{photos}/missing.jpg"),
    ("hash", "{photos}/bridge.jpg", "-o", "{root}/nodir/h.csv"),
    ("hash", "{photos}/bridge.jpg", "--hashes", "md5"),
    ("compare", "{photos}/missing.jpg", "{photos}/bridge.jpg"),
    ("inspect", "{photos}/bridge.jpg", "-o", "{root}/nodir/x.png"),
    ("inspect", "{photos}/bridge.jpg", "-o", "{root}/x.gif"),
    ("cluster", "--by", "faces", "--index", "{idx}"),
    ("cluster", "train", "{root}/missing.csv", "--index", "{idx}"),
    ("clusters", "--by", "nosuch", "--index", "{idx}"),
    ("clusters", "--by", "background", "--index", "{idx}"),  # never clustered: says how
    ("remove", "{photos}/never-indexed.jpg", "--index", "{idx}"),
    ("decide", "maybe", "{photos}/bridge.jpg", "{photos}/rocket.jpg", "--index", "{idx}"),
    ("decide", "keep-one", "{photos}/bridge.jpg", "{photos}/rocket.jpg", "--index", "{idx}"),
    ("decisions", "--undo", "999", "--index", "{idx}"),
    ("undo", "{root}/missing.jsonl"),
    ("info", "{photos}/missing.jpg", "--index", "{idx}"),
    ("docs", "check", "{root}/missing/"),
    ("nosuchcommand",),
]


@pytest.mark.parametrize("args", BAD_INPUT, ids=lambda a: " ".join(a)[:60])
def test_bad_input_one_line_nonzero(lib, args):
    root, photos, idx = lib
    res = run(*(a.format(root=root, photos=photos, idx=idx) for a in args), code=None)
    one_line_error(res)


NEEDS_INDEX = [("search", "{photos}/bridge.jpg"), ("dedup",), ("cluster", "--by", "image"), ("clusters",),
               ("errors",), ("info",), ("remove", "{photos}/bridge.jpg"), ("prune",), ("decisions",),
               ("decide", "keep-all", "{photos}/bridge.jpg", "{photos}/rocket.jpg")]


@pytest.mark.parametrize("args", NEEDS_INDEX, ids=lambda a: a[0])
def test_only_index_creates_an_index(lib, args):
    root, photos, _ = lib
    nosuch = root / "nosuch" / "idx"
    res = run(*(a.format(photos=photos) for a in args), "--index", nosuch, code=2)
    assert "no index at" in one_line_error(res)
    assert not nosuch.exists() and not nosuch.parent.exists()


def _outputs(lib):
    root, photos, idx = lib
    common = ["--index", idx]
    return {
        "search": (["search", photos / "bridge.jpg", "--mode", "hash", *common], "table csv json html"),
        "dedup": (["dedup", "--mode", "hash", *common], "table csv json html"),
        "errors": (["errors", *common], "table csv json html"),
        "info": (["info", *common], "table csv json"),
        "info-file": (["info", photos / "bridge.jpg", *common], "table csv json"),
        "decisions": (["decisions", *common], "table csv json"),
        "hash": (["hash", photos / "bridge.jpg", photos / "rocket.jpg"], "table csv json html"),
        "compare": (["compare", photos / "bridge.jpg", photos / "bridge_blur.jpg"], "table csv json html"),
    }


@pytest.mark.parametrize("name", ["search", "dedup", "errors", "info", "info-file", "decisions", "hash", "compare"])
def test_output_file_for_every_format(lib, tmp_path, name):
    args, formats = _outputs(lib)[name]
    for fmt in formats.split():
        out = tmp_path / f"{name}.{fmt}"
        res = run(*args, "--format", fmt, "-o", out)
        text = out.read_text()
        assert text.strip(), (name, fmt)
        assert res.stdout.strip() == "", (name, fmt, res.stdout[:200])  # nothing of it on stdout
        if fmt == "json":
            json.loads(text)
        if fmt == "csv":
            assert "," in text.splitlines()[0]
        if fmt == "html":
            assert text.lstrip().lower().startswith("<!doctype html")


def test_search_threshold_default_and_self(lib):
    root, photos, idx = lib
    data = json.loads(run("search", photos / "bridge.jpg", "--mode", "hash", "--index", idx, "--format", "json").stdout)[0]
    assert data["indexed"] is True
    assert all(m["score"] >= 0.8 for m in data["results"])  # the mode's threshold, not 0.5
    own = [m for m in data["results"] if m.get("self")]
    assert len(own) == 1 and Path(own[0]["path"]).name == "bridge.jpg"
    assert "rocket.jpg" not in {Path(m["path"]).name for m in data["results"]}


def test_dedup_plan_apply_undo(lib, tmp_path):
    root, photos, idx = lib
    work = tmp_path / "work"
    shutil.copytree(photos, work)
    widx = tmp_path / "widx"
    run("index", work, "--index", widx, "--hashes-only", "--workers", "1", code=0)
    plan = json.loads(run("dedup", "--mode", "hash", "--index", widx, "--action", f"move:{tmp_path / 'trash'}",
                          "--format", "json").stdout)
    moved = {Path(r["path"]).name for r in plan}
    assert moved and all(Path(r["path"]).exists() for r in plan)  # a dry run touches nothing
    assert all(r["keep"] != r["path"] and r["action"] == "move" for r in plan)
    log = tmp_path / "actions.jsonl"
    run("dedup", "--mode", "hash", "--index", widx, "--action", f"move:{tmp_path / 'trash'}", "--apply", "--log", log)
    assert not any((work / n).exists() for n in moved) and len(log.read_text().splitlines()) == len(plan)
    assert json.loads(run("dedup", "--mode", "hash", "--index", widx, "--format", "json").stdout)["groups"] == []
    run("undo", log)
    assert all((work / n).exists() for n in moved)


def test_decide_not_duplicates_cli(lib, tmp_path):
    root, photos, idx = lib
    widx = tmp_path / "widx"
    run("index", photos, "--index", widx, "--hashes-only", "--workers", "1", code=0)
    before = json.loads(run("dedup", "--mode", "hash", "--index", widx, "--format", "json").stdout)["groups"]
    chelsea = next(g for g in before if any("chelsea" in m for m in g["members"]))
    run("decide", "not-duplicates", *chelsea["members"], "--index", widx)
    after = json.loads(run("dedup", "--mode", "hash", "--index", widx, "--format", "json").stdout)["groups"]
    assert len(after) == len(before) - 1
    listed = json.loads(run("decisions", "--index", widx, "--format", "json").stdout)
    assert listed[0]["verdict"] == "not_duplicates" and sorted(listed[0]["members"]) == sorted(chelsea["members"])


def test_every_option_has_help():
    def walk(cmd, path):
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, path + [name])

    missing = []
    for path, cmd in walk(get_command(app), []):
        res = runner.invoke(app, path + ["--help"])
        assert res.exit_code == 0, (path, res.output)
        for p in cmd.params:
            if getattr(p, "param_type_name", "") == "option" and not (p.help or "").strip() and p.name != "help":
                missing.append(f"{' '.join(path)} {p.opts[0]}")
    assert not missing, missing


def _encrypted_pdf(picture: Path, out: Path) -> None:
    """A one-page PDF of the picture, AES-256 encrypted with an empty user password (opens without one)."""
    import io

    from PIL import Image
    from pypdf import PdfReader, PdfWriter

    buf = io.BytesIO()
    Image.open(picture).convert("RGB").save(buf, "PDF")
    w = PdfWriter()
    for page in PdfReader(buf).pages:
        w.add_page(page)
    w.encrypt(user_password="", owner_password="owner", algorithm="AES-256")
    w.write(out)


def test_docs_check_groups_aes_pdfs_and_loose_images(tmp_path):
    """One picture used in 4 (AES-encrypted) PDFs is one group of 4, not 6 pair rows in the table; the
    CSV has method and locations; loose image files get a word."""
    for n in range(4):
        _encrypted_pdf(DEMO / "bridge.jpg", tmp_path / f"report{n}.pdf")
    shutil.copy(DEMO / "rocket.jpg", tmp_path / "loose.jpg")
    table = run("docs", "check", tmp_path)
    assert table.stdout.count("group ") == 1 and "4 places" in table.stdout
    assert "error:" not in table.stderr and "1 image files" in table.stderr
    rows = table_rows = run("docs", "check", tmp_path, "--format", "csv").stdout.splitlines()
    assert rows[0] == "doc_a,image_a,doc_b,image_b,score,method,location_a,location_b" and len(table_rows) == 7
    assert all(r.endswith("page 1,page 1") and ",sha256," in r for r in rows[1:])
    data = json.loads(run("docs", "check", tmp_path, "--format", "json").stdout)
    assert [len(g["members"]) for g in data["groups"]] == [4]


def test_info_file_reads_exif(tmp_path, lib):
    root, photos, idx = lib
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "EOS 5D"
    exif.get_ifd(0x8769)[0x9003] = "2019:07:14 10:30:00"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    shot = tmp_path / "shot.jpg"
    Image.open(DEMO / "bridge.jpg").save(shot, exif=exif)
    data = json.loads(run("info", shot, "--index", idx).stdout)
    assert data["indexed"] is False and data["date"] == "2019-07-14T10:30:00" and data["camera"] == "Canon EOS 5D"
    assert data["gps"] == [pytest.approx(48.858056, abs=1e-4), pytest.approx(2.294444, abs=1e-4)]
    data = json.loads(run("info", photos / "bridge.jpg", "--index", idx).stdout)
    assert data["indexed"] and data["status"] == "ok" and data["width"] > 0 and "phash8" in data["features"]


def test_ctrl_c_during_index_says_rerun_resumes(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    photos = tmp_path / "photos"
    photos.mkdir()
    for n, p in enumerate(sorted(DEMO.glob("*.jpg")) * 30):
        shutil.copy(p, photos / f"{n:03d}_{p.name}")
        with open(photos / f"{n:03d}_{p.name}", "ab") as f:
            f.write(bytes([n % 256]))  # no byte copies: every file decoded
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "lookalike.cli", "index", str(photos), "--index", str(tmp_path / "idx"),
                             "--workers", "2", "--hashes-only"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not _indexed_some(tmp_path / "idx" / "catalog.sqlite"):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)  # mid-run: some chunks written, most not
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err[-2000:])
    assert "Traceback" not in err and "run the same command again to resume" in err, err[-2000:]
    assert 0 < _indexed_some(tmp_path / "idx" / "catalog.sqlite") < 690  # resuming: test_index.py (kill -9)


def _indexed_some(db_path) -> int:
    import sqlite3

    if not db_path.exists():
        return 0
    try:
        with sqlite3.connect(db_path, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_inspect_writes_jpeg_without_warnings(tmp_path):
    out = tmp_path / "x.jpg"
    res = run("inspect", DEMO / "street_01.jpg", "-o", out)
    assert out.read_bytes()[:2] == b"\xff\xd8" and json.loads(res.stdout)["picture"] == str(out)
    assert "WARN" not in res.stderr and "XNNPACK" not in res.stderr, res.stderr

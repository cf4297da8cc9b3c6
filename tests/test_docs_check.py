"""`lookalike docs check` on the documents set: recall/precision against pairs.csv, every inventory
picture accounted for, bad documents reported but not fatal, the csv format of the CLI."""

import csv
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lookalike import docs as docs_module
from lookalike.cli import app  # `lookalike docs check` as users type it
from lookalike.docs import check_documents
from lookalike.imageio import decode_bytes, documents


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def docs_set(data_dir):
    root = data_dir / "documents"
    # Without the EMF/WMF converter (rendering is tested in test_documents.py): vector pictures
    # pair by identical bytes only, so the pairs are the same and the test is 40 s shorter.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(documents, "vector_converter", lambda: None)
        res = check_documents([root / "docs"])
    return root, res


def _rel(root: Path, doc: str) -> str:
    return Path(doc).relative_to(root).as_posix()


def test_recall_and_precision(docs_set):
    root, res = docs_set
    truth = {frozenset({(r["doc_a"], r["image_a"]), (r["doc_b"], r["image_b"])}) for r in _rows(root / "pairs.csv")}
    pred = {frozenset({(_rel(root, p.doc_a), p.image_a), (_rel(root, p.doc_b), p.image_b)}) for p in res.pairs}
    tp = len(pred & truth)
    # measured: precision 0.992, recall 1.000 at the default threshold (0.85)
    assert tp / len(truth) >= 0.98
    assert tp / len(pred) >= 0.98
    assert all(0.0 <= p.score <= 1.0 for p in res.pairs)


def test_identical_bytes_always_pair(docs_set):
    root, res = docs_set
    by_sha: dict[str, list] = {}
    for r in _rows(root / "inventory.csv"):
        by_sha.setdefault(r["sha256"], []).append((r["doc"], r["image"]))
    pred = {frozenset({(_rel(root, p.doc_a), p.image_a), (_rel(root, p.doc_b), p.image_b)}): p for p in res.pairs}
    n = 0
    for members in by_sha.values():
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                assert pred[frozenset({a, b})].score == 1.0
                n += 1
    assert n > 100


def test_every_inventory_picture_extracted_or_skipped(docs_set):
    root, res = docs_set
    assert not res.errors
    found = {(_rel(root, d.doc), p.image_id) for d in res.documents for p in d.pictures}
    skipped = {(_rel(root, doc), image) for doc, image, why in res.skipped if why}
    inventory = {(r["doc"], r["image"]) for r in _rows(root / "inventory.csv")}
    assert inventory <= found | skipped
    assert len(found) + len(skipped) == len(inventory)  # nothing extra (audio, video, OLE parts)
    assert all(image.lower().endswith((".emf", ".wmf", ".emz", ".wmz")) for _, image in skipped)
    docs = {_rel(root, d.doc) for d in res.documents}
    assert {r["doc"] for r in _rows(root / "inventory.csv")} <= docs


def _small_docx(root: Path) -> Path:
    """The smallest .docx of the set with raster pictures only (no converter needed)."""
    rows = _rows(root / "inventory.csv")
    vector = {r["doc"] for r in rows if r["image"].lower().endswith((".emf", ".wmf"))}
    docx = {r["doc"] for r in rows if r["doc"].endswith(".docx")} - vector
    return min((root / d for d in docx), key=lambda p: p.stat().st_size)


def test_bad_document_is_reported_not_fatal(data_dir, tmp_path, monkeypatch):
    # one document per chunk, every picture swapped for its preview: pairs across chunks still found
    monkeypatch.setattr(docs_module, "DOC_CHUNK", 1)
    monkeypatch.setattr(docs_module, "PREVIEW_BYTES", 0)
    good = _small_docx(data_dir / "documents")
    shutil.copy(good, tmp_path / "a.docx")
    shutil.copy(good, tmp_path / "b.docx")
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 this is not a real zip archive")
    (tmp_path / "empty.pdf").write_bytes(b"")
    res = check_documents([tmp_path])
    errors = dict((Path(d).name, why) for d, why in res.errors)
    assert set(errors) == {"broken.docx", "empty.pdf"}
    assert all(why and "\n" not in why for why in errors.values())
    across = [p for p in res.pairs if Path(p.doc_a).name != Path(p.doc_b).name]
    assert across and all(p.score == 1.0 for p in across)
    previews = [p for d in res.documents for p in d.pictures]
    assert previews and all(p.kind == "jpeg" and decode_bytes(p.data).width <= 256 for p in previews)


def test_cli_csv_and_reports(data_dir, tmp_path):
    good = _small_docx(data_dir / "documents")
    shutil.copy(good, tmp_path / "a.docx")
    shutil.copy(good, tmp_path / "b.docx")
    (tmp_path / "broken.docx").write_bytes(b"not a zip")
    runner = CliRunner()
    result = runner.invoke(app, ["docs", "check", str(tmp_path), "--format", "csv"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "doc_a,image_a,doc_b,image_b,score,method,location_a,location_b"
    rows = list(csv.DictReader(lines))
    assert rows and all(r["doc_a"].startswith(str(tmp_path)) for r in rows)
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in rows)
    assert "broken.docx" not in result.stdout
    out = tmp_path / "report.xlsx"
    result = runner.invoke(app, ["docs", "check", str(tmp_path), "-o", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    from openpyxl import load_workbook

    wb = load_workbook(out)
    assert wb.sheetnames == ["Pairs", "Documents"]
    page = tmp_path / "report.html"
    result = runner.invoke(app, ["docs", "check", str(tmp_path), "--format", "html", "-o", str(page)])
    assert result.exit_code == 0, result.output
    assert page.read_text().count("data:image/jpeg;base64") >= 2


DEMO_DOCS = Path(__file__).resolve().parents[1] / "demo" / "documents"


@pytest.mark.skipif(not DEMO_DOCS.is_dir(), reason="demo/documents not built (benchmarks/render_report.py)")
def test_demo_documents_copy_and_similar_modes():
    """The licence-clean demo documents: 5 photos copied across 4 documents (crop, flip, letterbox,
    greyscale thumbnail, phone screenshot, rotation + caption, identical bytes); two photos of the
    same places that are not copies (brochure.pdf p3-1, photo_log.xlsx image2) must stay unpaired."""
    runner = CliRunner()
    result = runner.invoke(app, ["docs", "check", str(DEMO_DOCS), "--mode", "copy", "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(result.stdout.splitlines()))
    assert len(rows) == 10 and sum(r["doc_a"] != r["doc_b"] for r in rows) == 9
    ids = {(Path(r[f"doc_{s}"]).name, r[f"image_{s}"]) for r in rows for s in "ab"}
    assert ("brochure.pdf", "p3-1") not in ids and ("photo_log.xlsx", "xl/media/image2.jpeg") not in ids
    assert {Path(d).name for d, _ in ids} == {"brochure.pdf", "photo_log.xlsx", "site_report.docx", "slides.pptx"}
    res = check_documents([DEMO_DOCS], mode="similar")
    assert res.mode == "similar" and res.threshold == 0.75 and len(res.pairs) >= 8
    pairs = {frozenset({(Path(p.doc_a).name, p.image_a), (Path(p.doc_b).name, p.image_b)}): p for p in res.pairs}
    same_place = frozenset({("brochure.pdf", "p3-1"), ("site_report.docx", "word/media/image1.jpg")})
    assert same_place in pairs  # the same street, another photograph: similar, not a copy
    identical = frozenset({("brochure.pdf", "p4-1"), ("site_report.docx", "word/media/image3.jpg")})
    assert pairs[identical].method == "sha256" and pairs[identical].score == 1.0

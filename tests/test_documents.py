"""Pictures out of Office/PDF documents (against the inventory), hostile files, and the Excel report."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import zipfile
from collections import defaultdict
from pathlib import Path

import openpyxl
import pytest
from PIL import Image

from lookalike.imageio import decode_bytes
from lookalike.imageio import documents as D
from lookalike.imageio.documents import vectors as V
from lookalike.imageio.documents.common import _no_converter_reason
from lookalike.imageio.documents import Limits, extract_pictures, iter_documents
from lookalike.reports.xlsx import write_xlsx_report

CT = b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'


def _png(color=(200, 30, 30), size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def _docx(path: Path, extra: dict[str, bytes] | None = None, document: bytes | None = None) -> Path:
    """A minimal .docx: one picture in paragraph 2, plus `extra` parts written as given."""
    rels = (b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>')
    doc_rels = (b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                b'<Relationship Id="rId5" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image" Target="media/image1.png"/></Relationships>')
    body = document or (
        b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
        b'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
        b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><w:body>'
        b'<w:p><w:r><w:t>hello</w:t></w:r></w:p><w:p><w:r><a:blip r:embed="rId5"/></w:r></w:p></w:body></w:document>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", CT)
        z.writestr("_rels/.rels", rels)
        z.writestr("word/_rels/document.xml.rels", doc_rels)
        z.writestr("word/document.xml", body)
        z.writestr("word/media/image1.png", _png())
        z.writestr("word/media/media1.mp3", b"ID3\x03\x00" + b"\x00" * 100)  # audio: not a picture
        for name, data in (extra or {}).items():
            info = zipfile.ZipInfo(name)  # keeps odd names ("../x") as given
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return path


# ---------------------------------------------------------------- real documents


@pytest.fixture(scope="module")
def extracted(data_dir):
    root = data_dir / "documents"
    results = {str(p.relative_to(root)): extract_pictures(p, convert=False) for p in iter_documents([root / "docs"])}
    inventory = defaultdict(dict)
    with open(root / "inventory.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            inventory[row["doc"]][row["image"]] = row["sha256"]
    return results, inventory


def test_inventory_ids_and_digests(extracted):
    results, inventory = extracted
    assert set(inventory) <= set(results)
    listed = sum(len(v) for v in inventory.values())
    found = matched = extra = 0
    for doc, res in results.items():
        assert res.error is None, (doc, res.error)
        ids = {p.image_id for p in res.pictures} | {s[0] for s in res.skipped}
        want = inventory.get(doc, {})
        found += len(ids & set(want))
        extra += len(ids - set(want))
        matched += sum(res.digests.get(i) == sha for i, sha in want.items())
    # measured on DEV: 351 of 351 found, 351 digests equal, 0 extra
    assert found == listed and matched == listed and extra == 0


def test_pictures_decode_and_skips_are_vector_only(extracted):
    results, _ = extracted
    n = 0
    for res in results.values():
        for pic in res.pictures:
            decode_bytes(pic.data)  # raises BadInput if not decodable
            assert pic.location and pic.sha256 == res.digests[pic.image_id]
            n += 1
        for image_id, reason in res.skipped:  # without conversion only EMF/WMF may be skipped
            assert image_id in res.vectors and "vector picture" in reason
    assert n >= 280  # measured: 291 raster pictures (+60 EMF/WMF)


def test_locations(extracted):
    results, _ = extracted
    kinds = defaultdict(set)
    for doc, res in results.items():
        for loc in res.locations.values():
            kinds[Path(doc).suffix].add(loc.split()[0].rstrip("0123456789!"))
    assert "paragraph" in kinds[".docx"] and "slide" in kinds[".pptx"] and "page" in kinds[".pdf"]
    assert any("!" in loc for r in results.values() for loc in r.locations.values())  # Sheet!B3 anchors
    assert any("header/footer" in loc for r in results.values() for loc in r.locations.values())


@pytest.mark.skipif(D.vector_converter() is None, reason="no EMF/WMF converter (LibreOffice) installed")
def test_vector_pictures_render(data_dir):
    docs = [p for p in iter_documents([data_dir / "documents" / "docs"]) if p.suffix != ".pdf"]
    res = next(r for r in (extract_pictures(p, convert=False) for p in docs) if r.vectors)
    first = next(iter(res.vectors))
    res.vectors = {first: res.vectors[first]}  # render one picture only: keeps the test short
    res.skipped = [s for s in res.skipped if s[0] == first]
    D.convert_vectors([res])
    pic = next(p for p in res.pictures if p.image_id == first)
    assert pic.kind == "png" and pic.source_kind in ("emf", "wmf") and not res.skipped
    assert decode_bytes(pic.data).width > 10


def test_vector_without_converter(tmp_path, monkeypatch):
    monkeypatch.setattr(V, "vector_converter", lambda: None)
    emf = b"\x01\x00\x00\x00" + b"\x00" * 36 + b" EMF" + b"\x00" * 60
    res = extract_pictures(_docx(tmp_path / "v.docx", {"word/media/image2.emf": emf}))
    assert ("word/media/image2.emf", _no_converter_reason("emf")) in res.skipped
    assert res.digests["word/media/image2.emf"] and res.vectors["word/media/image2.emf"] == emf


def test_pdf_page_limit(data_dir):
    pdf = next(p for p in iter_documents([data_dir / "documents" / "docs"])
               if p.suffix == ".pdf" and len({i.split("-")[0] for i in extract_pictures(p).digests}) > 1)
    res = extract_pictures(pdf, limits=Limits(max_pages=1))
    assert "page limit" in res.error and {i.split("-")[0] for i in res.digests} <= {"p1"}
    res = extract_pictures(pdf, limits=Limits(max_seconds=0))
    assert "time limit" in res.error and not res.pictures
    res = extract_pictures(pdf, limits=Limits(max_pixels=1))
    assert res.skipped and all("MP limit" in why for _, why in res.skipped)


# ---------------------------------------------------------------- hostile and broken files


def test_minimal_docx(tmp_path):
    res = extract_pictures(_docx(tmp_path / "ok.docx"))
    assert res.error is None and not res.skipped
    assert [(p.image_id, p.location, p.kind) for p in res.pictures] == [("word/media/image1.png", "paragraph 2", "png")]


def test_zip_bomb(tmp_path):
    res = extract_pictures(_docx(tmp_path / "bomb.docx", {"word/media/image9.png": b"\x00" * (20 * 2**20)}))
    assert res.error and "zip bomb" in res.error and not res.pictures
    res = extract_pictures(_docx(tmp_path / "ok.docx"), limits=Limits(max_total_bytes=1000))
    assert "zip bomb" in res.error
    res = extract_pictures(_docx(tmp_path / "ok.docx"), limits=Limits(max_members=3))
    assert "entries" in res.error


def test_path_tricks_are_ignored(tmp_path):
    names = ["../evil.png", "/abs/evil.png", "word\\media\\evil.png", "word/media/../../evil2.png"]
    res = extract_pictures(_docx(tmp_path / "trick.docx", {n: _png() for n in names}))
    assert res.error is None
    assert [p.image_id for p in res.pictures] == ["word/media/image1.png"]
    assert {s[0] for s in res.skipped} == set(names) and all("unsafe part name" in s[1] for s in res.skipped)
    assert not (tmp_path.parent / "evil.png").exists()


def test_encrypted_office_and_legacy(tmp_path):
    cfb = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500
    (tmp_path / "enc.docx").write_bytes(cfb + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 100)
    (tmp_path / "old.doc").write_bytes(cfb + b"\x00" * 100)
    assert "password" in extract_pictures(tmp_path / "enc.docx").error
    assert "legacy" in extract_pictures(tmp_path / "old.doc").error


def test_macro_enabled_variants_read_only(tmp_path):
    vba = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"Attribute VB_Name AutoOpen Shell" + b"\x00" * 200
    for name in ("m.docm", "t.dotm", "x.DOCM"):
        res = extract_pictures(_docx(tmp_path / name, {"word/vbaProject.bin": vba}))
        assert res.error is None and [p.image_id for p in res.pictures] == ["word/media/image1.png"]
        assert not res.skipped  # the macro project is not a picture: never listed, never run
    (tmp_path / "book.xlsm").write_bytes((tmp_path / "m.docm").read_bytes())
    assert {p.name for p in iter_documents([tmp_path])} == {"m.docm", "t.dotm", "x.DOCM", "book.xlsm"}


def test_legacy_named_file_with_other_content(tmp_path):
    (tmp_path / "letter.doc").write_bytes(b"{\\rtf1\\ansi hello}")
    assert "legacy" in extract_pictures(tmp_path / "letter.doc").error
    (tmp_path / "real_docx.doc").write_bytes(_docx(tmp_path / "x.docx").read_bytes())  # renamed: read by content
    assert [p.image_id for p in extract_pictures(tmp_path / "real_docx.doc").pictures] == ["word/media/image1.png"]


def test_convert_vectors_renders_each_picture_once_in_batches(tmp_path, monkeypatch):
    emf = b"\x01\x00\x00\x00" + b"\x00" * 36 + b" EMF" + b"\x00" * 60
    calls = []

    def fake_converter(program, inputs, out_dir, tmp, timeout):
        calls.append(len(inputs))
        for src in inputs:
            Image.new("RGB", (30, 20), (0, 0, 200)).save(out_dir / f"{src.stem}.png")

    monkeypatch.setattr(V, "vector_converter", lambda: "soffice")
    monkeypatch.setattr(V, "_run_converter", fake_converter)
    monkeypatch.setattr(V, "VECTOR_BATCH", 2)
    parts = {f"word/media/image{i}.emf": emf + bytes([i % 3]) for i in range(2, 8)}  # 3 distinct pictures
    results = [extract_pictures(_docx(tmp_path / f"{n}.docx", parts), convert=False) for n in range(3)]
    D.convert_vectors(results)
    assert calls == [2, 1]  # 3 distinct pictures out of 18, in batches of 2
    for r in results:
        assert not r.skipped and sorted(p.source_kind for p in r.pictures) == ["emf"] * 6 + ["png"]


def test_encrypted_pdf(tmp_path):
    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(100, 100)
    w.encrypt("secret", algorithm="RC4-128")
    with open(tmp_path / "enc.pdf", "wb") as f:
        w.write(f)
    assert "password" in extract_pictures(tmp_path / "enc.pdf").error


def test_truncated_and_fake_files(tmp_path):
    data = _docx(tmp_path / "ok.docx").read_bytes()
    (tmp_path / "cut.docx").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.docx").write_bytes(b"just some text, not a document\n" * 10)
    (tmp_path / "empty.xlsx").write_bytes(b"")
    (tmp_path / "photo.pptx").write_bytes(_png())
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4\n garbage garbage")
    for name, words in [("cut.docx", "damaged"), ("text.docx", "not an Office"), ("empty.xlsx", "empty"),
                        ("photo.pptx", "PNG image"), ("bad.pdf", "")]:
        res = extract_pictures(tmp_path / name)
        assert res.error and words in res.error and not res.pictures, (name, res.error)
        assert "\n" not in res.error


def test_billion_laughs(tmp_path):
    lol = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
           b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
           b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
           b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">&lol3;</w:document>')
    res = extract_pictures(_docx(tmp_path / "lol.docx", document=lol))
    assert res.error and "billion-laughs" in res.error


def test_malformed_xml_keeps_pictures(tmp_path):
    res = extract_pictures(_docx(tmp_path / "m.docx", document=b"<w:document><w:body><w:p>"))
    assert res.error is None and [p.image_id for p in res.pictures] == ["word/media/image1.png"]


def test_iter_documents_no_symlink_loop(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    _docx(tmp_path / "a" / "b" / "x.DOCX")
    (tmp_path / "a" / "notes.txt").write_text("x")
    (tmp_path / "a" / "old.ppt").write_bytes(b"x")
    (tmp_path / "a" / "b" / "loop").symlink_to(tmp_path / "a")
    found = [p.name for p in iter_documents([tmp_path, tmp_path / "a" / "b" / "x.DOCX"])]
    assert sorted(found) == ["old.ppt", "x.DOCX"]
    assert [p.name for p in iter_documents([tmp_path], include_legacy=False)] == ["x.DOCX"]


# ---------------------------------------------------------------- Excel report


def test_xlsx_report(tmp_path):
    a = _docx(tmp_path / "a.docx")
    ra, rb = extract_pictures(a), extract_pictures(_docx(tmp_path / "b.docx"))
    pictures = {(str(r.doc), p.image_id): p for r in (ra, rb) for p in r.pictures}
    pictures[(str(rb.doc), "word/media/gone.png")] = b"not an image"
    pairs = [
        {"doc_a": str(ra.doc), "image_a": "word/media/image1.png", "doc_b": str(rb.doc),
         "image_b": "word/media/image1.png", "score": 1.0, "method": "sha256"},
        {"doc_a": str(rb.doc), "image_a": "word/media/image1.png", "doc_b": str(rb.doc),
         "image_b": "word/media/gone.png", "score": 0.875, "method": "cnn"},
    ]
    out = tmp_path / "report.xlsx"
    write_xlsx_report(out, pairs, pictures, title="test report", documents=[ra, rb])
    wb = openpyxl.load_workbook(out)
    ws = wb["Pairs"]
    assert ws["A1"].value == "test report"
    assert [c.value for c in ws[4]][3:7] == [1.0, "sha256", str(ra.doc), "word/media/image1.png"]
    assert ws["D4"].number_format == "0.0%" and ws["H4"].value == "paragraph 2"
    assert len(ws._images) == 3 and ws["C5"].value == "(no preview)"  # the undecodable one has none
    docs = {r[0].value: [c.value for c in r] for r in wb["Documents"].iter_rows(min_row=2)}
    assert docs[str(ra.doc)][1:5] == [1, 0, 0, 1] and docs[str(rb.doc)][1:5] == [1, 0, 1, 1]


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice not installed")
def test_xlsx_report_opens_in_libreoffice(tmp_path):
    ra = extract_pictures(_docx(tmp_path / "a.docx"))
    pictures = {(str(ra.doc), p.image_id): p for p in ra.pictures}
    pairs = [{"doc_a": str(ra.doc), "image_a": "word/media/image1.png", "doc_b": str(ra.doc),
              "image_b": "word/media/image1.png", "score": 0.5}]
    write_xlsx_report(tmp_path / "r.xlsx", pairs, pictures)
    subprocess.run(["soffice", f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}", "--headless",
                    "--convert-to", "csv", "--outdir", str(tmp_path / "out"), str(tmp_path / "r.xlsx")],
                   capture_output=True, timeout=120, check=False)
    text = (tmp_path / "out" / "r.csv").read_text(errors="replace")
    assert "word/media/image1.png" in text and re.search(r"\b50(\.0)?%", text)

"""Screenshot of the `docs check` Excel report for the README, made from licence-clean input only.

    python benchmarks/render_report.py [--docs demo/documents] [--rebuild] [--out docs/images]

1. Builds a small folder of documents (a .docx, a .pptx, an .xlsx and a .pdf) from the demo/
   photos (permissive licences, see demo/LICENSES.md) unless it already exists (--rebuild to redo
   it). They share pictures on purpose: the same file in two documents (identical bytes), edited
   copies (crop, flip, letterbox, greyscale thumbnail, phone screenshot, rotation + caption)
   and photos of the same place that are not copies.
2. Runs `lookalike docs check DOCS -o report.xlsx` on a copy of that folder, plus a truncated .pptx
   and a legacy .doc made on the fly (to show how unreadable documents are reported).
3. Converts the workbook to PDF with LibreOffice (``soffice --headless``) and renders its pages to
   PNG with pypdfium2: docs/images/docs-report.png (the Pairs sheet) and
   docs/images/docs-report-documents.png (the per-document summary sheet). It also checks that
   openpyxl and LibreOffice both read the workbook.

Building the documents needs python-docx and python-pptx (script only, not the package);
rendering needs LibreOffice and pypdfium2.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demo"
SIDE = 360  # px: keeps the committed documents small (< 1 MB in all)

# Which demo photos go into which document. Copies of one original are spread across documents;
# bridge.jpg is in the .docx and, byte for byte, in the .pdf.
DOCX = ["street_a.jpg", "cathedral.jpg", "bridge.jpg", "street_27.jpg"]
PPTX = ["street_a_crop.jpg", "coffee.jpg", "bridge_flipped.jpg", "chelsea.jpg"]
XLSX = ["chelsea_gray_small.jpg", "cathedral_other_view.jpg", "coffee_phone_screenshot.jpg", "rocket.jpg"]
PDF = ["cathedral_rot90_caption.jpg", "bridge_letterbox.jpg", "street_01.jpg", "bridge.jpg"]


def _jpeg(name: str) -> bytes:
    """The demo photo, downscaled to SIDE px and re-encoded (same bytes every time it is used)."""
    im = Image.open(DEMO / name).convert("RGB")
    im.thumbnail((SIDE, SIDE))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=82, optimize=True)
    return buf.getvalue()


def _caption(name: str) -> str:
    return name.rsplit(".", 1)[0].replace("_", " ")


def build_documents(out: Path) -> list[Path]:
    """Write site_report.docx, slides.pptx, photo_log.xlsx and brochure.pdf into `out`."""
    from docx import Document
    from docx.shared import Cm
    from openpyxl import Workbook
    from openpyxl.drawing.image import Image as XLImage
    from pptx import Presentation
    from pptx.util import Cm as PCm
    from pptx.util import Pt

    out.mkdir(parents=True, exist_ok=True)
    docx = Document()
    docx.add_heading("Site report", level=1)
    for name in DOCX:
        docx.add_paragraph(f"Photo: {_caption(name)}")
        docx.add_picture(io.BytesIO(_jpeg(name)), width=Cm(8))
    docx.save(out / "site_report.docx")

    prs = Presentation()
    for name in PPTX:
        slide = prs.slides.add_slide(prs.slide_layouts[5])  # title only
        slide.shapes.title.text = _caption(name)
        slide.shapes.title.text_frame.paragraphs[0].runs[0].font.size = Pt(28)
        slide.shapes.add_picture(io.BytesIO(_jpeg(name)), PCm(6), PCm(5), height=PCm(12))
    prs.save(out / "slides.pptx")

    wb = Workbook()
    ws = wb.active
    ws.title = "Photo log"
    ws.append(["photo", "picture"])
    ws.column_dimensions["B"].width = 30
    for row, name in enumerate(XLSX, 2):
        ws.cell(row=row, column=1, value=_caption(name))
        ws.row_dimensions[row].height = 120
        img = XLImage(io.BytesIO(_jpeg(name)))
        img.width, img.height = img.width // 2, img.height // 2
        img.anchor = f"B{row}"
        ws.add_image(img)
    wb.save(out / "photo_log.xlsx")

    _pdf(out / "brochure.pdf", [_jpeg(n) for n in PDF])
    return [out / n for n in ("site_report.docx", "slides.pptx", "photo_log.xlsx", "brochure.pdf")]


def _pdf(path: Path, jpegs: list[bytes]) -> None:
    """One A4 page per picture, the JPEG embedded as is (/DCTDecode), with pdfium."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    for data in jpegs:
        w, h = Image.open(io.BytesIO(data)).size
        page = pdf.new_page(595, 842)
        img = pdfium.PdfImage.new(pdf)
        img.load_jpeg(io.BytesIO(data), inline=False)
        scale = 400 / max(w, h)
        img.set_matrix(pdfium.PdfMatrix().scale(w * scale, h * scale).translate(100, 350))
        page.insert_obj(img)
        page.gen_content()
    pdf.save(str(path))


def _add_bad_documents(folder: Path) -> None:
    """Two documents that cannot be read, to show how the report lists them (never committed)."""
    pptx = next(folder.glob("*.pptx"), None)
    if pptx is not None:
        data = pptx.read_bytes()
        (folder / "damaged_download.pptx").write_bytes(data[: len(data) // 3])
    # an OLE compound file header: what a legacy binary .doc starts with
    (folder / "old_minutes.doc").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1024))


def _soffice(src: Path, fmt: str, outdir: Path, profile: Path) -> Path:
    """Convert with LibreOffice in a private profile (so it runs beside a desktop instance)."""
    cmd = ["soffice", f"-env:UserInstallation={profile.as_uri()}", "--headless", "--convert-to", fmt,
           "--outdir", str(outdir), str(src)]
    subprocess.run(cmd, capture_output=True, timeout=300, check=False)
    out = outdir / f"{src.stem}.{fmt.split(':')[0]}"
    if not out.exists():
        sys.exit(f"LibreOffice did not convert {src} to {fmt}: install libreoffice-calc (make system)")
    return out


def render(report: Path, out_dir: Path, work: Path) -> list[Path]:
    """The report's pages as PNGs: the first page of each sheet."""
    import pypdfium2 as pdfium
    from openpyxl import load_workbook

    wb = load_workbook(report)  # openpyxl reads it back
    pairs = wb["Pairs"].max_row - 3
    profile = work / "profile"
    text = _soffice(report, "csv", work, profile).read_text(errors="replace")  # LibreOffice reads it back
    if pairs > 0 and "%" not in text:
        sys.exit("LibreOffice read the report but shows no percentage scores")
    pdf = pdfium.PdfDocument(str(_soffice(report, "pdf", work, profile)))
    out_dir.mkdir(parents=True, exist_ok=True)
    # Sheets are printed in order, each one page wide: page 1 is the top of the Pairs sheet; the
    # Documents sheet of a small run (a few rows) is the last page.
    names = ["docs-report.png", "docs-report-documents.png"]
    pages = [0, len(pdf) - 1] if len(pdf) > 1 else [0]
    written = []
    for name, index in zip(names, pages):
        bitmap = pdf[index].render(scale=2.2)
        im = _trim(bitmap.to_pil().convert("RGB"))
        path = out_dir / name
        im.save(path, optimize=True)
        written.append(path)
    print(f"openpyxl: {pairs} pairs; LibreOffice: {len(pdf)} PDF pages")
    return written


def _trim(im: Image.Image, margin: int = 12) -> Image.Image:
    """Cut the white page margins off."""
    from PIL import ImageChops, ImageOps

    box = ImageChops.difference(im, Image.new("RGB", im.size, "white")).getbbox()
    if box:
        im = im.crop(box)
    return ImageOps.expand(im, margin, fill="white")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=Path, default=DEMO / "documents")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the documents even if the folder exists")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    args = ap.parse_args()
    if args.rebuild or not any(args.docs.glob("*.*x")):
        for p in build_documents(args.docs):
            print(f"wrote {p.relative_to(REPO) if p.is_relative_to(REPO) else p} ({p.stat().st_size // 1024} KB)")
    if shutil.which("soffice") is None:
        sys.exit("LibreOffice (soffice) is needed to render the report: make system")
    with tempfile.TemporaryDirectory(prefix="lookalike-render-") as tmp:
        work = Path(tmp)
        report = work / "report.xlsx"
        lk = [sys.executable, "-m", "lookalike.cli"]
        docs = work / "documents"
        shutil.copytree(args.docs, docs)
        _add_bad_documents(docs)
        # run beside the folder so the report shows short names: documents/slides.pptx
        subprocess.run(lk + ["docs", "check", docs.name, "-o", str(report)], check=True, cwd=work)
        for p in render(report, args.out, work):
            print(f"wrote {p}")


if __name__ == "__main__":
    main()

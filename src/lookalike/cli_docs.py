"""`lookalike docs check`: copied pictures within and across Word/Excel/PowerPoint/PDF documents.

Mounted by the main CLI as `lookalike docs` (``app.add_typer(docs_app, name="docs")``).
"""

from __future__ import annotations

import csv
import html
import json
import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from lookalike.docs import DOCS_THRESHOLDS, DocsCheckResult, check_documents
from lookalike.progress import bars, console
from lookalike.search.modes import get_mode

docs_app = typer.Typer(help="Pictures copied within and across Office/PDF documents.", no_args_is_help=True,
                       add_completion=False)


class DocFmt(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    html = "html"


_THRESHOLD_HELP = (
    "Minimum score of a reported pair. The score is the similarity of two pictures in [0, 1] "
    "(shown as a percentage in reports): 1.0 = identical bytes or pixels; in copy mode about 0.8 = "
    "the perceptual-hash distance at which copies start to be missed. Higher = fewer, surer pairs. "
    f"Default: {DOCS_THRESHOLDS.get('copy')} in copy mode (precision and recall both >= 0.95 on the "
    "documents test set), the mode's own default otherwise."
)


@docs_app.command("check")
def check(paths: List[Path] = typer.Argument(..., help="Documents (.docx .xlsx .pptx .pdf) and folders to check."),
          threshold: Optional[float] = typer.Option(None, "--threshold", min=0.0, max=1.0, help=_THRESHOLD_HELP),
          mode: str = typer.Option("copy", "--mode", help="copy: the same picture, re-encoded, resized, recoloured, "
                                   "rotated or mirrored | similar: the same scene or object | exact: identical pixels."),
          out: Optional[Path] = typer.Option(None, "-o", "--output",
                                             help="Write the report here: .xlsx (Excel, with thumbnails) or, "
                                                  "with --format html, an HTML page."),
          fmt: DocFmt = typer.Option(DocFmt.table, "--format", help="What to print: table | csv | json | html (needs -o)."),
          index: Optional[Path] = typer.Option(None, "--index",
                                               help="Keep the picture index here (re-runs skip unchanged pictures); "
                                                    "default: a temporary one.")):
    """Find pictures that appear more than once within and across documents.

    Pictures are taken from the media parts of .docx/.xlsx/.pptx (image = the part name, e.g.
    word/media/image3.jpeg) and from the image objects of PDF pages (image = p{page}-{n}).
    Documents that cannot be read are reported on stderr and never stop the run.
    """
    from lookalike.cli_common import check_out, fail, say_error

    if fmt == DocFmt.html and not out:
        fail("--format html needs -o FILE.html")
    if out and fmt != DocFmt.html and out.suffix.lower() != ".xlsx":
        fail(f"-o {out}: the report is an Excel file, name it .xlsx (or use --format html)")
    check_out(out)
    try:
        get_mode(mode)
    except ValueError as e:
        fail(str(e))
    missing = [p for p in paths if not p.exists()]
    if len(missing) == len(paths):
        fail(f"{', '.join(map(str, missing))}: no such file or folder")
    with bars() as b:
        res = check_documents([str(p) for p in paths if p.exists()], mode=mode, threshold=threshold, index_dir=index,
                              progress=b)
    groups = picture_groups(res)
    if fmt == DocFmt.csv:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(["doc_a", "image_a", "doc_b", "image_b", "score", "method", "location_a", "location_b"])
        w.writerows((p.doc_a, p.image_a, p.doc_b, p.image_b, f"{p.score:.4f}", p.method, p.location_a, p.location_b)
                    for p in res.pairs)
    elif fmt == DocFmt.json:
        print(json.dumps(dict(res.to_dict(), groups=groups), indent=1))
    elif fmt == DocFmt.html:
        Path(out).write_text(docs_html(res), encoding="utf-8")
        console.print(f"wrote {out}")
    else:
        for n, g in enumerate(groups, 1):  # one picture used in 9 places is one group, not 36 pairs
            print(f"group {n}: {len(g['members'])} places, best score {g['score']:.1%}")
            for m in g["members"]:
                print(f"  {m['doc']} [{m['image']}]" + (f" - {m['location']}" if m["location"] else ""))
    if out and fmt != DocFmt.html:
        from lookalike.reports.xlsx import write_xlsx_report

        write_xlsx_report(out, res.pairs, res.pictures, documents=res.documents)
        console.print(f"wrote {out}")
    _summary(res, groups)
    loose = loose_images(paths)
    if loose:
        console.print(f"  {loose} image files next to the documents were not checked (only pictures inside documents "
                      "are): `lookalike index` and `lookalike dedup` compare image files", highlight=False)
    for p in missing:
        say_error(f"{p}: no such file or folder")
    if missing:
        raise typer.Exit(1)


IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".heif", ".avif"}


def loose_images(paths: List[Path]) -> int:
    """Image files under the given folders (docs check looks only inside documents)."""
    import os

    n = 0
    for p in paths:
        if p.is_dir():
            for _, _, files in os.walk(p):
                n += sum(Path(f).suffix.lower() in IMAGE_EXTENSIONS for f in files)
    return n


def picture_groups(res: DocsCheckResult) -> list[dict]:
    """Pictures linked by pairs, as groups (largest first): [{members: [{doc, image, location}], score}]."""
    parent: dict = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    loc, best = {}, {}
    for p in res.pairs:
        a, b = (p.doc_a, p.image_a), (p.doc_b, p.image_b)
        loc[a], loc[b] = p.location_a, p.location_b
        parent[find(a)] = find(b)
    for p in res.pairs:
        r = find((p.doc_a, p.image_a))
        best[r] = max(best.get(r, 0.0), p.score)
    groups: dict = {}
    for x in parent:
        groups.setdefault(find(x), []).append(x)
    out = [{"members": [{"doc": d, "image": i, "location": loc.get((d, i), "")} for d, i in sorted(g)],
            "score": round(best.get(r, 0.0), 4)} for r, g in groups.items()]
    return sorted(out, key=lambda g: (-len(g["members"]), g["members"][0]["doc"], g["members"][0]["image"]))


def _summary(res: DocsCheckResult, groups: list[dict]) -> None:
    """Counts, then errors and skipped pictures, on stderr (stdout stays machine-readable)."""
    pics = sum(len(d.pictures) for d in res.documents)
    across = sum(p.doc_a != p.doc_b for p in res.pairs)
    console.print(f"{len(res.documents)} documents, {pics} pictures compared, {len(res.skipped)} skipped, "
                  f"{len(res.errors)} with errors; {len(groups)} groups of copied pictures, {len(res.pairs)} pairs "
                  f"({across} across documents) at score >= {res.threshold:.0%} ({res.mode} mode)", highlight=False)
    for doc, reason in res.errors[:20]:
        console.print(f"  [red]error[/] {doc}: {reason}", highlight=False)
    if len(res.errors) > 20:
        console.print(f"  ... and {len(res.errors) - 20} more documents with errors (--format json lists all)")
    for doc, image, reason in res.skipped[:20]:
        console.print(f"  [yellow]skipped[/] {doc} [{image}]: {reason}", highlight=False)
    if len(res.skipped) > 20:
        console.print(f"  ... and {len(res.skipped) - 20} more skipped pictures (--format json lists all)")


def docs_html(res: DocsCheckResult, *, limit: int = 2000) -> str:
    """A self-contained page: one row per pair with both thumbnails."""
    from lookalike.reports.html import page
    from lookalike.reports.thumbs import data_uri

    pictures = res.pictures
    thumbs: dict[tuple[str, str], str | None] = {}

    def img(doc: str, image: str) -> str:
        key = (doc, image)
        if key not in thumbs:
            pic = pictures.get(key)
            thumbs[key] = data_uri(pic.data) if pic is not None else None
        uri = thumbs[key]
        return f'<img src="{uri}" alt="">' if uri else '<span class="muted">(no preview)</span>'

    def cell(doc: str, image: str, loc: str) -> str:
        where = f" - {html.escape(loc)}" if loc else ""
        return f"<td>{img(doc, image)}<br>{html.escape(doc)}<br><span class='muted'>{html.escape(image)}{where}</span></td>"

    rows = [f"<tr>{cell(p.doc_a, p.image_a, p.location_a)}{cell(p.doc_b, p.image_b, p.location_b)}"
            f"<td class='score'>{p.score:.1%}</td><td>{html.escape(p.method)}</td></tr>" for p in res.pairs[:limit]]
    parts = [f"<p>{len(res.documents)} documents, {len(res.pairs)} pairs at score &ge; {res.threshold:.0%} "
             f"({html.escape(res.mode)} mode). Score: similarity of the two pictures (100 % = identical).</p>"]
    if len(res.pairs) > limit:
        parts.append(f"<p class='muted'>first {limit} of {len(res.pairs)} pairs</p>")
    if rows:
        parts.append("<table><tr><th>picture A</th><th>picture B</th><th>score</th><th>why</th></tr>" + "".join(rows) + "</table>")
    else:
        parts.append("<p>No copied pictures found.</p>")
    if res.errors:
        items = "".join(f"<li>{html.escape(d)}: {html.escape(r)}</li>" for d, r in res.errors)
        parts.append(f"<h2>Documents with errors</h2><ul>{items}</ul>")
    return page("lookalike: pictures that look alike in documents", "".join(parts))

"""Self-contained HTML reports (thumbnails inlined), for pairs, groups and clusters."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Iterable

from lookalike.reports.thumbs import data_uri

CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px} h2{font-size:16px;margin-top:28px}
.grid{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;width:172px;font-size:11px;word-break:break-all}
figure img{max-width:160px;max-height:160px;border:1px solid #ccc;display:block}
table{border-collapse:collapse} td,th{border-bottom:1px solid #eee;padding:6px;text-align:left;font-size:12px;vertical-align:top}
td img{max-width:140px;max-height:140px}
.score{font-weight:bold;font-size:14px}
.muted{color:#777}
.pager{position:sticky;top:0;background:#fff;padding:6px 0}
"""


def _img(path: str, thumbs: dict[tuple, str | None], box: tuple | None = None, *, side: int = 160) -> str:
    """A thumbnail <img> (memoised in `thumbs`); box: crop to it first (a face, see thumbs.py)."""
    if (path, box) not in thumbs:
        thumbs[path, box] = data_uri(path, side, box=box)
    uri = thumbs[path, box]
    return f'<img src="{uri}" alt="">' if uri else '<span class="muted">(no preview)</span>'


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")


def groups_html(title: str, groups: Iterable[tuple[str, list[str]]], *, note: str = "") -> str:
    """One gallery per group: [(group label, [paths])]."""
    thumbs: dict[str, str | None] = {}
    parts = [f"<p class='muted'>{html.escape(note)}</p>"] if note else []
    for label, paths in groups:
        figs = "".join(f"<figure>{_img(p, thumbs)}<figcaption>{html.escape(p)}</figcaption></figure>" for p in paths)
        parts.append(f"<h2>{html.escape(label)} <span class='muted'>({len(paths)})</span></h2><div class='grid'>{figs}</div>")
    return page(title, "".join(parts))


PAGER = """
<p class='pager'><button onclick='go(-1)'>&larr; previous</button> page <b id='pg'></b> of {pages}
<button onclick='go(1)'>next &rarr;</button> <input id='q' placeholder='filter by path' oninput='filter()'></p>
<script>
let at=0; const pages=[...document.querySelectorAll('section.page')];
function show(){{pages.forEach((p,i)=>p.style.display=i===at?'':'none');document.getElementById('pg').textContent=at+1;}}
function go(d){{at=Math.max(0,Math.min(pages.length-1,at+d));show();}}
function filter(){{const q=document.getElementById('q').value.toLowerCase();
 document.querySelectorAll('.group').forEach(g=>g.style.display=!q||g.dataset.paths.includes(q)?'':'none');
 pages.forEach(p=>p.style.display=q?'':'none'); if(!q) show();}}
show();
</script>"""


def dedup_html(title: str, result, *, per_page: int = 50, side: int = 128) -> str:
    """Duplicate groups (DedupResult), largest first: each member's thumbnail once (the suggested
    keeper marked), the group's pairs as text; `per_page` groups a page, a filter box."""
    thumbs: dict[tuple, str | None] = {}
    pages = []
    for start in range(0, len(result.groups), per_page):
        parts = []
        for g in result.groups[start : start + per_page]:
            figs = "".join(
                f"<figure>{_img(m, thumbs, side=side)}<figcaption>{'<b>keep</b> ' if m == g.keeper else ''}"
                f"{html.escape(m)}</figcaption></figure>" for m in g.members)
            rows = "".join(f"<tr><td>{html.escape(p.a)}</td><td>{html.escape(p.b)}</td><td class='score'>{p.score:.3f}</td>"
                           f"<td>{html.escape(p.method)}</td></tr>" for p in g.pairs)
            paths = html.escape(" ".join(g.members).lower(), quote=True)
            decided = " <span class='muted'>decided</span>" if g.decided else ""
            parts.append(f"<div class='group' data-paths=\"{paths}\"><h2>Group {g.id} <span class='muted'>"
                         f"({len(g)} images, {len(g.pairs)} pairs)</span>{decided}</h2><div class='grid'>{figs}</div>"
                         f"<details><summary>pairs</summary><table><tr><th>a</th><th>b</th><th>score</th><th>why</th></tr>"
                         f"{rows}</table></details></div>")
        pages.append(f"<section class='page'>{''.join(parts)}</section>")
    head = (f"<p>{len(result.groups)} groups, {len(result.pairs)} pairs, "
            f"{sum(len(g) for g in result.groups)} images at score &ge; {result.threshold} ({html.escape(result.mode)} mode).</p>")
    if not pages:
        return page(title, head + "<p>Nothing alike found.</p>")
    return page(title, head + "".join(pages) + (PAGER.format(pages=len(pages)) if len(pages) > 1 else ""))


def table_html(title: str, columns: list[str], rows: list, *, image_column: int | None = None,
               images: list[str] | None = None) -> str:
    """A plain table page; image_column: that column holds paths, shown with a thumbnail; images:
    thumbnails above the table."""
    thumbs: dict[tuple, str | None] = {}
    top = "".join(f"<figure>{_img(p, thumbs)}<figcaption>{html.escape(p)}</figcaption></figure>" for p in images or [])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(
        f"<td>{_img(str(v), thumbs) + '<br>' if n == image_column else ''}{html.escape(str(v))}</td>"
        for n, v in enumerate(r)) + "</tr>" for r in rows)
    return page(title, (f"<div class='grid'>{top}</div>" if top else "") + f"<table><tr>{head}</tr>{body}</table>")


def search_html(title: str, results: list) -> str:
    thumbs: dict[str, str | None] = {}
    parts = []
    for r in results:
        figs = "".join(
            f"<figure>{_img(m.path, thumbs)}<figcaption><b>{m.score:.3f}</b> {html.escape(m.method)}<br>{html.escape(m.path)}</figcaption></figure>"
            for m in r.results)
        err = f"<p class='muted'>{html.escape(r.error)}</p>" if r.error else ""
        parts.append(f"<h2>{html.escape(r.query)}</h2><div class='grid'><figure>{_img(r.query, thumbs)}<figcaption>query</figcaption></figure>{figs}</div>{err}")
    return page(title, "".join(parts))


def write(path: str | Path, text: str) -> None:
    Path(path).write_text(text, encoding="utf-8")

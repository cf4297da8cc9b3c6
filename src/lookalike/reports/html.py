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
"""


def _img(path: str, thumbs: dict[tuple, str | None], box: tuple | None = None) -> str:
    """A thumbnail <img> (memoised in `thumbs`); box: crop to it first (a face, see thumbs.py)."""
    if (path, box) not in thumbs:
        thumbs[path, box] = data_uri(path, box=box)
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


def pairs_html(title: str, pairs: list, groups: list[list[str]] | None = None, *, limit: int = 2000) -> str:
    thumbs: dict[str, str | None] = {}
    parts = []
    if groups:
        parts.append(f"<p>{len(groups)} groups, {len(pairs)} pairs.</p>")
        for n, g in enumerate(groups, 1):
            figs = "".join(f"<figure>{_img(p, thumbs)}<figcaption>{html.escape(p)}</figcaption></figure>" for p in g)
            parts.append(f"<h2>Group {n} <span class='muted'>({len(g)} images)</span></h2><div class='grid'>{figs}</div>")
    rows = []
    for p in pairs[:limit]:
        extra = ", ".join(f"{k}={v}" for k, v in p.details.items())
        rows.append(f"<tr><td>{_img(p.a, thumbs)}<br>{html.escape(p.a)}</td><td>{_img(p.b, thumbs)}<br>{html.escape(p.b)}</td>"
                    f"<td class='score'>{p.score:.3f}</td><td>{html.escape(p.method)}<br><span class='muted'>{html.escape(extra)}</span></td></tr>")
    if rows:
        more = f"<p class='muted'>first {limit} of {len(pairs)} pairs</p>" if len(pairs) > limit else ""
        parts.append("<h2>Pairs</h2>" + more + "<table><tr><th>a</th><th>b</th><th>score</th><th>why</th></tr>" + "".join(rows) + "</table>")
    return page(title, "".join(parts) or "<p>Nothing alike found.</p>")


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

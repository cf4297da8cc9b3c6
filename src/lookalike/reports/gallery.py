"""Cluster gallery: one self-contained HTML page, a thumbnail grid per cluster (representative first)."""

from __future__ import annotations

import html

from lookalike.reports.html import _img, page


def cluster_gallery_html(result, *, title: str | None = None, max_members: int = 60, min_size: int = 1,
                         names: dict[int, str] | None = None) -> str:
    """Gallery of a ClusterResult (cluster/engine.py): clusters largest first, each member captioned with
    its path (face index for faces) and confidence; at most `max_members` thumbnails per cluster.
    Clusters below `min_size` (2: no singletons) are counted, not shown."""
    names = names or {}
    thumbs: dict[tuple, str | None] = {}
    boxes = result.boxes  # faces: the face crop; otherwise the whole picture

    shown = [c for c in result.clusters if c.size >= min_size]
    parts = [f"<p class='muted'>{len(result.clusters)} clusters by {html.escape(result.by)}, threshold "
             f"{result.threshold}, refiner {html.escape(result.refiner)}; {len(shown)} shown "
             f"(size >= {min_size}).</p>"]
    for c in shown:
        figs = []
        for n, ((path, face), conf) in enumerate(zip(c.members[:max_members], c.confidence[:max_members])):
            what = "representative" if n == 0 else f"confidence {conf:.2f}"
            face_txt = f" face {face}" if result.by == "face" else ""
            figs.append(f"<figure>{_img(path, thumbs, boxes.get((path, face)))}<figcaption><b>{what}</b>{face_txt}<br>{html.escape(path)}"
                        "</figcaption></figure>")
        more = f"<p class='muted'>{c.size - max_members} more not shown</p>" if c.size > max_members else ""
        label = f"Cluster {c.id}" + (f": {names[c.id]}" if c.id in names else "")
        parts.append(f"<h2>{html.escape(label)} <span class='muted'>({c.size})</span></h2>"
                     f"<div class='grid'>{''.join(figs)}</div>{more}")
    return page(title or f"Clusters by {result.by}", "".join(parts))

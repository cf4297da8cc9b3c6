"""Cases for the analyst: summaries, one case's detail (JSON-ready) and its self-contained HTML page.

The page shows the members' photos side by side with the person masked (grey), what links each pair
(shared background with its matched background keypoints drawn, device id / MAC / IP / subnet, GPS
distance, time apart, the wall text read and where), a timeline and each member's risk.
"""

from __future__ import annotations

import base64
import html
import json
from datetime import datetime, timezone

import cv2
import numpy as np

from lookalike.errors import BadInput
from lookalike.risk.signals import Params, device_strength

THUMB = 240


def _members(eng, case_id: int) -> list:
    eng.store.db.row_factory = None
    seqs = [s for s, in eng.store.db.execute("SELECT seq FROM scores WHERE case_id=?", (case_id,))]
    if not seqs:
        raise BadInput(f"no case {case_id}")
    return seqs


def case_summaries(eng) -> list[dict]:
    rows = eng.store.db.execute(
        "SELECT s.case_id, COUNT(*), MAX(s.risk), MIN(a.submitted_at), MAX(a.submitted_at), "
        "COUNT(DISTINCT a.applicant_id) FROM scores s JOIN applications a ON a.seq=s.seq "
        "WHERE s.case_id IS NOT NULL GROUP BY s.case_id ORDER BY MAX(s.risk) DESC, s.case_id").fetchall()
    return [{"case": c, "size": n, "max_risk": r, "applicants": na, "first": _iso(t0), "last": _iso(t1),
             "span_days": round((t1 - t0) / 86400.0, 1)} for c, n, r, t0, t1, na in rows]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def case_detail(eng, case_id: int) -> dict:
    seqs = _members(eng, case_id)
    rows = eng.store.rows(seqs)
    scores = {s: (r, sub, why) for s, r, sub, why in eng.store.db.execute(
        f"SELECT seq, risk, risk_at_submission, reasons FROM scores WHERE seq IN ({','.join('?' * len(seqs))})", seqs)}
    links = {k: v for k, v in eng.store.links_of(seqs).items() if k[0] in rows and k[1] in rows}
    members = []
    for s in sorted(seqs, key=lambda s: rows[s]["submitted_at"]):
        r = rows[s]
        members.append({
            "application_id": r["application_id"], "applicant_id": r["applicant_id"], "photo": r["photo"],
            "submitted_at": r["submitted_text"] or _iso(r["submitted_at"]), "ip": r["ip"], "mac": r["mac"],
            "device_id": r["device_id"], "gps": [r["lat"], r["lon"]] if r["lat"] is not None else None,
            "risk": scores[s][0], "risk_at_submission": scores[s][1], "reasons": scores[s][2],
            "wall_text": json.loads(r["wall"]) if r["wall"] else None, "background_cluster": r["bg_cluster"]})
    pairs = []
    for (a, b), ev in sorted(links.items(), key=lambda kv: -(kv[1].get("bg") or 0)):
        pairs.append({"a": rows[a]["application_id"], "b": rows[b]["application_id"], "why": link_words(ev),
                      "evidence": ev})
    ts = [rows[s]["submitted_at"] for s in seqs]
    return {"case": case_id, "size": len(seqs), "span_days": round((max(ts) - min(ts)) / 86400.0, 2),
            "max_risk": max((m["risk"] or 0) for m in members), "members": members, "links": pairs}


def link_words(ev: dict) -> str:
    parts = []
    if ev.get("bg"):
        inl = f", {ev['inliers']} matched keypoints" if ev.get("inliers") else ""
        parts.append(f"same background {ev['bg']:.2f}{inl}")
    s, what = device_strength(ev, _P)
    if what:
        parts.append(f"shared {what}")
    if ev.get("gps_m") is not None and "GPS" not in what:
        parts.append(f"GPS {ev['gps_m']:.0f} m apart")
    if ev.get("phones"):
        parts.append(f"same phone on the wall {', '.join(ev['phones'])}")
    if ev.get("tokens"):
        parts.append(f"same wall text {', '.join(ev['tokens'][:3])}")
    if ev.get("same_applicant"):
        parts.append("same applicant (re-application)")
    parts.append(f"{ev['days']:.1f} days apart")
    return "; ".join(parts)


_P = Params()


# -- pictures -------------------------------------------------------------------------------------------

def _load(eng, path: str | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(RGB at THUMB*2 long side, person mask at that size) of an application's photo."""
    from lookalike.imageio import load_file

    if not path:
        return None, None
    try:
        img = load_file(path)
    except (BadInput, OSError):
        return None, None
    rgb = img.rgb
    s = 2 * THUMB / max(rgb.shape[:2])
    rgb = cv2.resize(rgb, (max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s))), interpolation=cv2.INTER_AREA)
    mask = None
    row = eng.index.catalog.file(path)
    if row is not None:
        m = eng.index.feature_values([row.id], "bg_mask").get(row.id)
        if m is not None:
            mask = cv2.resize(m.mask, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_NEAREST) > 127
    return rgb, mask


def _masked(rgb: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    out = rgb.copy()
    if mask is not None:
        out[mask] = (out[mask] * 0.15 + 150).astype(np.uint8)
    return out


def _uri(rgb: np.ndarray, side: int = THUMB) -> str:
    s = side / max(rgb.shape[:2])
    small = cv2.resize(rgb, (max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode() if ok else ""


def _keypoints(pic: tuple):
    from lookalike.features.local import extract_local

    rgb, mask = pic
    return None if rgb is None else extract_local(rgb, mask=None if mask is None else (~mask).astype(np.uint8))


def matches_picture(a: tuple, b: tuple, fa=None, fb=None, max_lines: int = 40) -> tuple[np.ndarray | None, int]:
    """Both photos side by side (person masked) with their matched background keypoints joined by lines
    (RootSIFT ratio test + RANSAC homography on the background only). fa, fb: their keypoints if known."""
    (ra, ma), (rb, mb) = a, b
    if ra is None or rb is None:
        return None, 0
    fa = _keypoints(a) if fa is None else fa
    fb = _keypoints(b) if fb is None else fb
    h = max(ra.shape[0], rb.shape[0])
    canvas = np.full((h, ra.shape[1] + rb.shape[1] + 8, 3), 255, np.uint8)
    canvas[: ra.shape[0], : ra.shape[1]] = _masked(ra, ma)
    canvas[: rb.shape[0], ra.shape[1] + 8:] = _masked(rb, mb)
    n = 0
    if len(fa) >= 4 and len(fb) >= 4:
        bf = cv2.BFMatcher(cv2.NORM_L2)
        knn = bf.knnMatch(fa.desc.astype(np.float32), fb.desc.astype(np.float32), k=2)
        good = [m[0] for m in knn if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
        if len(good) >= 6:
            src = np.float32([fa.xy[m.queryIdx] for m in good])
            dst = np.float32([fb.xy[m.trainIdx] for m in good])
            H, inl = cv2.findHomography(src, dst, cv2.RANSAC, 6.0)
            if inl is not None:
                keep = np.flatnonzero(inl.ravel())
                n = len(keep)
                for i in keep[:max_lines]:
                    p = tuple(int(x) for x in src[i])
                    q = (int(dst[i][0]) + ra.shape[1] + 8, int(dst[i][1]))
                    cv2.line(canvas, p, q, (0, 200, 0), 1, cv2.LINE_AA)
                    cv2.circle(canvas, p, 3, (255, 0, 0), 1)
                    cv2.circle(canvas, q, 3, (255, 0, 0), 1)
    return canvas, n


CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222} h1{font-size:20px} h2{font-size:16px;margin-top:28px}
.grid{display:flex;flex-wrap:wrap;gap:12px} figure{margin:0;width:250px;font-size:11px}
figure img{max-width:240px;max-height:240px;border:1px solid #ccc;display:block}
table{border-collapse:collapse} td,th{border-bottom:1px solid #eee;padding:6px;text-align:left;font-size:12px;vertical-align:top}
.risk{font-weight:bold} .hi{color:#b00} .muted{color:#777} .bar{background:#c33;height:8px;display:inline-block}
"""


def case_html(eng, case_id: int, *, max_pictures: int = 30) -> str:
    d = case_detail(eng, case_id)
    esc = html.escape
    pics = {m["application_id"]: _load(eng, m["photo"]) for m in d["members"]}
    figs = []
    for m in d["members"]:
        rgb, mask = pics[m["application_id"]]
        img = f"<img src='{_uri(_masked(rgb, mask))}' alt=''>" if rgb is not None else "<span class='muted'>(no photo)</span>"
        wt = m["wall_text"]
        wall = ""
        if wt and wt.get("lines"):
            wall = "<br>wall text: " + esc(" / ".join(ln["text"] for ln in wt["lines"][:4]))
        figs.append(f"<figure>{img}<figcaption><b>{esc(m['application_id'])}</b> ({esc(m['applicant_id'])})<br>"
                    f"{esc(m['submitted_at'])}<br><span class='risk{' hi' if (m['risk'] or 0) >= 0.5 else ''}'>"
                    f"risk {m['risk'] or 0:.2f}</span> (at submission {m['risk_at_submission']:.2f})<br>"
                    f"{esc(m['reasons'] or '')}{wall}</figcaption></figure>")
    body = [f"<p>{d['size']} applications over {d['span_days']:.1f} days, highest risk {d['max_risk']:.2f}. "
            "Persons are greyed out: only the background is compared.</p>",
            "<h2>Members</h2><div class='grid'>" + "".join(figs) + "</div>"]
    # timeline
    t = []
    for m in d["members"]:
        dev = ", ".join(x for x in (m["device_id"] and f"device {m['device_id'][:8]}", m["mac"] and f"MAC {m['mac']}",
                                    m["ip"] and f"IP {m['ip']}",
                                    m["gps"] and f"GPS {m['gps'][0]:.5f},{m['gps'][1]:.5f}") if x)
        w = int(100 * (m["risk"] or 0))
        t.append(f"<tr><td>{esc(m['submitted_at'])}</td><td>{esc(m['application_id'])}</td><td>{esc(m['applicant_id'])}</td>"
                 f"<td><span class='bar' style='width:{w}px'></span> {m['risk'] or 0:.2f}</td><td>{esc(dev)}</td></tr>")
    body.append("<h2>Timeline</h2><table><tr><th>submitted</th><th>application</th><th>applicant</th><th>risk</th>"
                "<th>device / network / GPS</th></tr>" + "".join(t) + "</table>")
    # pairs
    rows, shown, kps = [], 0, {}
    for p in d["links"]:
        ev = p["evidence"]
        pic = ""
        if ev.get("bg") and (ev["bg"] >= 0.6) and shown < max_pictures:
            for k in (p["a"], p["b"]):
                if k not in kps:
                    kps[k] = _keypoints(pics[k])
            canvas, n = matches_picture(pics[p["a"]], pics[p["b"]], kps[p["a"]], kps[p["b"]])
            if canvas is not None:
                pic = f"<img src='{_uri(canvas, 2 * THUMB)}' alt=''><br><span class='muted'>{n} background keypoints matched</span>"
                shown += 1
        rows.append(f"<tr><td>{esc(p['a'])}<br>{esc(p['b'])}</td><td>{esc(p['why'])}</td><td>{pic}</td></tr>")
    body.append("<h2>What links each pair</h2><table><tr><th>pair</th><th>evidence</th><th>shared background</th></tr>"
                + "".join(rows) + "</table>")
    # wall text
    wt_rows = []
    for m in d["members"]:
        wt = m["wall_text"]
        for ln in (wt or {}).get("lines", []):
            wt_rows.append(f"<tr><td>{esc(m['application_id'])}</td><td>{esc(ln['text'])}</td>"
                           f"<td>{esc(' '.join(str(int(x)) for x in ln.get('box', [])))}</td><td>{ln.get('score', 0):.2f}</td></tr>")
    if wt_rows:
        body.append("<h2>Wall text read</h2><table><tr><th>application</th><th>text</th><th>where (x0 y0 x1 y1)</th>"
                    "<th>confidence</th></tr>" + "".join(wt_rows) + "</table>")
    title = f"Case {case_id}"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{CSS}</style>"
            f"</head><body><h1>{esc(title)}</h1>{''.join(body)}</body></html>")


def scored_html(results: list) -> str:
    """The `risk score --format html` page: one row per application, highest risk first."""
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(s.application_id)}</td><td class='risk'>{(s.risk or 0):.3f}</td>"
                   f"<td>{(s.risk_at_submission or 0):.3f}</td><td>{'' if s.case is None else s.case}</td>"
                   f"<td>{esc(s.reasons)}</td></tr>"
                   for s in sorted(results, key=lambda s: -(s.risk or 0)))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Risk</title><style>{CSS}</style></head><body>"
            f"<h1>Application risk</h1><table><tr><th>application</th><th>risk</th><th>at submission</th><th>case</th>"
            f"<th>reasons</th></tr>{rows}</table></body></html>")

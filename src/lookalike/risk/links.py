"""Links between one new application and the applications known before it, with their raw evidence.

Candidates come from indexed look-ups, never a scan of the history: the background mode's search over the
index (same background whoever stands in front of it), the SQL indexes of risk.sqlite on device id, MAC,
IP, /24 and a ~500 m GPS grid, and the wall-text tokens. Each link's evidence is a plain dict (stored as
JSON) that the scorers (signals.py) and the case report read:

    bg, bg_method, inliers, scene   background score of the pair (search/background.py: plain walls and
                                    photos hidden by the person are capped there at 0.45)
    device, mac, ip, subnet         shared identifiers (mac_local: a randomised MAC; mac_devices: how many
                                    device ids that MAC was seen with)
    gps_m, days                     GPS distance in metres, time between the two submissions in days
    same_applicant                  the same applicant id: a re-application, never ring evidence
    phones, tokens                  wall text read in both photos
"""

from __future__ import annotations

import math

import numpy as np

from lookalike.risk.store import RiskStore, near_cells

BG_MIN = 0.45  # background pairs kept as links (the mode's "weak evidence" cap; real links score >= 0.6)
BG_K = 40  # background neighbours asked from the search


def metres(lat1, lon1, lat2, lon2) -> float | None:
    if None in (lat1, lon1, lat2, lon2):
        return None
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371000.0 * math.asin(min(1.0, math.sqrt(h)))


def background_hits(index, file_id: int, k: int = BG_K) -> list[tuple[int, float, str, dict]]:
    """The background mode's search from an indexed file (its stored features): [(file id, score, method,
    details)], best first, without the file itself."""
    from lookalike.search.modes import Query, get_mode, query_features

    mode = get_mode("background")
    names = query_features(mode)
    feats = {n: index.feature_values([file_id], n).get(file_id) for n in names}
    row = index.catalog.file_by_id(file_id)
    if row is None or any(v is None for v in feats.values()):
        return []
    q = Query(row.path, row.sha256, row.pixel_digest, feats, None, (row.width, row.height))
    return [h for h in mode.search(index, q, k + 1, 0.0) if h[0] != file_id][:k]


class FaceMemory:
    """The largest face of every application's photo (128-d embeddings, in memory), for identity reuse:
    the same face under another applicant id. Only built when the face signal has a weight."""

    threshold = 0.94  # cosine of dlib embeddings above which two faces count as one person (cluster BY face)

    def __init__(self):
        self.seqs: list[int] = []
        self.X = np.zeros((0, 128), np.float32)

    @staticmethod
    def largest(faces) -> np.ndarray | None:
        if not faces:
            return None
        f = max(faces, key=lambda r: (r.box[2] - r.box[0]) * (r.box[3] - r.box[1]))
        return np.asarray(f.embedding, np.float32)

    def load(self, index, store: RiskStore, before: int) -> None:
        rows = store.db.execute("SELECT seq, file_id FROM applications WHERE file_id IS NOT NULL AND seq<? "
                                "ORDER BY seq", (before,)).fetchall()
        faces = index.feature_values([f for _, f in rows], "faces") if rows else {}
        for s, f in rows:
            self.add(s, self.largest(faces.get(f)))

    def add(self, seq: int, emb: np.ndarray | None) -> None:
        if emb is not None:
            self.seqs.append(seq)
            self.X = np.vstack([self.X, emb[None]])

    def matches(self, emb: np.ndarray | None) -> dict[int, float]:
        if emb is None or not len(self.seqs):
            return {}
        sims = self.X @ emb
        return {self.seqs[i]: float(sims[i]) for i in np.flatnonzero(sims >= self.threshold)}


def find_links(index, store: RiskStore, seq: int, *, known: set[int] | None = None,
               bg_hits: list | None = None, faces: FaceMemory | None = None) -> dict[int, dict]:
    """Evidence between application `seq` and every earlier-stored application it shares something
    with ({other seq: evidence}). `known` limits the others (default: every stored application before it)."""
    me = store.rows([seq])[seq]
    db = store.db
    cand: dict[int, dict] = {}

    def ok(s: int) -> bool:
        return s != seq and (s < seq if known is None else s in known)

    # background: the search's neighbours, mapped from files to the applications using them
    if me["file_id"] is not None:
        hits = background_hits(index, me["file_id"]) if bg_hits is None else bg_hits
        by_file: dict[int, tuple] = {}
        for fid, score, method, det in hits:
            if score >= BG_MIN and fid not in by_file:
                by_file[fid] = (score, method, det)
        if by_file:
            q = ",".join("?" * len(by_file))
            for s, fid in db.execute(f"SELECT seq, file_id FROM applications WHERE file_id IN ({q})", list(by_file)):
                if ok(s):
                    score, method, det = by_file[fid]
                    cand.setdefault(s, {}).update(bg=round(score, 4), bg_method=method, inliers=det.get("inliers"),
                                                  scene=det.get("scene"), bg_reasons=det.get("reasons"))
        # the same photo file used by another application (byte copy)
        for (s,) in db.execute("SELECT seq FROM applications WHERE file_id=? AND seq<>?", (me["file_id"], seq)):
            if ok(s):
                cand.setdefault(s, {}).update(bg=1.0, bg_method="same_file", scene=me["scene"])

    # device identifiers and networks
    for col in ("device_id", "mac", "ip", "subnet"):
        if me[col]:
            for (s,) in db.execute(f"SELECT seq FROM applications WHERE {col}=?", (me[col],)):
                if ok(s):
                    cand.setdefault(s, {})[col if col != "device_id" else "device"] = True
    if me["cell"]:
        cells = near_cells(me["lat"], me["lon"])
        q = ",".join("?" * len(cells))
        for s, lat, lon in db.execute(f"SELECT seq, lat, lon FROM applications WHERE cell IN ({q})", cells):
            if ok(s) and s in cand:  # GPS alone is no link (a city block holds many applicants); it adds to one
                cand[s]["gps_m"] = round(metres(me["lat"], me["lon"], lat, lon))

    # wall text: the same distinctive string or phone number behind both photos
    if me["wall"]:
        import json

        toks = json.loads(me["wall"]).get("tokens", [])
        phones = set(json.loads(me["wall"]).get("phones", []))
        for t in toks:
            for (s,) in db.execute("SELECT seq FROM wall_tokens WHERE token=?", (t,)):
                if ok(s):
                    e = cand.setdefault(s, {})
                    e.setdefault("phones" if t in phones else "tokens", []).append(t)

    # the same face under another applicant id (only when the face signal is weighted)
    if faces is not None and me["file_id"] is not None:
        emb = faces.largest(index.feature_values([me["file_id"]], "faces").get(me["file_id"]))
        for s, sim in faces.matches(emb).items():
            if ok(s):
                cand.setdefault(s, {})["face"] = round(sim, 4)
        faces.add(seq, emb)

    if not cand:
        return {}
    rows = store.rows(cand)
    mac_devices = {}
    if me["mac"]:
        mac_devices[me["mac"]] = db.execute("SELECT COUNT(DISTINCT device_id) FROM applications WHERE mac=?",
                                            (me["mac"],)).fetchone()[0]
    for s, ev in cand.items():
        r = rows[s]
        ev["days"] = round(abs(me["submitted_at"] - r["submitted_at"]) / 86400.0, 3)
        ev["same_applicant"] = me["applicant_id"] == r["applicant_id"]
        if ev.get("mac"):
            ev["mac_local"] = bool(me["mac_local"])
            ev["mac_devices"] = mac_devices.get(me["mac"], 1)
        if "gps_m" not in ev:
            d = metres(me["lat"], me["lon"], r["lat"], r["lon"])
            if d is not None:
                ev["gps_m"] = round(d)
    return cand

"""RiskEngine: loan applications scored online (at submission) and retrospectively, grouped into cases.

    from lookalike import Index
    from lookalike.risk import RiskEngine
    with Index.open("idx") as idx:
        eng = RiskEngine(idx)
        for s in eng.score_csv("applications.csv"):
            print(s.application_id, s.risk, s.risk_at_submission, s.case, s.reasons)

Per application, in `submitted_at` order: its photo is indexed (background features, wall text when the
"walltext" extractor is installed), its links to every earlier application are found (links.py) and
stored, and `risk_at_submission` is computed from the earlier applications only and stored once. After a
batch (or one `submit`), the retrospective pass re-scores the applications the new ones touch with
everything known (`risk`) and rebuilds their cases (cases.py). State lives in `<index>/risk.sqlite`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from lookalike.errors import BadInput
from lookalike.features import registry
from lookalike.features.background import BACKGROUND_FEATURES
from lookalike.risk import cases as C
from lookalike.risk.applications import Application, from_fields, read_applications
from lookalike.risk.fusion import DEFAULT_WEIGHTS, fuse
from lookalike.risk.links import FaceMemory, find_links
from lookalike.risk.signals import Params, View, all_signals
from lookalike.risk.store import RiskStore

Progress = Callable[[str], Callable[[int, int], None]] | None
WALLTEXT = "walltext"


@dataclass
class Scored:
    application_id: str
    risk: float | None
    risk_at_submission: float | None
    case: int | None
    reasons: str
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def wall_dict(w) -> dict | None:
    """The parts of a WallText value the engine keeps (JSON-ready)."""
    if w is None:
        return None
    lines = [{"text": ln.text, "box": [float(x) for x in (getattr(ln, "box", None) or [])][:8],
              "score": float(getattr(ln, "score", 0.0))} for ln in getattr(w, "lines", [])]
    return {"phones": list(getattr(w, "phones", [])), "tokens": list(getattr(w, "tokens", [])),
            "loan_ad": bool(getattr(w, "loan_ad", False)), "lines": lines,
            "evidence": w.evidence() if hasattr(w, "evidence") else ""}


def walltext_available() -> bool:
    """True when the wall-text extractor is installed (lookalike.features.walltext and its OCR models)."""
    try:
        import lookalike.features.walltext  # noqa: F401  (registers the "walltext" feature)
    except ImportError:
        return False
    return WALLTEXT in registry.names()


class _Before:
    """`s in before`: application s was submitted no later than application `seq` and stored before it
    (what its risk at submission may know), without listing the whole history."""

    def __init__(self, store: RiskStore, seq: int, submitted_at: float):
        self.store, self.seq, self.t = store, seq, submitted_at
        self.times: dict[int, float] = {}

    def prefetch(self, seqs) -> None:
        todo = [s for s in seqs if s not in self.times and s < self.seq]
        for i in range(0, len(todo), 900):
            part = todo[i:i + 900]
            self.times.update(self.store.db.execute(
                f"SELECT seq, submitted_at FROM applications WHERE seq IN ({','.join('?' * len(part))})", part))

    def __contains__(self, s: int) -> bool:
        if s == self.seq:
            return True
        if s > self.seq:
            return False
        if s not in self.times:
            self.prefetch([s])
        return self.times.get(s, float("inf")) <= self.t


class RiskEngine:
    def __init__(self, index, *, weights: dict[str, float] | None = None, params: Params | None = None,
                 walltext: bool | None = None):
        self.index = index
        self.walltext = walltext_available() if walltext is None else walltext
        self.store = RiskStore(Path(index.dir) / "risk.sqlite")
        unknown = set(weights or {}) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown signal weight(s) {', '.join(sorted(unknown))}; signals: {', '.join(DEFAULT_WEIGHTS)}")
        self.weights = {**DEFAULT_WEIGHTS, **self.store.get("weights", {}), **(weights or {})}
        self.model = None if weights else self.store.get("model")
        self.p = params or Params()
        self.skipped: list[tuple[str, str]] = []  # (application id, reason) of the last score_csv
        self.rejected: list[tuple[str, str]] = []
        self._faces = None  # FaceMemory, when the face signal is weighted

    def close(self) -> None:
        self.store.close()

    # -- features -----------------------------------------------------------------------------------
    def features(self) -> list[str]:
        return (list(BACKGROUND_FEATURES) + ([WALLTEXT] if self.walltext else [])
                + (["faces"] if self.weights.get("face", 0) > 0 else []))

    def _photo_facts(self, paths: list[str], progress: Progress = None) -> dict[str, tuple]:
        """Index these photos; {path: (file id | None, scene score, wall dict, error)}."""
        paths = [p for p in dict.fromkeys(paths) if p]
        if not paths:
            return {}
        rep = self.index.add(paths, features=self.features(), defaults=False)
        errors = dict(rep.errors)
        ids = {}
        for p in paths:
            row = self.index.catalog.file(p)
            if row is not None and row.status == "ok":
                ids[p] = row.id
            elif p not in errors:
                errors[p] = row.reason if row is not None and getattr(row, "reason", None) else "photo not readable"
        masks = self.index.feature_values(list(ids.values()), "bg_mask") if ids else {}
        walls = {}
        if ids and self.walltext:
            try:
                walls = self.index.feature_values(list(ids.values()), WALLTEXT)
            except Exception as e:  # wall text is one signal among several: its failure must not stop scoring
                walls = {}
                errors.setdefault("*walltext*", f"wall text unavailable: {e}")
        out = {}
        for p in paths:
            fid = ids.get(p)
            if fid is None:
                out[p] = (None, None, None, f"photo {p}: {errors.get(p, 'not readable')}")
                continue
            m = masks.get(fid)
            out[p] = (fid, None if m is None else float(m.scene), wall_dict(walls.get(fid)), None)
        return out

    # -- online ---------------------------------------------------------------------------------------
    def _register(self, app: Application, facts: tuple) -> int:
        fid, scene, wall, err = facts
        if app.photo and not Path(app.photo).exists() and err is None:
            err = f"photo {app.photo}: not found"
        seq = self.store.add_application(app, file_id=fid, scene=scene, photo_error=err)
        if wall is not None:
            self.store.db.execute("UPDATE applications SET wall=? WHERE seq=?", (json.dumps(wall), seq))
            self.store.db.executemany("INSERT OR IGNORE INTO wall_tokens(token, seq) VALUES (?,?)",
                                      [(t, seq) for t in dict.fromkeys(wall["tokens"] + wall["phones"])])
        return seq

    def _score_new(self, seq: int) -> None:
        """Links of a freshly registered application to the earlier ones, and its risk at submission."""
        if self.weights.get("face", 0) > 0 and self._faces is None:
            self._faces = FaceMemory()
            self._faces.load(self.index, self.store, before=seq)  # this application is added by find_links
        links = find_links(self.index, self.store, seq, faces=self._faces)
        self.store.add_links(seq, links)
        me = self.store.rows([seq])[seq]
        visible = _Before(self.store, seq, me["submitted_at"])
        v = self._view(seq, visible)
        sig = all_signals(v, wall=json.loads(me["wall"]) if me["wall"] else None)
        risk, why = fuse(sig, self.weights, self.model)
        self.store.set_submission(seq, risk, why, {k: round(s.value, 4) for k, s in sig.items()})
        self._assign_cluster(seq, links, visible)

    def _assign_cluster(self, seq: int, links: dict, visible: set) -> None:
        """Online background cluster of the application (neighbour votes, cluster/online.py)."""
        from lookalike.cluster.online import OnlineClusterer

        votes = [(b, ev["bg"]) for b, ev in links.items() if ev.get("bg") and b in visible]
        rows = self.store.rows([b for b, _ in votes]) if votes else {}
        votes = [(b, s) for b, s in votes if rows[b]["bg_cluster"] is not None]
        oc = OnlineClusterer(1, threshold=0.65, k=10, min_count=1, merge_count=0)
        oc.load(None, [rows[b]["bg_cluster"] for b, _ in votes], next_id=self.store.get("next_bg_cluster", 0))
        cid = oc.add_scored([(i, s) for i, (_, s) in enumerate(votes)])
        self.store.put("next_bg_cluster", oc.next_id)
        self.store.db.execute("UPDATE applications SET bg_cluster=? WHERE seq=?", (cid, seq))

    def _view(self, seq: int, visible: set | None, adj: dict | None = None) -> View:
        if adj is None:
            adj = self._adjacency(seq, visible)
        rows = self.store.rows(set(adj.get(seq, {})) | {seq})
        return View(seq, rows, adj, self._fraud_seqs(), self.p)

    def _adjacency(self, seq: int, visible: set | None) -> dict:
        """Links of `seq` and of its neighbours (one hop further: what `place` and `room_network` read)."""
        first = self._links_touching([seq], visible)
        nb = set(first.get(seq, {}))
        return self._links_touching(list(nb | {seq}), visible)

    def _links_touching(self, seqs: list[int], visible) -> dict:
        adj: dict[int, dict[int, dict]] = defaultdict(dict)
        links = self.store.links_of(seqs)
        if isinstance(visible, _Before):
            visible.prefetch({x for pair in links for x in pair})
        for (a, b), ev in links.items():
            if ev.get("same_applicant") or (visible is not None and (a not in visible or b not in visible)):
                continue
            adj[a][b] = ev
            adj[b][a] = ev
        return adj

    def _fraud_seqs(self) -> set:
        labels = self.store.decisions()
        fraud = [a for a, lab in labels.items() if lab == "fraud"]
        return {self.store.seq_of(a) for a in fraud} - {None}

    # -- retrospective ----------------------------------------------------------------------------------
    def rescore(self, seqs: set[int] | None = None, progress: Progress = None) -> None:
        """The retrospective pass: re-score with everything known the applications `seqs` touch (them and
        their neighbours; default: all), then rebuild the cases touching them."""
        if seqs is None:
            links, todo = self.store.links_of(None), None
        else:
            hop1 = self._hop(set(seqs))
            hop2 = self._hop(hop1)  # place / room_network of a neighbour read the links among its neighbours
            links = {k: ev for k, ev in self.store.links_of(hop2).items() if k[0] in hop2 and k[1] in hop2}
            todo = hop1
        adj: dict[int, dict[int, dict]] = defaultdict(dict)
        for (a, b), ev in links.items():
            if not ev.get("same_applicant"):
                adj[a][b] = ev
                adj[b][a] = ev
        rows = self.store.rows(None if todo is None else set(adj) | todo)
        todo = sorted(rows if todo is None else todo)
        fraud = self._fraud_seqs()
        out, nodes, clusters = [], {}, {}
        bar = progress("Re-scoring") if progress else None
        for n, s in enumerate(todo):
            v = View(s, rows, adj, fraud, self.p)
            sig = all_signals(v, wall=json.loads(rows[s]["wall"]) if rows[s]["wall"] else None)
            sig["background"].facts["cluster"] = self._cluster_stats(rows[s]["bg_cluster"], clusters)
            risk, why = fuse(sig, self.weights, self.model)
            nodes[s] = (sig["place"].value, risk)
            out.append((s, risk, why, {k: round(x.value, 4) for k, x in sig.items()}))
            if bar and (n % 50 == 0 or n == len(todo) - 1):
                bar(n + 1, len(todo))
        with self.store.transaction():
            self.store.set_risk(out)
        # applications not re-scored now: their stored privacy and risk
        for s in set(adj) - set(nodes):
            nodes[s] = (self._stored_signal(s, "place", 1.0), self._stored_risk(s))
        self._rebuild_cases(adj, nodes, None if seqs is None else set(adj) | set(todo))

    def _hop(self, seqs: set[int]) -> set[int]:
        """seqs and every application linked to one of them."""
        return set(seqs) | {x for pair in self.store.links_of(seqs) for x in pair}

    def _stored_risk(self, seq: int) -> float:
        r = self.store.db.execute("SELECT COALESCE(risk, risk_at_submission) FROM scores WHERE seq=?", (seq,)).fetchone()
        return float(r[0]) if r and r[0] is not None else 0.0

    def _stored_signal(self, seq: int, name: str, default: float) -> float:
        r = self.store.db.execute("SELECT signals FROM scores WHERE seq=?", (seq,)).fetchone()
        return json.loads(r[0]).get(name, default) if r and r[0] else default

    def _cluster_stats(self, cid, memo: dict | None = None) -> dict:
        """Size, distinct applicants / devices / subnets and time span of an online background cluster."""
        if cid is None:
            return {}
        if memo is not None and cid in memo:
            return memo[cid]
        n, na, nd, ns, t0, t1 = self.store.db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT applicant_id), COUNT(DISTINCT device_id), COUNT(DISTINCT subnet), "
            "MIN(submitted_at), MAX(submitted_at) FROM applications WHERE bg_cluster=?", (cid,)).fetchone()
        out = {"id": cid, "size": n, "applicants": na, "devices": nd, "subnets": ns,
               "span_days": round(((t1 or 0) - (t0 or 0)) / 86400.0, 1)}
        if memo is not None:
            memo[cid] = out
        return out

    def _rebuild_cases(self, adj: dict, nodes: dict, scope: set | None) -> None:
        """nodes: {seq: (privacy of its background, risk)}."""
        stored = self.store.cases_stored(None if scope is None else scope)
        if scope is not None:  # widen to whole stored cases, so a case is always rebuilt entirely
            scope = scope | set(stored)
            adj = defaultdict(dict)
            for (a, b), ev in self.store.links_of(scope).items():
                if a in scope and b in scope and not ev.get("same_applicant"):
                    adj[a][b] = ev
                    adj[b][a] = ev
            nodes = {**{s: (self._stored_signal(s, "place", 1.0), self._stored_risk(s)) for s in scope - set(nodes)},
                     **nodes}
        groups = C.build_cases(adj, nodes, self.p)
        case_of, next_id = C.stable_ids(groups, stored, self.store.get("next_case", 1))
        clear = (set(stored) if scope is None else scope & set(stored)) - set(case_of)
        with self.store.transaction():
            self.store.set_cases({**{s: None for s in clear}, **case_of})
            self.store.put("next_case", next_id)

    # -- public API ---------------------------------------------------------------------------------------
    def score_csv(self, path: str | Path, progress: Progress = None) -> list[Scored]:
        """Score every application of an applications CSV not scored before (in submitted_at order), then
        re-score what they touch. Returns the CSV's valid applications; problems are in `self.skipped`."""
        res = read_applications(path)
        self.skipped = list(res.skipped)
        self.rejected = list(res.skipped)  # rows not scored at all (the rest of `skipped` are field/photo problems)
        new = [a for a in res.applications if self.store.seq_of(a.application_id) is None]
        facts = self._photo_facts([a.photo for a in new if a.photo and Path(a.photo).exists()], progress)
        bar = progress("Scoring applications") if progress else None
        seqs = set()
        for n, app in enumerate(new):
            with self.store.transaction():
                seq = self._register(app, facts.get(app.photo, (None, None, None, None)))
            self._score_new(seq)
            seqs.add(seq)
            if bar:
                bar(n + 1, len(new))
        if seqs:
            self.rescore(None if len(seqs) * 4 >= max(1, self.store.count()) else seqs, progress)
        out = self.results([a.application_id for a in res.applications])
        probs = {a.application_id: a.problems for a in res.applications}
        for s in out:
            s.problems = probs.get(s.application_id, []) + s.problems
        for s in out:
            for p in s.problems:
                self.skipped.append((s.application_id, p))
        return out

    def submit(self, fields: dict, photo: bytes) -> Scored:
        """Score one new application online against everything before it. Raises BadInput for an
        application that cannot be scored (no id/applicant/time, id already scored with other data)."""
        app = from_fields(fields)
        if self.store.seq_of(app.application_id) is not None:
            raise BadInput(f"application {app.application_id} was already scored")
        path = self._save_photo(app.application_id, photo)
        warm = self._search_state()
        facts = self._photo_facts([path]).get(path, (None, None, None, "photo missing")) if path else \
            (None, None, None, "no photo")
        if facts[0] is not None:
            self._keep_warm(warm, facts[0])
        app.photo = path or ""
        with self.store.transaction():
            seq = self._register(app, facts)
        self._score_new(seq)
        self.rescore({seq})
        out = self.results([app.application_id])[0]
        out.problems = app.problems + out.problems
        return out

    def _search_state(self):
        """The background search's in-memory state before one photo is added (None when not built yet)."""
        from lookalike.search.modes import get_mode

        vx = self.index.vectors("bg_cnn")
        if vx.ntotal == 0:
            return None
        mode = get_mode("background")
        return (vx, mode.codebook(self.index),
                self.index.cached("bg_vlad", ("bg_local",), dict))

    def _keep_warm(self, state, file_id: int) -> None:
        """One new photo joins the background search's in-memory state instead of rebuilding it: its masked
        CNN vector is added to the loaded vector index, and the VLAD codebook learned from the history (and
        the VLADs computed with it) stay in use. Without this every submission reloads the vector index and
        relearns the codebook from the whole catalog (seconds at 100 k photos). A batch run (`score_csv`)
        and the next process rebuild them from the catalog as usual."""
        if state is None:
            return
        vx, cb, memo = state
        vec = self.index.feature_values([file_id], "bg_cnn").get(file_id)
        if vec is None:
            return
        vx.add(np.array([file_id], np.int64), np.asarray(vec, np.float32)[None])
        self.index.cached("vectors:bg_cnn", ["bg_cnn"], lambda: vx)
        self.index.cached("bg_codebook", ("bg_local",), lambda: cb)
        self.index.cached("bg_vlad", ("bg_local",), lambda: memo)

    def _save_photo(self, application_id: str, photo: bytes) -> str | None:
        if not photo:
            return None
        d = Path(self.index.dir) / "risk-photos"
        d.mkdir(exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", application_id)[:80] + "-" + hashlib.sha256(
            application_id.encode()).hexdigest()[:8]
        p = d / safe
        p.write_bytes(photo)
        return str(p)

    def results(self, application_ids: list[str] | None = None) -> list[Scored]:
        q = ("SELECT a.application_id, s.risk, s.risk_at_submission, s.case_id, s.reasons, a.photo_error "
             "FROM applications a JOIN scores s ON s.seq=a.seq")
        if application_ids is None:
            rows = {r[0]: r for r in self.store.db.execute(q + " ORDER BY a.seq")}
        else:
            rows = {}
            for i in range(0, len(application_ids), 900):
                part = application_ids[i:i + 900]
                rows.update((r[0], r) for r in self.store.db.execute(
                    q + f" WHERE a.application_id IN ({','.join('?' * len(part))})", part))
        ids = list(rows) if application_ids is None else [a for a in application_ids if a in rows]
        out = []
        for a in ids:
            _, risk, sub, case, why, err = rows[a]
            out.append(Scored(a, risk if risk is not None else sub, sub, case, why or "", [err] if err else []))
        return out

    def signals(self, application_id: str, *, at_submission: bool = False) -> dict[str, float]:
        col = "signals_at_submission" if at_submission else "signals"
        r = self.store.db.execute(f"SELECT s.{col} FROM scores s JOIN applications a ON a.seq=s.seq "
                                  "WHERE a.application_id=?", (application_id,)).fetchone()
        return json.loads(r[0]) if r and r[0] else {}

    def decide(self, application_id: str, label: str) -> None:
        if label not in ("fraud", "not_fraud"):
            raise ValueError(f"label must be 'fraud' or 'not_fraud', not {label!r}")
        seq = self.store.seq_of(application_id)
        if seq is None:
            raise BadInput(f"unknown application {application_id}")
        self.store.decide(application_id, label)
        self.rescore({seq})  # the known-fraud device signal of its neighbours changes

    def cases(self) -> list[dict]:
        from lookalike.risk.report import case_summaries

        return case_summaries(self)

    def case(self, case_id: int) -> dict:
        from lookalike.risk.report import case_detail

        return case_detail(self, int(case_id))

    def case_html(self, case_id: int) -> str:
        from lookalike.risk.report import case_html

        return case_html(self, int(case_id))

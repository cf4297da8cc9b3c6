"""Fraud risk engine (lookalike.risk) on the DEV fraud set, plus bad input, incremental runs and the API.

One session fixture indexes the 362 photos (background features, ~1 min on 2 idle cores) and scores the
applications in two runs: the first 240 (by submitted_at), then the whole CSV (the 122 later ones are
added incrementally). Wall-text OCR is off there (its own tests cover it; ~1 s a photo): the wall-text
scorer is tested on its own below.

Floors sit a little below the DEV figures measured here with the default weights (README "Fraud risk"):
ring recall at 1 % legit FPR 1.000; at 5 %: clean-device members 1.000, per-kind FP rates <= 0.098,
later members by risk_at_submission 0.993; case pairwise precision and recall 1.000; half B (held out):
1.000, 1.000, <= 0.085, 1.000, case F1 1.000. The file: 122 s (load ~4 on 2 cores), 15 min at load 20.
"""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest

from lookalike import Index, models

FIRST = 240


@pytest.fixture(scope="module")
def prepared(model_cache):
    for name in ("efficientnet-lite0", "selfie-segmentation", "pose-detection"):
        models.prepare(name)


@pytest.fixture(scope="session")
def fraud_dir(data_dir):
    return data_dir / "fraud"


def _part_csv(src, dst, n):
    rows = list(csv.reader(src.open(encoding="utf-8")))
    with dst.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(rows[0])
        for r in rows[1: n + 1]:
            r[2] = str(src.parent / r[2])  # absolute photo paths: the CSV lives elsewhere
            w.writerow(r)
    return dst


@pytest.fixture(scope="module")
def scored(prepared, fraud_dir, tmp_path_factory):
    """Index dir, results after the first run, results after the second (full) run, cases after each."""
    from lookalike.risk import RiskEngine

    where = tmp_path_factory.mktemp("risk-index")
    part = _part_csv(fraud_dir / "applications.csv", where.parent / "first.csv", FIRST)
    with Index.open(where) as idx:
        eng = RiskEngine(idx, walltext=False)
        first = {s.application_id: s.to_dict() for s in eng.score_csv(part)}
        cases_first = eng.cases()
        full = {s.application_id: s.to_dict() for s in eng.score_csv(fraud_dir / "applications.csv")}
        cases_full = eng.cases()
        eng.close()
    return where, first, full, cases_first, cases_full


@pytest.fixture(scope="module")
def figures(scored, fraud_dir):
    from lookalike.eval.risk import _subset, score_results

    full = scored[2]
    out = {"all": score_results(fraud_dir, full)}
    for h in ("A", "B"):
        out[h] = score_results(fraud_dir, full, subset=_subset(fraud_dir, h))
    print(json.dumps(out, indent=1))
    return out


def test_ring_recall_and_false_positives(figures):
    r = figures["all"]
    assert r["applications"] == 362
    assert r["at_0.01"]["ring_recall"] >= 0.95
    assert r["at_0.05"]["clean_recall"] >= 0.9
    assert r["at_0.05"]["rings_half_above"] == 13
    for kind, fpr in r["at_0.05"]["kind_fpr"].items():
        assert fpr <= 0.12, kind
    assert r["roc_auc"] >= 0.97


def test_later_members_flagged_at_submission(figures):
    assert figures["all"]["submission"]["recall"] >= 0.9


def test_cases_do_not_chain_rings(figures):
    c = figures["all"]["cases"]
    assert c["f1"] >= 0.95
    assert c["precision"] >= 0.97
    assert c["false_pairs"]["public_place"] == 0 and c["false_pairs"]["plain_wall"] == 0
    assert c["false_pairs"]["re_applicant"] == 0


def test_held_out_half(figures):
    """Half B of the rings/places was not looked at while tuning."""
    b = figures["B"]
    assert b["at_0.01"]["ring_recall"] >= 0.95
    assert b["at_0.05"]["clean_recall"] >= 0.9
    assert b["submission"]["recall"] >= 0.9
    assert b["cases"]["f1"] >= 0.95


def test_risk_at_submission_is_kept_and_ids_stable(scored):
    _, first, full, cases_first, cases_full = scored
    assert len(first) == FIRST and len(full) == 362
    for a, r in first.items():
        assert full[a]["risk_at_submission"] == r["risk_at_submission"], a
    # a case of the first run keeps its id for (most of) its members
    kept = moved = 0
    for a, r in first.items():
        if r["case"] is not None:
            kept += full[a]["case"] == r["case"]
            moved += full[a]["case"] != r["case"]
    assert kept >= 0.95 * (kept + moved)
    assert {c["case"] for c in cases_first} <= {c["case"] for c in cases_full} | {None}
    for r in full.values():
        assert 0.0 <= r["risk"] <= 1.0 and 0.0 <= r["risk_at_submission"] <= 1.0
        assert r["reasons"]


def test_rescoring_the_same_csv_changes_nothing(scored, fraud_dir):
    from lookalike.risk import RiskEngine

    where, _, full, _, _ = scored
    with Index.open(where) as idx:
        eng = RiskEngine(idx, walltext=False)
        again = {s.application_id: s.to_dict() for s in eng.score_csv(fraud_dir / "applications.csv")}
        eng.close()
    assert again == full


def test_submit_online_and_case_report(scored, fraud_dir, tmp_path):
    """A new applicant photographed in a ring's room, on the ring's network, joins its case; the case page
    embeds the photos and the matched keypoints."""
    from lookalike.errors import BadInput
    from lookalike.risk import RiskEngine

    where = tmp_path / "idx"
    shutil.copytree(scored[0], where)
    labels = {r["application_id"]: r for r in csv.DictReader((fraud_dir / "labels.csv").open())}
    apps = list(csv.DictReader((fraud_dir / "applications.csv").open()))
    ring = [a for a in apps if labels[a["application_id"]]["ring"] == "ring10"]
    src = ring[-1]
    with Index.open(where) as idx:
        eng = RiskEngine(idx, walltext=False)
        before = eng.results([a["application_id"] for a in ring])
        # the ring's time window, a new applicant id, the ring's device fields
        fields = dict(src, application_id="new-1", applicant_id="someone-new")
        s = eng.submit(fields, (fraud_dir / src["photo"]).read_bytes() + b"\0new")
        assert s.risk >= 0.5 and s.risk_at_submission >= 0.5
        assert s.case is not None and s.case == before[-1].case
        assert set(s.to_dict()) >= {"application_id", "risk", "risk_at_submission", "case", "reasons"}
        with pytest.raises(BadInput):
            eng.submit(fields, b"")
        after = {x.application_id: x.risk_at_submission for x in eng.results([a["application_id"] for a in ring])}
        assert after == {x.application_id: x.risk_at_submission for x in before}
        page = eng.case_html(s.case)
        assert page.count("data:image/jpeg;base64,") >= len(ring) and "keypoints matched" in page
        detail = eng.case(s.case)
        assert "new-1" in {m["application_id"] for m in detail["members"]}
        with pytest.raises(BadInput):
            eng.case(10 ** 6)
        eng.decide("new-1", "fraud")
        with pytest.raises(ValueError):
            eng.decide("new-1", "maybe")
        eng.close()


def test_train_reports_cross_validation(scored, fraud_dir):
    from lookalike.risk import RiskEngine
    from lookalike.risk.train import train

    with Index.open(scored[0]) as idx:
        eng = RiskEngine(idx, walltext=False)
        res = train(eng, fraud_dir / "labels.csv", save=False)
        eng.close()
    assert res["labelled"] == 362 and res["saved"] is None
    assert set(res["cv"]) == {"defaults", "logistic", "boosting"}
    assert res["cv"]["defaults"]["auc"] >= 0.97


# -- bad input (no models needed beyond what a failed photo costs) -------------------------------------------

HEADER = "application_id,applicant_id,photo,submitted_at,ip,mac,device_id,gps_lat,gps_lon\n"


def test_bad_rows_are_reported_and_the_run_goes_on(tmp_path):
    from lookalike.risk.applications import read_applications

    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "a.csv").write_text(
        HEADER
        + "a1,c1,broken.jpg,2025-01-08T17:49:12+08:00,999.1.2.3,zz:3b:4f:12:99:31,not-a-uuid,abc,114.1\n"
        + "a2,c2,x.jpg,yesterday,1.2.3.4,,,,\n"
        + "a3,c3,nothere.jpg,2025-01-09T17:49:12+08:00,1.2.3.4,AE:3B:4F:12:99:31,,22.5,114.1\n"
        + "a1,c9,x.jpg,2025-01-09T17:49:12+08:00,,,,,\n"
        + ",c9,x.jpg,2025-01-09T17:49:12+08:00,,,,,\n")
    res = read_applications(tmp_path / "a.csv")
    assert [a.application_id for a in res.applications] == ["a1", "a3"]
    reasons = dict(res.skipped)
    assert "malformed submitted_at" in reasons["a2"]
    assert "duplicate application_id" in reasons["a1"]
    assert any("no application_id" in r for r in reasons.values())
    a1 = res.applications[0]
    assert a1.ip is None and a1.mac is None and a1.device_id is None and a1.lat is None
    assert len(a1.problems) == 4 and all("\n" not in p for p in a1.problems)
    a3 = res.applications[1]
    assert a3.mac == "ae:3b:4f:12:99:31" and a3.mac_local and a3.subnet == "1.2.3"
    assert a3.photo == str((tmp_path / "nothere.jpg").resolve())


def test_missing_columns_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from lookalike.cli import app

    (tmp_path / "cols.csv").write_text("application_id,photo\nx,y\n")
    r = CliRunner().invoke(app, ["risk", "score", str(tmp_path / "cols.csv"), "--index", str(tmp_path / "idx")])
    assert r.exit_code == 2
    assert "missing column(s) applicant_id, submitted_at" in r.output
    assert "Traceback" not in r.output


def test_score_cli_with_bad_photos(tmp_path, prepared, fraud_dir):
    """Broken and missing photos: one line each, the applications are still scored on their devices."""
    from typer.testing import CliRunner

    from lookalike.cli import app

    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    good = fraud_dir / "images" / next(p.name for p in sorted((fraud_dir / "images").iterdir()))
    (tmp_path / "a.csv").write_text(
        HEADER
        + f"b1,c1,{good},2025-01-08T17:49:12+08:00,1.2.3.4,,,,\n"
        + "b2,c2,broken.jpg,2025-01-08T18:49:12+08:00,1.2.3.4,,,,\n"
        + "b3,c3,nothere.jpg,2025-01-08T19:49:12+08:00,1.2.3.5,,,,\n"
        + "b4,c4,nothere.jpg,tomorrow,1.2.3.5,,,,\n")
    r = CliRunner().invoke(app, ["risk", "score", str(tmp_path / "a.csv"), "--index", str(tmp_path / "idx")])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [x["application_id"] for x in rows] == ["b1", "b2", "b3"]
    assert "b2" in r.stderr and "b3" in r.stderr and "not found" in r.stderr and "b4" in r.stderr
    assert float(rows[1]["risk"]) > 0  # shares an IP with b1 within the hour


# -- scorers on their own ---------------------------------------------------------------------------------------

def _view(links: dict, applicants: dict | None = None):
    from collections import defaultdict

    from lookalike.risk.signals import View

    adj = defaultdict(dict)
    for (a, b), ev in links.items():
        adj[a][b] = ev
        adj[b][a] = ev
    rows = {s: {"applicant_id": (applicants or {}).get(s, f"c{s}")} for s in set(adj) | {0}}
    return View(0, rows, adj)


def test_device_weights_randomised_and_busy_macs_less():
    from lookalike.risk.signals import Params, device_strength

    p = Params()
    own = device_strength({"mac": True, "mac_local": False, "mac_devices": 1, "days": 1}, p)[0]
    rnd = device_strength({"mac": True, "mac_local": True, "mac_devices": 1, "days": 1}, p)[0]
    busy = device_strength({"mac": True, "mac_local": False, "mac_devices": 9, "days": 1}, p)[0]
    ip = device_strength({"ip": True, "days": 1}, p)[0]
    assert own > rnd > ip and own > busy
    assert device_strength({"device": True}, p)[0] == 1.0


def test_one_shared_ip_is_weak_many_are_not():
    from lookalike.risk.signals import device

    one = device(_view({(0, 1): {"ip": True, "days": 0.5}})).value
    many = device(_view({(0, b): {"ip": True, "days": 0.5} for b in range(1, 8)})).value
    old = device(_view({(0, 1): {"ip": True, "days": 90}})).value
    assert one < 0.4 < 0.9 < many and old == 0.0


def test_public_place_vs_private_room():
    from lookalike.risk.signals import background, place

    # a public place: five unrelated applicants, months apart, no networks between them
    pub = _view({(0, b): {"bg": 0.95, "days": 40.0 * b} for b in range(1, 6)})
    # a private room: five applicants within days, networked among themselves
    links = {(0, b): {"bg": 0.95, "days": 0.5 * b} for b in range(1, 6)}
    links.update({(b, b + 1): {"bg": 0.95, "days": 0.5, "subnet": True} for b in range(1, 5)})
    room = _view(links)
    assert place(pub).value < 0.2 and place(room).value > 0.7
    assert background(pub, place(pub)).value < 0.05 < 0.5 < background(room, place(room)).value


def test_wall_text_needs_more_than_harmless_text():
    from lookalike.risk.signals import walltext

    assert walltext(_view({(0, 1): {"phones": ["5550142"], "days": 1}}), None).value == 1.0
    assert walltext(_view({}), {"loan_ad": True, "phones": [], "tokens": []}).value >= 0.5
    assert walltext(_view({}), {"loan_ad": False, "phones": [], "tokens": ["welcome"]}).value == 0.0


def test_same_applicant_links_are_no_evidence_and_face_weight_is_zero():
    from lookalike.risk.fusion import DEFAULT_WEIGHTS, fuse
    from lookalike.risk.signals import Signal

    assert DEFAULT_WEIGHTS["face"] == 0.0
    sig = {k: Signal(0.0) for k in DEFAULT_WEIGHTS}
    sig["face"] = Signal(1.0, "same face")
    assert fuse(sig)[0] == 0.0
    assert fuse(sig, {"face": 0.5})[0] == 0.5


def test_stable_case_ids():
    from lookalike.risk.cases import stable_ids

    ids, nxt = stable_ids([[1, 2, 3], [7, 8]], {}, 1)
    assert ids == {1: 1, 2: 1, 3: 1, 7: 2, 8: 2} and nxt == 3
    # a later run: the first case grows, a new case appears, the second gains members
    ids2, nxt2 = stable_ids([[1, 2, 3, 4], [9, 10], [7, 8, 11]], ids, nxt)
    assert ids2[4] == 1 and ids2[9] == 3 and ids2[11] == 2 and nxt2 == 4
    # a case split in two: the part holding more of its members keeps the id
    ids3, _ = stable_ids([[1, 2], [3, 4, 9, 10]], {1: 1, 2: 1, 3: 1, 4: 1, 9: 3, 10: 3}, 4)
    assert ids3[1] in (1, 4) and len({ids3[1], ids3[3]}) == 2

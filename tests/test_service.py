"""The HTTP service (lookalike.service) through FastAPI's TestClient: auth, every route's status codes
and shapes, hostile uploads, and an OpenAPI conformance run (schemathesis)."""

from __future__ import annotations

import io
import os
import shutil
import struct
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
with warnings.catch_warnings():  # starlette's note that it prefers httpx2 (not on this machine)
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from conftest import index_demo_photos  # noqa: E402
from lookalike import Index  # noqa: E402
from lookalike.service import Settings, create_app  # noqa: E402
from lookalike.service import keys as K  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demo"
PHOTOS = ["bridge.jpg", "bridge_blur.jpg", "bridge_flipped.jpg", "chelsea.jpg", "chelsea_gray_small.jpg",
          "coffee.jpg", "rocket.jpg", "street_01.jpg"]


@pytest.fixture(scope="module")
def built(tmp_path_factory, model_cache):
    """A small index of demo photos (copied into the test's folder) to copy per app."""
    root = tmp_path_factory.mktemp("service")
    index_demo_photos(root, PHOTOS, "template")
    return root


def _app(built: Path, name: str, **kw):
    index = built / name
    if not index.exists():
        shutil.copytree(built / "template", index)
    settings = dict(index=index, max_upload_mb=2, allow_roots=[built / "photos"], log_requests=False)
    return create_app(Settings(**{**settings, **kw}))


@pytest.fixture(scope="module")
def svc(built):
    """(client, headers by role, index dir) on an app with an upload limit of 2 MiB."""
    app = _app(built, "main")
    with TestClient(app) as client:
        st = app.state.store
        heads = {role: {"Authorization": f"Bearer {K.create(st, role, role)[0]}"} for role in K.ROLES}
        yield client, heads, built / "main"


def _png(width: int, height: int, raw: bytes | None = None) -> bytes:
    """A greyscale PNG; with a tiny `raw` the header can claim any size (a decompression bomb's header)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = raw if raw is not None else b"".join(b"\x00" + bytes((x * 7 + y * 3) % 256 for x in range(width))
                                                for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _files_outside(root: Path, index: Path) -> set[str]:
    """Files under the test's root folder outside every index (the photos the indexes were built from)."""
    indexes = [d for d in root.iterdir() if (d / "catalog.sqlite").exists()]
    return {str(p) for p in root.rglob("*") if not any(d == p or d in p.parents for d in indexes)}


# -- auth ------------------------------------------------------------------------------------------

def test_health_is_open_and_everything_else_needs_a_key(svc):
    client, heads, _ = svc
    assert client.get("/v1/health").json()["status"] == "ok"
    for method, path in [("get", "/v1/info"), ("get", "/v1/images/1"), ("get", "/v1/duplicates"),
                         ("get", "/v1/clusters"), ("get", "/v1/jobs"), ("get", "/metrics"), ("get", "/v1/cases")]:
        r = getattr(client, method)(path)
        assert r.status_code == 401, path
        assert "missing API key" in r.json()["detail"]
        assert r.headers["www-authenticate"] == "Bearer"
        r = getattr(client, method)(path, headers={"Authorization": "Bearer lk_nope_wrong"})
        assert r.status_code == 401 and "unknown" in r.json()["detail"], path


def test_roles(svc):
    client, heads, _ = svc
    jpg = (DEMO / "coffee.jpg").read_bytes()
    r = client.post("/v1/images", headers=heads["reader"], files={"file": ("c.jpg", jpg)})
    assert r.status_code == 403 and "writer" in r.json()["detail"]
    assert client.delete("/v1/images/1", headers=heads["writer"]).status_code == 403
    assert client.get("/v1/keys", headers=heads["writer"]).status_code == 403
    assert client.get("/v1/keys", headers=heads["admin"]).status_code == 200
    assert client.get("/v1/info", headers=heads["reader"]).json()["role"] == "reader"


def test_keys_cli_create_list_revoke(svc):
    from lookalike.cli import app as cli

    client, _, index = svc
    run = CliRunner()
    r = run.invoke(cli, ["keys", "create", "--role", "reader", "--name", "cli", "--index", str(index)])
    assert r.exit_code == 0
    key = r.stdout.strip()
    assert key.startswith("lk_") and "\n" not in key  # the key alone on stdout
    assert client.get("/v1/info", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    listing = run.invoke(cli, ["keys", "list", "--index", str(index)]).stdout
    assert ",reader,cli," in listing and key.split("_")[2] not in listing  # the secret is never listed
    prefix = key.split("_")[1]
    assert run.invoke(cli, ["keys", "revoke", prefix, "--index", str(index)]).exit_code == 0
    assert client.get("/v1/info", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    r = run.invoke(cli, ["keys", "create", "--role", "boss", "--index", str(index)])
    assert r.exit_code == 2 and "unknown role" in r.output
    r = run.invoke(cli, ["keys", "list", "--index", str(index / "missing")])
    assert r.exit_code == 2 and "no index" in r.output and not (index / "missing").exists()


def test_revoke_a_key_whose_prefix_is_all_digits(built, monkeypatch):
    """A prefix of 8 decimal digits (2 % of keys) is a prefix, not an id."""
    app = _app(built, "digits")
    with TestClient(app) as client:
        st = app.state.store
        other = K.create(st, "reader")[0]
        monkeypatch.setattr(K.secrets, "token_hex", lambda n: "12345678")
        key = K.create(st, "reader")[0]
        assert key.startswith("lk_12345678_")
        assert K.revoke(st, "12345678") == 1
        assert client.get("/v1/info", headers={"Authorization": f"Bearer {key}"}).status_code == 401
        assert client.get("/v1/info", headers={"Authorization": f"Bearer {other}"}).status_code == 200
        assert K.revoke(st, "1") == 1  # a short number is an id: the first key


def test_rate_limit_per_key(built):
    app = _app(built, "limited", rate_per_s=0.5, rate_burst=3)
    with TestClient(app) as client:
        a = {"Authorization": f"Bearer {K.create(app.state.store, 'reader')[0]}"}
        b = {"Authorization": f"Bearer {K.create(app.state.store, 'reader')[0]}"}
        codes = [client.get("/v1/info", headers=a).status_code for _ in range(5)]
        assert codes[:3] == [200] * 3 and codes[3:] == [429, 429]
        r = client.get("/v1/info", headers=a)
        assert int(r.headers["retry-after"]) >= 1 and "rate limit" in r.json()["detail"]
        assert client.get("/v1/info", headers=b).status_code == 200  # another key has its own bucket


# -- uploads ---------------------------------------------------------------------------------------

def test_upload_shape_labels_and_storage(svc):
    client, heads, index = svc
    jpg = (DEMO / "cathedral.jpg").read_bytes()
    before = _files_outside(index.parent, index)
    r = client.post("/v1/images", headers=heads["writer"], files={"file": ("../../etc/passwd", jpg, "image/jpeg")})
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"id", "name", "status"} and body["name"] == "../../etc/passwd" and body["status"] == "added"
    r2 = client.post("/v1/images", headers=heads["writer"], files={"file": ("again.jpg", jpg)}, data={"name": "x"})
    assert r2.status_code == 201 and r2.json()["id"] == body["id"] and r2.json()["status"] == "exists"
    meta = client.get(f"/v1/images/{body['id']}", headers=heads["reader"]).json()
    assert meta["source"] == "upload" and meta["format"] == "JPEG" and meta["width"] > 0
    stored = list((index / "uploads").rglob("*.jpg"))
    assert len(stored) == 1 and stored[0].read_bytes() == jpg
    assert _files_outside(index.parent, index) == before  # nothing written outside the index


def test_png_with_a_jpg_name_is_sniffed(svc):
    client, heads, _ = svc
    r = client.post("/v1/images", headers=heads["writer"], files={"file": ("photo.jpg", _png(64, 48))})
    assert r.status_code == 201
    assert client.get(f"/v1/images/{r.json()['id']}", headers=heads["reader"]).json()["format"] == "PNG"


def _hostile() -> dict[str, tuple[str, bytes, str]]:
    jpg = (DEMO / "bridge.jpg").read_bytes()
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("payload.txt", "x" * 5000)
    script = b"<script>alert(1)</script>"
    with_script = jpg[:2] + b"\xff\xfe" + struct.pack(">H", len(script) + 2) + script + jpg[2:]
    return {  # case: (file name, bytes, expected words in the reason[, name field])
        "zero-byte": ("empty.jpg", b"", "empty"),
        "truncated": ("half.jpg", jpg[: len(jpg) // 2], "truncated"),
        "bomb": ("bomb.png", _png(40000, 40000, raw=b"\x00" * 100), "decompression-bomb"),
        "wrong extension": ("photo.jpg", b"MZ\x90\x00" + b"This program cannot be run in DOS mode." * 50, "not an image"),
        "html as jpg": ("photo.jpg", b"<html><body>hi</body></html>", "not an image"),
        "polyglot zip": ("poly.jpg", jpg + zipped.getvalue(), "polyglot"),
        "polyglot script": ("poly2.jpg", with_script, "polyglot"),
        "control chars in name": ("a.jpg", jpg, "control characters", "a\x07b\x1bc"),
        "long name": ("n.jpg", jpg, "255", "n" * 300),
    }


@pytest.mark.parametrize("case", list(_hostile()))
def test_hostile_uploads_get_422_with_a_reason(svc, case):
    client, heads, index = svc
    name, data, words, *label = _hostile()[case]
    before = _files_outside(index.parent, index)
    uploads = set((index / "uploads").rglob("*")) if (index / "uploads").exists() else set()
    r = client.post("/v1/images", headers=heads["writer"], files={"file": (name, data)},
                    data={"name": label[0]} if label else None)
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]
    assert _files_outside(index.parent, index) == before
    now = set((index / "uploads").rglob("*")) if (index / "uploads").exists() else set()
    assert now == uploads  # nothing stored
    assert client.get("/v1/health").status_code == 200  # the server stays up


def test_huge_uploads_get_413_before_the_body_is_read(svc):
    client, heads, _ = svc
    big = os.urandom(3 * 2**20)
    r = client.post("/v1/images", headers=heads["writer"], files={"file": ("big.jpg", big)})
    assert r.status_code == 413 and "2 MiB limit" in r.json()["detail"]

    def chunks():  # no Content-Length: counted as it streams, refused once past the limit
        for _ in range(6):
            yield os.urandom(2**19)

    r = client.post("/v1/images", headers={**heads["writer"], "Content-Type": "multipart/form-data; boundary=x"},
                    content=chunks())
    assert r.status_code == 413
    assert client.get("/v1/health").status_code == 200


# -- search ----------------------------------------------------------------------------------------

def test_search_by_file_and_by_id(svc):
    client, heads, _ = svc
    q = (DEMO / "bridge_letterbox.jpg").read_bytes()
    r = client.post("/v1/search?mode=copy&k=5", headers=heads["reader"], files={"file": ("q.jpg", q)})
    assert r.status_code == 200
    res = r.json()["results"]
    assert all(set(m) == {"id", "name", "score", "method", "details"} for m in res)
    names = {Path(m["name"]).name for m in res}
    assert {"bridge.jpg", "bridge_blur.jpg", "bridge_flipped.jpg"} <= names
    assert not names & {"coffee.jpg", "rocket.jpg"}
    assert all(0 <= m["score"] <= 1 for m in res) and res == sorted(res, key=lambda m: -m["score"])

    bridge = next(m["id"] for m in res if Path(m["name"]).name == "bridge.jpg")
    r = client.post("/v1/search?mode=hash", headers=heads["reader"], json={"id": bridge})
    got = r.json()["results"]
    assert r.status_code == 200 and bridge not in {m["id"] for m in got}  # itself left out
    assert {"bridge_blur.jpg", "bridge_flipped.jpg"} <= {Path(m["name"]).name for m in got}


@pytest.mark.parametrize("kwargs,status,words", [
    ({"json": {"id": 999999}}, 404, "no image"),
    ({"json": {"url": "http://169.254.169.254/latest/meta-data"}}, 422, "URLs"),
    ({"json": {"id": "1"}}, 422, "id"),
    ({"content": b"hello", "headers": {"Content-Type": "text/plain"}}, 415, "multipart"),
    ({"files": {"file": ("x.jpg", b"not an image")}}, 422, "not an image"),
])
def test_search_refusals(svc, kwargs, status, words):
    client, heads, _ = svc
    headers = {**heads["reader"], **kwargs.pop("headers", {})}
    r = client.post("/v1/search", headers=headers, **kwargs)
    assert r.status_code == status and words in r.json()["detail"]


def test_search_unknown_mode_is_422(svc):
    client, heads, _ = svc
    r = client.post("/v1/search?mode=telepathy", headers=heads["reader"], json={"id": 1})
    assert r.status_code == 422 and "mode" in r.json()["detail"]


# -- images ------------------------------------------------------------------------------------------

def test_image_metadata_thumbnail_inspect_404(svc):
    client, heads, _ = svc
    meta = client.get("/v1/images/1", headers=heads["reader"]).json()
    assert {"id", "name", "source", "width", "height", "format", "bytes", "date"} <= set(meta)
    r = client.get("/v1/images/1/thumbnail?side=64", headers=heads["reader"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    from PIL import Image

    assert max(Image.open(io.BytesIO(r.content)).size) <= 64
    assert client.get("/v1/images/999999", headers=heads["reader"]).status_code == 404
    assert client.get("/v1/images/999999/thumbnail", headers=heads["reader"]).status_code == 404
    listing = client.get("/v1/images?limit=3", headers=heads["reader"]).json()
    assert listing["total"] >= len(PHOTOS) and len(listing["images"]) == 3


def test_delete_removes_the_image_and_its_upload(svc):
    client, heads, index = svc
    r = client.post("/v1/images", headers=heads["writer"], files={"file": ("r.png", _png(80, 60)[::1])},
                    data={"name": "to delete"})
    fid = r.json()["id"]
    stored = [p for p in (index / "uploads").rglob("*.png")]
    assert client.delete(f"/v1/images/{fid}", headers=heads["admin"]).json() == {"id": fid, "deleted": True}
    assert client.get(f"/v1/images/{fid}", headers=heads["reader"]).status_code == 404
    assert client.delete(f"/v1/images/{fid}", headers=heads["admin"]).status_code == 404
    assert len(list((index / "uploads").rglob("*.png"))) == len(stored) - 1


# -- duplicates ----------------------------------------------------------------------------------------

def test_duplicates_paged_with_keeper_and_decisions(built):
    app = _app(built, "dups")
    with TestClient(app) as client:
        w = {"Authorization": f"Bearer {K.create(app.state.store, 'writer')[0]}"}
        r = client.get("/v1/duplicates?mode=copy&limit=1", headers=w)
        assert r.status_code == 200
        body = r.json()
        assert body["total_groups"] >= 2 and len(body["groups"]) == 1  # bridge family, chelsea family
        g = body["groups"][0]
        names = {Path(m["name"]).name for m in g["members"]}
        assert names in ({"bridge.jpg", "bridge_blur.jpg", "bridge_flipped.jpg"}, {"chelsea.jpg", "chelsea_gray_small.jpg"})
        keeper = next(m for m in g["members"] if m["id"] == g["suggested_keeper"])
        assert keeper["width"] * keeper["height"] == max(m["width"] * m["height"] for m in g["members"])
        assert all({"a", "b", "score", "method", "details"} <= set(p) for p in g["pairs"])
        second = client.get("/v1/duplicates?mode=copy&limit=1&offset=1", headers=w).json()["groups"][0]
        assert second["members"] != g["members"]

        decision = {"members": [m["id"] for m in g["members"]], "verdict": "keep_one", "keeper": g["suggested_keeper"]}
        r = client.post("/v1/duplicates/decisions", headers=w, json=decision)
        assert r.status_code == 201 and isinstance(r.json()["id"], int)
        after = client.get("/v1/duplicates?mode=copy", headers=w).json()
        assert after["total_groups"] == body["total_groups"] - 1
        assert all({m["id"] for m in x["members"]} != set(decision["members"]) for x in after["groups"])
        again = client.get("/v1/duplicates?mode=copy&include_decided=true", headers=w).json()["groups"]
        decided = [x for x in again if x["decided"]]
        assert len(decided) == 1 and decided[0]["decision"] == r.json()["id"]
        listed = client.get("/v1/duplicates/decisions", headers=w).json()["decisions"]
        assert len(listed) == 1 and set(listed[0]["member_ids"]) == set(decision["members"])
        assert listed[0]["keeper_id"] == g["suggested_keeper"]
        bad = client.post("/v1/duplicates/decisions", headers=w, json={**decision, "keeper": None})
        assert bad.status_code == 422 and "keeper" in bad.json()["detail"]
        assert client.post("/v1/duplicates/decisions", headers={"Authorization": w["Authorization"].replace(
            w["Authorization"], "Bearer x")}, json=decision).status_code == 401
        # not duplicates: the pair never comes back; undo brings the first group back
        other = after["groups"][0]
        nd = client.post("/v1/duplicates/decisions", headers=w, json={
            "members": [m["id"] for m in other["members"]], "verdict": "not_duplicates"})
        assert nd.status_code == 201
        assert client.get("/v1/duplicates?mode=copy", headers=w).json()["total_groups"] == body["total_groups"] - 2
        assert client.delete(f"/v1/duplicates/decisions/{r.json()['id']}", headers=w).status_code == 200
        assert client.get("/v1/duplicates?mode=copy", headers=w).json()["total_groups"] == body["total_groups"] - 1
        assert client.delete("/v1/duplicates/decisions/424242", headers=w).status_code == 404
        bulk = client.post("/v1/duplicates/decisions/bulk", headers=w, json={"decisions": [
            {"members": decision["members"], "verdict": "keep_all"}]})
        assert bulk.status_code == 201 and len(bulk.json()["ids"]) == 1


# -- clusters and jobs ---------------------------------------------------------------------------------

def _wait(client, headers, job_id, seconds=120):
    for _ in range(seconds * 5):
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']}")


def test_jobs_cluster_and_rename(svc):
    client, heads, _ = svc
    w = heads["writer"]
    r = client.post("/v1/jobs", headers=w, json={"kind": "cluster", "by": "image"})
    assert r.status_code == 202 and r.json()["status"] in ("queued", "running", "done")
    job = _wait(client, w, r.json()["id"])
    assert job["status"] == "done" and job["result"]["with_2_or_more"] >= 2
    res = client.get("/v1/clusters?by=image", headers=w).json()
    assert res["total"] >= 2 and all(c["size"] >= 2 for c in res["clusters"])
    cid = res["clusters"][0]["id"]
    assert client.patch(f"/v1/clusters/image/{cid}", headers=w, json={"name": "the bridge"}).status_code == 200
    again = client.get("/v1/clusters?by=image", headers=w).json()["clusters"]
    assert next(c for c in again if c["id"] == cid)["name"] == "the bridge"
    assert client.patch("/v1/clusters/image/987654", headers=w, json={"name": "x"}).status_code == 404
    assert client.patch(f"/v1/clusters/image/{cid}", headers=heads["reader"], json={"name": "x"}).status_code == 403


def test_merge_and_split_clusters(built):
    index = built / "edit"
    shutil.copytree(built / "template", index)
    with Index.open(index) as idx:
        idx.cluster(by="image")
    app = _app(built, "edit")
    with TestClient(app) as client:
        w = {"Authorization": f"Bearer {K.create(app.state.store, 'writer')[0]}"}
        r_ = {"Authorization": f"Bearer {K.create(app.state.store, 'reader')[0]}"}

        def groups():
            res = client.get("/v1/clusters?by=image&min_size=1", headers=r_).json()
            return {c["id"]: {Path(m["name"]).name: m["id"] for m in c["members"]} for c in res["clusters"]}

        g = groups()
        bridge = next(c for c, ms in g.items() if "bridge.jpg" in ms)
        chelsea = next(c for c, ms in g.items() if "chelsea.jpg" in ms)
        assert set(g[bridge]) == {"bridge.jpg", "bridge_blur.jpg", "bridge_flipped.jpg"}
        body = {"by": "image", "ids": [chelsea, bridge]}
        assert client.post("/v1/clusters/merge", headers=r_, json=body).status_code == 403
        assert client.post("/v1/clusters/merge", headers=w, json={"by": "image", "ids": [bridge]}).status_code == 422
        assert client.post("/v1/clusters/merge", headers=w, json={"by": "image", "ids": [bridge, 987654]}).status_code == 404
        r = client.post("/v1/clusters/merge", headers=w, json=body)
        target = min(bridge, chelsea)
        assert r.status_code == 200 and r.json()["id"] == target
        merged = groups()
        assert set(merged[target]) == {"bridge.jpg", "bridge_blur.jpg", "bridge_flipped.jpg", "chelsea.jpg",
                                       "chelsea_gray_small.jpg"} and max(bridge, chelsea) not in merged
        cats = [merged[target]["chelsea.jpg"], {"id": merged[target]["chelsea_gray_small.jpg"], "face": 0}]
        split = {"by": "image", "members": cats}
        assert client.post(f"/v1/clusters/{target}/split", headers=r_, json=split).status_code == 403
        assert client.post("/v1/clusters/987654/split", headers=w, json=split).status_code == 404
        assert client.post(f"/v1/clusters/{target}/split", headers=w, json={"by": "image", "members": []}).status_code == 422
        coffee = next(ms["coffee.jpg"] for ms in merged.values() if "coffee.jpg" in ms)
        r = client.post(f"/v1/clusters/{target}/split", headers=w, json={"by": "image", "members": [coffee]})
        assert r.status_code == 422 and "not a member" in r.json()["detail"]
        r = client.post(f"/v1/clusters/{target}/split", headers=w, json=split)
        assert r.status_code == 200 and r.json()["id"] > max(merged)
        after = groups()
        assert set(after[r.json()["id"]]) == {"chelsea.jpg", "chelsea_gray_small.jpg"}
        assert set(after[target]) == {"bridge.jpg", "bridge_blur.jpg", "bridge_flipped.jpg"}


def test_index_job_only_under_allow_root(svc, built, tmp_path):
    client, heads, _ = svc
    w = heads["writer"]
    r = client.post("/v1/jobs", headers=w, json={"kind": "index", "paths": ["/etc"]})
    assert r.status_code == 403 and "allow-root" in r.json()["detail"]
    trick = str(built / "photos" / ".." / "main")  # resolves outside the allowed root
    assert client.post("/v1/jobs", headers=w, json={"kind": "index", "paths": [trick]}).status_code == 403
    link = built / "photos" / "escape"
    if not link.exists():
        link.symlink_to("/etc")
    assert client.post("/v1/jobs", headers=w, json={"kind": "index", "paths": [str(link)]}).status_code == 403
    link.unlink()
    r = client.post("/v1/jobs", headers=w, json={"kind": "index", "paths": ["https://example.com/a.jpg"]})
    assert r.status_code == 422 and "URLs" in r.json()["detail"]
    r = client.post("/v1/jobs", headers=w, json={"kind": "index", "paths": [str(built / "photos")]})
    assert r.status_code == 202
    job = _wait(client, w, r.json()["id"])
    assert job["status"] == "done" and job["result"]["unchanged"] == len(PHOTOS)
    assert client.get("/v1/jobs/nope", headers=w).status_code == 404
    assert any(j["id"] == job["id"] for j in client.get("/v1/jobs", headers=w).json()["jobs"])


# -- documents, risk, metrics ----------------------------------------------------------------------------

def test_documents_check_and_excel_report(svc):
    client, heads, _ = svc
    docs = [DEMO / "documents" / n for n in ("site_report.docx", "slides.pptx", "brochure.pdf")]
    files = [("files", (d.name, d.read_bytes())) for d in docs]
    r = client.post("/v1/documents/check", headers=heads["writer"], files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["documents"] == 3 and len(body["pairs"]) >= 3
    assert all({"doc_a", "image_a", "doc_b", "image_b", "score"} <= set(p) for p in body["pairs"])
    assert {p["doc_a"] for p in body["pairs"]} <= {d.name for d in docs}  # labels, not server paths
    x = client.get(body["report"], headers=heads["reader"])
    assert x.status_code == 200 and x.content[:2] == b"PK" and "spreadsheet" in x.headers["content-type"]
    r = client.post("/v1/documents/check", headers=heads["writer"], files=[("files", ("a.docx", b"hello"))])
    assert r.status_code == 422 and "a.docx" in r.json()["detail"]
    assert client.get("/v1/documents/reports/../../catalog", headers=heads["reader"]).status_code == 404


def test_risk_routes(svc):
    client, heads, _ = svc
    w, r_ = heads["writer"], heads["reader"]
    fields = {"application_id": "app_t1", "applicant_id": "cus_1", "submitted_at": "2025-01-06T17:49:12+08:00",
              "ip": "10.0.0.1", "device_id": "dev-1", "gps_lat": "22.5", "gps_lon": "114.1"}
    photo = (DEMO / "same_background_1.jpg").read_bytes()
    r = client.post("/v1/applications", headers=w, files={"photo": ("p.jpg", photo)}, data=fields)
    try:
        import lookalike.risk  # noqa: F401
    except ImportError:
        assert r.status_code == 501 and "lookalike.risk" in r.json()["detail"]
        assert client.get("/v1/cases", headers=r_).status_code == 501
        return
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"application_id", "risk_at_submission", "case", "reasons"} <= set(body)
    assert body["application_id"] == "app_t1" and 0 <= body["risk_at_submission"] <= 1
    second = dict(fields, application_id="app_t2", applicant_id="cus_2", submitted_at="2025-01-07T10:00:00+08:00")
    r2 = client.post("/v1/applications", headers=w, data=second,
                     files={"photo": ("p.jpg", (DEMO / "same_background_2.jpg").read_bytes())})
    assert r2.status_code == 200
    again = client.post("/v1/applications", headers=w, files={"photo": ("p.jpg", photo)}, data=fields)
    assert again.status_code == 422 and "already scored" in again.json()["detail"]
    assert client.post("/v1/applications", headers=w, files={"photo": ("p.jpg", photo)},
                       data={"application_id": "app_t3"}).status_code == 422  # no applicant, no time
    bad = client.post("/v1/applications", headers=w, files={"photo": ("p.jpg", b"")},
                      data=dict(fields, application_id="app_t4"))
    assert bad.status_code == 422 and "empty" in bad.json()["detail"]
    assert client.post("/v1/applications", headers=r_, files={"photo": ("p.jpg", photo)}, data=fields).status_code == 403
    cases = client.get("/v1/cases", headers=r_).json()["cases"]
    for c in cases[:1]:
        detail = client.get(f"/v1/cases/{c['case']}", headers=r_).json()
        assert detail["case"] == c["case"] and detail["members"]
        view = client.get(f"/v1/cases/{c['case']}/view", headers=r_)
        assert view.status_code == 200 and "default-src 'none'" in view.headers["content-security-policy"]
    assert client.get("/v1/cases/987654", headers=r_).status_code == 404
    ok = client.post("/v1/applications/app_t1/decision", headers=w, json={"verdict": "fraud"})
    assert ok.status_code == 200 and ok.json() == {"application_id": "app_t1", "verdict": "fraud"}
    assert client.post("/v1/applications/nope/decision", headers=w, json={"verdict": "fraud"}).status_code == 404
    assert client.post("/v1/applications/app_t1/decision", headers=w, json={"verdict": "maybe"}).status_code == 422


def test_metrics_prometheus(svc):
    client, heads, _ = svc
    r = client.get("/metrics", headers=heads["reader"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert 'lookalike_http_requests_total{method="GET",route="/v1/health",status="200"}' in r.text
    assert "lookalike_images{" in r.text and "lookalike_uploads_rejected_total" in r.text


def test_ui_and_openapi_are_served(svc):
    client, _, _ = svc
    assert "<title>lookalike</title>" in client.get("/").text
    assert client.get("/app.js").status_code == 200
    spec = client.get("/openapi.json").json()
    for path in ["/v1/images", "/v1/search", "/v1/duplicates", "/v1/clusters", "/v1/images/{image_id}/thumbnail",
                 "/v1/applications", "/v1/cases", "/v1/cases/{case_id}", "/v1/documents/check", "/v1/jobs",
                 "/v1/jobs/{job_id}", "/metrics", "/v1/health"]:
        assert path in spec["paths"], path
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()  # Swagger UI served from the package
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    ui = client.get("/")
    assert "script-src 'self'" in ui.headers["content-security-policy"] and ui.headers["x-content-type-options"] == "nosniff"


# -- OpenAPI conformance -----------------------------------------------------------------------------------

schemathesis = pytest.importorskip("schemathesis")


@pytest.fixture(scope="module")
def conformance_app(built):
    app = _app(built, "conformance")
    app.state.conformance_key = K.create(app.state.store, "admin", "schemathesis")[0]
    return app


def test_openapi_conformance(conformance_app):
    """Generated requests on every route (a few examples each): never a 500, and every answer matches
    its documented status codes, content type and schema. Destructive or slow routes are tested above."""
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

    schema = (schemathesis.openapi.from_asgi("/openapi.json", conformance_app).exclude(method="DELETE")
              .exclude(path_regex="^/v1/(jobs|documents/check|applications)").exclude(path="/v1/keys", method="POST"))
    headers = {"Authorization": f"Bearer {conformance_app.state.conformance_key}"}
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=4, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def conforms(case):
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error, content_type_conformance,
                                                     response_schema_conformance])

        conforms()
        checked += 1
    assert checked >= 15

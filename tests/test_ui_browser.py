"""The web UI in a real browser: Playwright for Python driving Debian's chromium (/usr/bin/chromium;
Playwright's own browser download is not reachable here) against the service on loopback.

Screenshots of every page go to a temporary folder, or to docs/images/ui-*.png (the README's) with
LOOKALIKE_UI_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium; `make system` does it)", allow_module_level=True)
pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from conftest import index_demo_photos  # noqa: E402
from lookalike import Index  # noqa: E402
from lookalike.service import Settings, create_app  # noqa: E402
from lookalike.service import keys as K  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demo"
PHOTOS = ["bridge.jpg", "bridge_blur.jpg", "bridge_flipped.jpg", "bridge_letterbox.jpg", "chelsea.jpg",
          "chelsea_gray_small.jpg", "chelsea_stickers.jpg", "coffee.jpg", "coffee_phone_screenshot.jpg",
          "same_background_1.jpg", "street_01.jpg", "rocket.jpg"]  # indexed; the risk test submits applications
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_cache):
    """The service on a free loopback port over an index of the demo photos (clustered by image)."""
    root = tmp_path_factory.mktemp("ui")
    with Index.open(index_demo_photos(root, PHOTOS, "index")) as idx:
        idx.cluster(by="image")
    app = create_app(Settings(index=root / "index", log_requests=False))
    key = K.create(app.state.store, "admin", "browser")[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", key, root / "index"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    url, key, _ = server
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(url + "/")
    pg.fill("#key", key)
    pg.click("#keyform button")
    expect(pg.locator("#whoami")).to_contain_text("admin")
    yield pg
    ctx.close()
    assert not errors, errors  # no JavaScript errors on any page


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    if os.environ.get("LOOKALIKE_UI_SCREENSHOTS"):
        out = REPO / "docs" / "images"
        out.mkdir(parents=True, exist_ok=True)
        return out
    return tmp_path_factory.mktemp("screenshots")


def _thumbs_loaded(pg, selector: str) -> None:
    pg.wait_for_function(f"""() => {{ const imgs = [...document.querySelectorAll({selector!r})];
        return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }}""")


def test_search_upload_shows_results(page, shots):
    page.set_input_files("#file", str(DEMO / "bridge_letterbox.jpg"))
    results = page.locator("#results figure")
    expect(results.first).to_be_visible()
    _thumbs_loaded(page, "#results img")
    text = page.locator("#results").inner_text()
    for name in ("bridge.jpg", "bridge_blur.jpg", "bridge_flipped.jpg"):
        assert name in text
    assert "%" in text and "distance" in text  # scores and why
    page.select_option("#mode", "similar")
    expect(page.locator("#status")).to_contain_text("similar mode")
    page.select_option("#mode", "copy")
    expect(page.locator("#status")).to_contain_text("copy mode")
    _thumbs_loaded(page, "#results img")
    page.screenshot(path=shots / "ui-search.png")


def test_duplicate_decision_persists_after_reload(page, server, shots):
    page.goto(server[0] + "/#duplicates")
    groups = page.locator("#groups .group")
    expect(groups.first).to_be_visible()
    _thumbs_loaded(page, "#groups img")
    page.screenshot(path=shots / "ui-duplicates.png")
    before = int(page.locator("#dcount").inner_text().split()[0])
    first = groups.first
    members = first.get_attribute("data-members")
    first.get_by_role("button", name="Keep one (the chosen)").click()
    expect(page.locator("#status")).to_contain_text("will not come back")
    expect(page.locator("#dcount")).to_have_text(f"{before - 1} groups to review")
    page.reload()
    expect(page.locator("#dcount")).to_have_text(f"{before - 1} groups to review")
    assert members not in [g.get_attribute("data-members") for g in page.locator("#groups .group").all()]
    # bulk: select the remaining groups on the page and accept their suggested keepers
    for box in page.locator("#groups .group .select").all():
        box.check()
    page.click("#bulk")
    expect(page.locator("#status")).to_contain_text("resolved with their suggested keeper")
    page.reload()
    expect(page.locator("#dcount")).to_have_text("0 groups to review")


def test_clusters_gallery_and_rename(page, server, shots):
    page.goto(server[0] + "/#clusters")
    card = page.locator("#clusters .cluster").first
    expect(card).to_be_visible()
    _thumbs_loaded(page, "#clusters img")
    card.locator("input[type=text]").fill("Bridge over the lake")
    card.get_by_role("button", name="Rename").click()
    expect(page.locator("#status")).to_contain_text("renamed")
    page.reload()
    expect(page.locator("#clusters .cluster input[type=text]").first).to_have_value("Bridge over the lake")
    page.screenshot(path=shots / "ui-clusters.png")


def test_clusters_merge_and_split(page, server):
    import httpx

    url, key, _ = server

    def stored():
        r = httpx.get(url + "/v1/clusters?by=image", headers={"Authorization": f"Bearer {key}"}, timeout=60)
        return {c["id"]: {m["id"] for m in c["members"]} for c in r.json()["clusters"]}

    before = stored()
    page.goto(url + "/#clusters")
    cards = page.locator("#clusters .cluster")
    expect(cards).to_have_count(len(before))
    first, second = cards.nth(0), cards.nth(1)
    ids = [int(c.locator(".cpick").get_attribute("data-id")) for c in (first, second)]
    first.locator(".cpick").check()
    second.locator(".cpick").check()
    page.click("#cmerge")
    expect(page.locator("#status")).to_contain_text(f"into cluster {min(ids)}")
    expect(cards).to_have_count(len(before) - 1)
    merged = stored()
    assert merged[min(ids)] == before[ids[0]] | before[ids[1]] and max(ids) not in merged
    card = page.locator("#clusters .cluster", has=page.locator(f'.cpick[data-id="{min(ids)}"]'))
    moving = sorted(before[max(ids)])
    for image in moving:
        card.locator(f'.mpick[data-id="{image}"]').check()
    card.get_by_role("button", name="Split selected into a new cluster").click()
    expect(page.locator("#status")).to_contain_text("into new cluster")
    expect(cards).to_have_count(len(before))
    after = stored()
    new = max(after)
    assert new > max(before) and after[new] == set(moving) and after[min(ids)] == before[min(ids)]


def test_risk_queue_case_and_verdict(page, server, shots):
    """Three applications photographed in one room from one device, one elsewhere: the queue shows the
    case, the case view opens, a verdict is stored."""
    import httpx

    url, key, _ = server
    apps = [("same_background_1.jpg", "dev-a"), ("same_background_2.jpg", "dev-a"), ("same_background_3.jpg", "dev-a"),
            ("street_01.jpg", "dev-b")]
    for n, (photo, device) in enumerate(apps):
        r = httpx.post(url + "/v1/applications", headers={"Authorization": f"Bearer {key}"}, timeout=600,
                       files={"photo": (photo, (DEMO / photo).read_bytes())},
                       data={"application_id": f"app_{n}", "applicant_id": f"cus_{n}", "device_id": device,
                             "submitted_at": f"2025-01-0{n + 1}T10:00:00+08:00", "ip": f"10.0.0.{n + 1}"})
        assert r.status_code == 200, r.text
    page.goto(url + "/#risk")
    row = page.locator("#queue tr.case-row").first
    expect(row).to_be_visible()
    row.click()
    expect(page.locator("#case h2")).to_contain_text("Case")
    page.locator("#case button", has_text="Not fraud").first.click()
    expect(page.locator("#status")).to_contain_text("not fraud (stored for risk training)")
    page.wait_for_timeout(500)  # the sandboxed case page renders
    page.screenshot(path=shots / "ui-risk.png")


def test_inspect_view(page, server, shots):
    with Index.open(server[2]) as idx:
        fid = next(r.id for r in idx.catalog.files() if r.path.endswith("same_background_1.jpg"))
    page.goto(server[0] + "/#inspect")
    page.fill("#iid", str(fid))
    page.click("#igo")
    _thumbs_loaded(page, "#inspection img")
    expect(page.locator("#inspection dl")).to_contain_text("person share")
    page.screenshot(path=shots / "ui-inspect.png")

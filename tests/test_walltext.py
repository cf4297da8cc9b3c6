"""Wall text: the string classifiers (phones, loan wording, harmless signs, tokens), the WallText value,
bad input, and the OCR's phone recall on the fraud set's readable signs."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np
import pytest

from lookalike.features import ocr_text
from lookalike.features.walltext import TextLine, WallText

DATA = Path(os.environ.get("LOOKALIKE_DATA", Path(__file__).resolve().parents[1] / "../shared/data")) / "fraud"


def _has_rapidocr() -> bool:
    try:
        from lookalike.features.walltext import model_paths

        model_paths()
        return True
    except Exception:
        return False


needs_ocr = pytest.mark.skipif(not _has_rapidocr(), reason="rapidocr is not installed (see README: Wall text)")


# -- phones -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, phones", [
    ("FAST LOANS / call 555-0100 / no credit check", ["5550100"]),
    ("555-0163ad credit OK", ["5550163"]),  # the OCR glued the next word on
    ("快速放款 / 138-0013-8000 / 无抵押 当天到账", ["13800138000"]),
    ("客服 138 0013 8000", ["13800138000"]),
    ("电话：13800138000", ["13800138000"]),
    ("+86 138-0013-8000", ["13800138000"]),
    ("0086 13800138000", ["13800138000"]),
    ("Tel (0755) 8888-1234", ["075588881234"]),
    ("+1 (415) 555-0100", ["4155550100"]),
    ("1-415-555-0100", ["4155550100"]),
    ("call 555-O1OO", ["5550100"]),  # letter O read for zero between digits
    ("１３８－００１３－８０００", ["13800138000"]),  # full-width digits and dash
])
def test_phones_found_and_normalised(text, phones):
    assert ocr_text.find_phones(text) == phones


@pytest.mark.parametrize("text", [
    "营业时间 / 09:00-21:00", "OPEN 9:00 - 18:00", "2025-01-06", "Room 1204", "¥ 99.00", "55-0142", "0000000",
    "WELCOME", "",
])
def test_not_phones(text):
    assert ocr_text.find_phones(text) == []


def test_phone_display():
    assert ocr_text.format_phone("5550100") == "555-0100"
    assert ocr_text.format_phone("13800138000") == "138-0013-8000"
    assert ocr_text.format_phone("075588881234") == "0755-88881234"


# -- loan adverts and harmless signs ------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "FAST LOANS", "CASH TODAY / bad credit OK", "EASY MONEY / text 555-0177", "no credit check", "Payday loan",
    "快速放款", "信用贷款 / 包装资料 包过", "急用钱 找我 / 额度高 秒下款", "无抵押 当天到账", "征信不好也能借", "借款秒到账",
])
def test_loan_ads(text):
    assert ocr_text.is_loan_ad(text)


@pytest.mark.parametrize("text", [
    "WELCOME", "欢迎光临", "营业时间 / 09:00-21:00", "OPEN 9am - 6pm", "禁止吸烟", "福", "EXIT", "Tony / 555-0163",
    "call Mia / 555-0125", "水电维修 / 135-0000-6060 / 随叫随到", "BILL & MELINDA GATES CENTER", "Free delivery",
    "credit card accepted",
])
def test_not_loan_ads(text):
    assert not ocr_text.is_loan_ad(text)


@pytest.mark.parametrize("lines, harmless", [
    (["WELCOME"], True),
    (["欢迎光临"], True),
    (["营业时间", "09:00-21:00"], True),
    (["OPEN", "Mon - Fri 9:00 - 18:00"], True),
    (["禁止吸烟"], True),
    (["水电维修", "135-0000-6060", "随叫随到"], True),
    (["外卖 电话 13800138000"], True),
    (["FAST LOANS", "call 555-0100"], False),  # loan advert
    (["Tony", "555-0163"], False),  # a name and a number: not a shop sign
    (["BILL & MELINDA GATES CENTER"], False),  # something distinctive
    ([], False),  # no text: nothing to call harmless
    (["S"], False),  # a stray letter read on a texture is no sign
    (["425", "一"], False),
])
def test_harmless(lines, harmless):
    assert ocr_text.is_harmless(lines) is harmless


def test_tokens_are_distinctive():
    toks = ocr_text.tokens(["EASY MONEY", "text 555-0177", "ask for Kevin"])
    assert toks == ["tel:5550177", "kevin"]  # the loan words are shared by every advert: no tokens
    zh = ocr_text.tokens(["李经理", "急用钱找我", "137-0000-2468", "欢迎光临"])
    assert "tel:13700002468" in zh and "李经理" in zh and "急用钱找我" in zh and "欢迎光临" not in zh


# -- the WallText value ---------------------------------------------------------------------------------


def test_walltext_roundtrip_and_evidence():
    wt = WallText.from_lines([TextLine("FAST LOANS", (10, 10, 90, 30), 0.99),
                              TextLine("call 555-0100", (10, 40, 90, 60), 0.98)])
    assert wt.phones == ["5550100"] and wt.loan_ad and not wt.harmless
    assert wt.evidence() == 'wall text "FAST LOANS / call 555-0100" (loan advert, phone 555-0100)'
    back = WallText.from_bytes(wt.to_bytes())
    assert back == wt
    zh = WallText.from_lines([TextLine("欢迎光临", (0, 0, 50, 20), 0.9)])
    assert zh.harmless and not zh.loan_ad and "harmless" in zh.evidence()
    assert WallText().evidence() == "no wall text"
    street = WallText.from_lines([TextLine("BILL & MELINDA GATES CENTER FOR COMPUTER SCIENCE AND ENGINEERING", (0, 0, 9, 9), 0.9),
                                  TextLine("快速放款", (0, 20, 9, 29), 0.9), TextLine("138-0013-8000", (0, 40, 9, 49), 0.9)])
    assert street.evidence().startswith('wall text "快速放款 / 138-0013-8000 / BILL')  # what matters first
    assert street.evidence().endswith("(loan advert, phone 138-0013-8000)")
    assert WallText.from_bytes(WallText().to_bytes()) == WallText()


# -- bad input -------------------------------------------------------------------------------------------


@needs_ocr
@pytest.mark.parametrize("img", [
    np.zeros((0, 0, 3), np.uint8), np.zeros((3, 3, 3), np.uint8), np.zeros((5, 400, 3), np.uint8),
    np.zeros((10,), np.uint8), np.zeros((20, 20, 5), np.uint8), None,
])
def test_bad_input_gives_empty_walltext(img):
    from lookalike.features.walltext import read_wall_text

    assert read_wall_text(img, np.zeros((2, 2), np.float32)) == WallText()


@needs_ocr
def test_plain_and_odd_pictures_read_nothing():
    from lookalike.features.walltext import read_wall_text

    flat = np.full((480, 640, 3), 200, np.uint8)
    assert read_wall_text(flat, np.zeros((480, 640), np.float32)).lines == []
    gray = np.random.default_rng(0).integers(90, 110, (300, 400), dtype=np.uint8)  # 2-D, no person: read as is
    wt = read_wall_text(gray, np.zeros((300, 400), np.uint8))
    assert wt.phones == [] and not wt.loan_ad
    rgba = np.dstack([flat, np.full((480, 640), 255, np.uint8)])  # 4 channels, person mask 0/255 of another size
    assert read_wall_text(rgba, np.full((48, 64), 255, np.uint8)).lines == []


# -- the OCR on the fraud set (only the photos whose sign is >= 90 % visible, plus decoys and plain walls) ----


def _truth() -> list[dict]:
    with open(DATA / "wall_text.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["visible"] = float(r["visible_fraction"] or 0)
        r["digits"] = re.sub(r"\D", "", r["phone"])
    return rows


@pytest.fixture(scope="module")
def fraud_walls(tmp_path_factory, model_cache):
    """WallText of the photos of the fraud set that carry a readable sign, a decoy sign or a plain wall,
    computed through the index (worker processes, the registered "walltext" feature)."""
    if not (DATA / "wall_text.csv").is_file():
        pytest.skip(f"fraud set not found at {DATA}")
    if not _has_rapidocr():
        pytest.skip("rapidocr is not installed")
    from lookalike import Index, models

    for name in ("selfie-segmentation", "pose-detection"):  # the person mask
        models.prepare(name)
    rows = _truth()
    with open(DATA / "labels.csv", newline="", encoding="utf-8") as f:
        labels = list(csv.DictReader(f))
    with open(DATA / "applications.csv", newline="", encoding="utf-8") as f:
        photo_of = {r["application_id"]: r["photo"] for r in csv.DictReader(f)}
    plain = sorted(photo_of[r["application_id"]] for r in labels if r["kind"] == "legit_plain_wall")[:4]
    photos = sorted({r["photo"] for r in rows if r["visible"] >= 0.9 or r["role"] == "decoy"} | set(plain))
    index = Index(tmp_path_factory.mktemp("walltext_index"))
    index.add([DATA / p for p in photos], features=["walltext"], defaults=False, workers=2)
    ids = index.catalog.ids_by_path()
    by_path = {str(Path(p).resolve()): fid for p, fid in ids.items()}
    values = index.feature_values(list(by_path.values()), "walltext")
    walls = {p: values[by_path[str((DATA / p).resolve())]] for p in photos}
    index.close()
    return rows, walls, plain


def test_phone_recall_on_readable_signs(fraud_walls):
    rows, walls, _ = fraud_walls
    sel = [r for r in rows if r["digits"] and r["visible"] >= 0.9]
    hit = sum(r["digits"] in walls[r["photo"]].phones for r in sel)
    # measured 38/50 = 0.76: 7 of the misses are posters whose first digit is under the ring's sticky note,
    # 3 notes photographed out of focus, 1 number behind a raised arm (see bench_ocr.py)
    assert hit / len(sel) >= 0.70, f"{hit}/{len(sel)} phone numbers read"
    posters = [r for r in sel if r["role"] == "ring_poster"]
    assert sum(r["digits"] in walls[r["photo"]].phones for r in posters) >= 0.70 * len(posters)


def test_loan_adverts_found_and_not_invented(fraud_walls):
    rows, walls, plain = fraud_walls
    posters = {r["photo"] for r in rows if r["role"] == "ring_poster" and r["visible"] >= 0.9}
    assert sum(walls[p].loan_ad for p in posters) >= 0.9 * len(posters)  # measured 28/28
    decoys = {r["photo"] for r in rows if r["role"] == "decoy"}
    assert not any(walls[p].loan_ad for p in decoys)  # shop hours, WELCOME, no smoking, a repair sticker
    for p in plain:  # a plain wall: nothing to read
        assert walls[p].phones == [] and not walls[p].loan_ad
    # boxes are in the original photo's pixels: inside the photo, and the phone's line near the sign
    from PIL import Image

    for r in rows:
        if r["visible"] >= 0.9 and r["digits"] in walls[r["photo"]].phones:
            w, h = Image.open(DATA / r["photo"]).size
            x0, y0, x1, y1 = map(float, r["visible_bbox"].split())
            line = next(ln for ln in walls[r["photo"]].lines if r["digits"] in "".join(ocr_text.find_phones(ln.text)))
            bx0, by0, bx1, by1 = line.box
            assert 0 <= bx0 < bx1 <= w + 2 and 0 <= by0 < by1 <= h + 2
            assert x0 - 10 <= (bx0 + bx1) / 2 <= x1 + 10 and y0 - 10 <= (by0 + by1) / 2 <= y1 + 10

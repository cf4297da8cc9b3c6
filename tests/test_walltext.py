"""Wall text: the string classifiers (phones, loan wording, harmless signs, tokens), the WallText value,
bad input, and the OCR's phone recall on the fraud set's readable signs."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np
import pytest

from lookalike.risk import ocr_text
from lookalike.risk.walltext import TextLine, WallText

DATA = Path(os.environ.get("LOOKALIKE_DATA", Path(__file__).resolve().parents[1] / "../shared/data")) / "fraud"


def _has_rapidocr() -> bool:
    try:
        from lookalike.risk.walltext import model_paths

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
    assert WallText.from_bytes(WallText().to_bytes()) == WallText()

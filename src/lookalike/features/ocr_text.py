"""What the text read on a wall means: phone numbers, loan-advert wording, harmless signs, tokens.

Pure string functions (no OCR here), English and Chinese. `walltext.py` applies them to the lines the
OCR read; they are kept apart so they can be tested, tuned and re-applied to stored lines without
running the OCR again.
"""

from __future__ import annotations

import re
import unicodedata

# -- normalisation ------------------------------------------------------------------------------

_DASHES = dict.fromkeys(map(ord, "‐‑‒–—―−－﹣ー一"), "-")  # OCR reads the dash of a CJK sign as 一 or ー


def normalise(text: str) -> str:
    """NFKC (full-width digits and letters become ASCII), one kind of dash, single spaces."""
    t = unicodedata.normalize("NFKC", text or "")
    t = t.translate(_DASHES) if re.search(r"\d", t) else t
    return re.sub(r"\s+", " ", t).strip()


# -- phone numbers ------------------------------------------------------------------------------

# a run of digits with short separators (space, dash, dot, brackets) between them, optional "+"; the OCR
# often glues the next word on ("555-0163ad credit OK"), so letters may touch it
_PHONE_RUN = re.compile(r"(?<![\d+])\+?\(?\d(?:\d|[ \-.()]{1,2}(?=\(?\d)){5,}\d(?!\d)")
# letters the recogniser confuses with digits (O for 0, I/l for 1), fixed only right after a digit or
# dash and when no other letter follows ("555-O1OO" but not "3Olympia")
_LOOKALIKE_DIGITS = re.compile(r"(?<=[\d-])[OoIl|]+(?=[\d-]|[^A-Za-z]|$)")
_AS_DIGIT = str.maketrans("OoIl|", "00111")
_DATE = re.compile(r"^(19|20)\d\d[-./ ](0?[1-9]|1[0-2])[-./ ](0?[1-9]|[12]\d|3[01])$")


def normalise_phone(raw: str) -> str | None:
    """Digits only, with a leading country code removed (+86 / 0086 China, +1 / 001 North America), or
    None when the digits cannot be a phone number (fewer than 7, more than 12, a date)."""
    s = raw.strip()
    if _DATE.match(s):
        return None
    digits = re.sub(r"\D", "", s)
    if s.startswith("+86") or digits.startswith("0086"):
        digits = digits[2:] if s.startswith("+") else digits[4:]
    elif (s.startswith("+1") or digits.startswith("001")) and len(digits.lstrip("0")) == 11:
        digits = digits.lstrip("0")[1:]
    elif len(digits) == 11 and digits.startswith("1") and digits[1] in "2345689" and re.match(r"^1\s*[-(]", s):
        digits = digits[1:]  # 1-415-555-0100: a North-American number dialled with its 1
    if not 7 <= len(digits) <= 12 or len(set(digits)) == 1:
        return None
    return digits


def find_phones(text: str) -> list[str]:
    """Normalised phone numbers in `text`, in reading order, without repeats.
    Times ("09:00-21:00"), prices and short numbers are not phones: the colon is no separator and a
    phone needs 7-12 digits."""
    t = normalise(text)
    t = _LOOKALIKE_DIGITS.sub(lambda m: m.group(0).translate(_AS_DIGIT), t)
    out: list[str] = []
    for m in _PHONE_RUN.finditer(t):
        p = normalise_phone(m.group(0).strip(" -.("))
        if p and p not in out:
            out.append(p)
    return out


def format_phone(digits: str) -> str:
    """Readable form of a normalised number: 555-0100, 138-0013-8000, 0755-1234-5678."""
    if len(digits) == 7:
        return f"{digits[:3]}-{digits[3:]}"
    if len(digits) == 10 and digits[0] != "0":
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    if len(digits) == 11 and digits[0] == "1":
        return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    if digits.startswith("0") and len(digits) >= 10:
        area = 3 if digits[1] in "12" else 4  # Beijing 010, Guangzhou 020... vs 0755
        return f"{digits[:area]}-{digits[area:]}"
    return digits


# -- loan-advert wording ------------------------------------------------------------------------

# English: whole words or phrases (lower case); Chinese: substrings (no word boundaries in Chinese)
LOAN_EN = (
    "loan", "loans", "lender", "lending", "payday", "cash today", "cash now", "fast cash", "quick cash",
    "cash advance", "easy money", "fast money", "quick money", "money today", "no credit check",
    "bad credit", "credit ok", "poor credit", "instant approval", "guaranteed approval", "borrow",
    "no collateral", "low interest", "cash loan",
)
LOAN_ZH = (
    "贷款", "借款", "借钱", "借贷", "放款", "下款", "无抵押", "免抵押", "秒到账", "当天到账", "到账", "征信",
    "急用钱", "额度", "信用贷", "网贷", "小额贷", "包过", "包装资料", "黑户", "白户", "套现", "垫资", "押车",
    "低息", "秒批",
)
_LOAN_EN_RE = re.compile(r"\b(" + "|".join(re.escape(w) for w in sorted(LOAN_EN, key=len, reverse=True)) + r")\b")


def loan_terms(text: str) -> list[str]:
    """The loan-advert words and phrases found in `text` (English or Chinese), longest first."""
    t = normalise(text).lower()
    found = [m.group(1) for m in _LOAN_EN_RE.finditer(re.sub(r"[^a-z0-9]+", " ", t))]
    found += [w for w in LOAN_ZH if w in t.replace(" ", "") and not any(w in f for f in found)]
    return list(dict.fromkeys(found))


def is_loan_ad(text: str) -> bool:
    return bool(loan_terms(text))


# -- harmless signs -----------------------------------------------------------------------------

# Signs every shop, hotel or flat has: on their own they say nothing about fraud.
HARMLESS_EN = (
    "welcome", "open", "closed", "hours", "opening hours", "exit", "entrance", "push", "pull", "no smoking",
    "toilet", "restroom", "wifi", "wi-fi", "delivery", "free delivery", "order", "takeaway", "menu",
    "mon", "fri", "sat", "sun", "daily", "am", "pm", "to", "we", "are", "come", "in", "thank", "you",
    "repair", "repairs", "plumber", "plumbing", "electrician", "locksmith", "service", "24h", "tel", "phone",
)
HARMLESS_ZH = (
    "欢迎光临", "欢迎", "营业时间", "营业中", "营业", "禁止吸烟", "请勿吸烟", "安全出口", "出口", "入口", "推", "拉",
    "福", "外卖", "快递", "送货", "配送", "电话", "维修", "水电", "随叫随到", "开锁", "搬家", "送水", "家政",
    "疏通", "上门", "服务", "周一", "至", "周日", "每天", "全天",
)
_HARMLESS_EN_RE = re.compile(r"\b(" + "|".join(re.escape(w) for w in sorted(HARMLESS_EN, key=len, reverse=True)) + r")\b")
_HARMLESS_ZH_RE = re.compile("|".join(re.escape(w) for w in sorted(HARMLESS_ZH, key=len, reverse=True)))
_TIME_OR_NUMBER = re.compile(r"[\d:.\-/~ ]+")


def is_harmless_line(line: str) -> bool:
    """A line made only of harmless-sign words, times, numbers, phone numbers and punctuation."""
    t = normalise(line).lower()
    t = _HARMLESS_EN_RE.sub(" ", t)
    t = _HARMLESS_ZH_RE.sub(" ", t)
    t = _TIME_OR_NUMBER.sub(" ", t)
    rest = re.sub(r"[^\w]", "", t)
    return len(rest) <= 1  # a stray letter the OCR misread is no content


def is_harmless(lines: list[str]) -> bool:
    """Text was read, none of it loan wording, and every line is a harmless sign (shop hours, WELCOME,
    a delivery or repair number...)."""
    lines = [ln for ln in lines if ln.strip()]
    if not lines or any(is_loan_ad(ln) for ln in lines) or not all(is_harmless_line(ln) for ln in lines):
        return False
    # at least one real harmless phrase: a stray "S" or "425" the OCR read on a texture is no sign at all
    return any(_HARMLESS_EN_RE.search(normalise(ln).lower()) or _HARMLESS_ZH_RE.search(ln) for ln in lines)


# -- tokens compared between photos -------------------------------------------------------------

# words that say nothing about which place a photo was taken in: loan vocabulary (shared by every
# loan advert: it would link different rings), harmless-sign words and common English words
_GENERIC_WORDS = {w for p in LOAN_EN + HARMLESS_EN for w in p.split()} | {
    "call", "text", "today", "cash", "money", "credit", "check", "fast", "easy", "quick", "ask", "for",
    "with", "your", "this", "that", "from", "here", "have", "only", "more", "best", "free", "now", "what",
    "when", "where", "will", "they", "them", "then", "than", "there", "their", "about", "please", "good",
    "great", "sale", "shop", "store", "http", "https", "www", "com",
}
_GENERIC_ZH = set(HARMLESS_ZH)


def tokens(lines: list[str]) -> list[str]:
    """Distinctive strings to compare between photos: phone numbers ("tel:" + digits), other numbers of
    5+ digits ("num:"), Latin words of 4+ letters that are not generic (lower case) and runs of 3+
    Chinese characters (a Chinese character carries about what a short English word does)."""
    out: list[str] = []
    text = " / ".join(lines)
    phones = find_phones(text)
    out += [f"tel:{p}" for p in phones]
    t = normalise(text).lower()
    # part of a number (a sign half hidden by another, a number the OCR cut short): still the same wall
    out += [f"num:{d}" for d in (re.sub(r"\D", "", m) for m in re.findall(r"\d[\d -]{4,}\d", t))
            if 5 <= len(d) and not any(d in p for p in phones)]
    out += [w for w in re.findall(r"[a-z][a-z0-9']{3,}", t) if w.strip("'") not in _GENERIC_WORDS]
    out += [r for r in re.findall(r"[\u3400-\u9fff]{3,}", t) if r not in _GENERIC_ZH]
    return list(dict.fromkeys(out))

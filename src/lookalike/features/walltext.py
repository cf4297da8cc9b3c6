"""Wall text: what is written behind the applicant (OCR of the background, the person masked out).

Fraud rings photograph their "applicants" in one room, and rooms carry posters: a loan advert with a
phone number, a sticky note with the organiser's name. `read_wall_text` reads the background of one
photo with the PP-OCR detector and recogniser shipped inside the `rapidocr` wheel (Chinese + English,
onnxruntime, no download) and `ocr_text` says what the lines mean: phone numbers, loan wording,
harmless signs, and tokens to compare between photos.

The registered feature "walltext" stores the lines read (JSON); everything else is derived from the
lines when the value is decoded, so better classifiers need no new OCR run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from lookalike.errors import ModelMissing
from lookalike.features.registry import Extractor, register
from lookalike.imageio import Decoded
from lookalike.features import ocr_text

OCR_SIDE = 1280  # long side the background is read at (larger photos are downscaled first)
DET_SIDE = 960  # long side the text detector sees (the recogniser cuts the lines out of the OCR_SIDE image)
SHARPEN = (2.0, 1.5)  # unsharp mask (sigma px, amount) before reading: phone photos of a wall are soft
UNCLIP = 1.6  # how far the detector's text regions are grown (rapidocr default 1.6)
MIN_SCORE = 0.6  # recogniser confidence below which a line is dropped (noise on textured walls)
PERSON_DILATE = 0.01  # the person mask grown by this share of the long side before it is painted over

_MODELS = {  # inside the rapidocr wheel: PP-OCRv6 small detector + recogniser (keys inside the ONNX), v2 angle classifier
    "Det": "PP-OCRv6_det_small.onnx",
    "Rec": "PP-OCRv6_rec_small.onnx",
    "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}


@dataclass(frozen=True)
class TextLine:
    text: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the original photo's pixels
    score: float  # recogniser confidence in [0, 1]


@dataclass
class WallText:
    """The text read in a photo's background and what it means. Build it with `from_lines`."""

    lines: list[TextLine] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)  # normalised: digits only, country code removed
    loan_ad: bool = False  # loan-advert wording (English or Chinese) in any line
    loan_terms: list[str] = field(default_factory=list)  # the loan words found
    tokens: list[str] = field(default_factory=list)  # distinctive strings to compare between photos
    harmless: bool = False  # text was read and all of it is harmless signage (hours, WELCOME, ...)

    @classmethod
    def from_lines(cls, lines: list[TextLine]) -> "WallText":
        texts = [ln.text for ln in lines]
        joined = " / ".join(texts)
        terms = ocr_text.loan_terms(joined)
        return cls(list(lines), ocr_text.find_phones(joined), bool(terms), terms, ocr_text.tokens(texts),
                   ocr_text.is_harmless(texts))

    @property
    def text(self) -> str:
        return " / ".join(ln.text for ln in self.lines)

    def evidence(self, max_chars: int = 80) -> str:
        """One sentence for an analyst, e.g. 'wall text "FAST LOANS / call 555-0100" (loan advert, phone 555-0100)'."""
        if not self.lines:
            return "no wall text"
        # the lines that matter first (loan wording, phone numbers), then the rest in reading order
        key = [not (ocr_text.is_loan_ad(ln.text) or ocr_text.find_phones(ln.text)) for ln in self.lines]
        text = " / ".join(ln.text for _, ln in sorted(zip(key, self.lines), key=lambda kl: kl[0]))
        text = text if len(text) <= max_chars else text[: max_chars - 1] + "…"
        what = []
        if self.loan_ad:
            what.append("loan advert")
        if self.phones:
            what.append(("phones " if len(self.phones) > 1 else "phone ")
                        + ", ".join(ocr_text.format_phone(p) for p in self.phones))
        if self.harmless:
            what.append("harmless signage")
        return f'wall text "{text}"' + (f" ({', '.join(what)})" if what else "")

    def to_bytes(self) -> bytes:
        """JSON of the lines (the rest is derived from them on load)."""
        rows = [[ln.text, list(ln.box), round(ln.score, 4)] for ln in self.lines]
        return json.dumps({"v": 1, "lines": rows}, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, blob: bytes) -> "WallText":
        data = json.loads(bytes(blob).decode())
        return cls.from_lines([TextLine(t, tuple(int(v) for v in b), float(s)) for t, b, s in data["lines"]])


# -- the OCR engine (one per process, created on first use) ---------------------------------------

_engine = None


def model_paths() -> dict[str, Path]:
    """The ONNX files inside the installed rapidocr package; ModelMissing when rapidocr is absent."""
    try:
        import rapidocr
    except ImportError:
        raise ModelMissing("rapidocr (pip install --no-deps rapidocr, see the README's Wall text section)") from None
    root = Path(rapidocr.__file__).parent / "models"
    paths = {k: root / v for k, v in _MODELS.items()}
    for p in paths.values():
        if not p.is_file():  # rapidocr would download it: never at run time
            raise ModelMissing(f"rapidocr model {p.name} (not inside the installed wheel)")
    return paths


def engine(threads: int | None = None):
    """The RapidOCR pipeline on the models inside the wheel (explicit paths: rapidocr never downloads).
    threads: onnxruntime intra-op threads (default: OMP_NUM_THREADS, else 1, as in the index workers)."""
    global _engine
    if _engine is None:
        from rapidocr import RapidOCR

        threads = threads or int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
        params = {f"{k}.model_path": str(p) for k, p in model_paths().items()}
        params.update({
            "Global.log_level": "error",
            "Global.use_cls": False,  # signs on a wall are upright (a few degrees of camera roll)
            "Global.max_side_len": OCR_SIDE,
            "Det.limit_type": "max",
            "Det.limit_side_len": DET_SIDE,
            "Det.unclip_ratio": UNCLIP,
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        })
        _engine = RapidOCR(params=params)
    return _engine


# -- reading one photo ------------------------------------------------------------------------------


def segment_person(rgb: np.ndarray) -> np.ndarray:
    """The engine's person probability (H x W float32) for `rgb`."""
    from lookalike.features.background import segmenter

    return segmenter().mask(rgb).astype(np.float32)


def mask_person(rgb: np.ndarray, person: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """`rgb` with the (slightly grown) person replaced by background pixels drawn at random.

    Not a flat colour: the PP-OCRv6 detector looks at the whole frame, and a large flat patch drops its
    text probabilities everywhere (measured: no line found on photos whose plain reading finds four).
    Shuffled background pixels keep the frame's statistics and hold no strokes the detector could take
    for text."""
    from lookalike.features.background import keep_mask

    H, W = rgb.shape[:2]
    person = np.asarray(person, dtype=np.float32)
    if person.max(initial=0.0) > 1.0:  # a 0/255 mask
        person = person / 255.0
    if person.shape != (H, W):
        person = cv2.resize(person, (W, H), interpolation=cv2.INTER_LINEAR)
    keep = keep_mask(person, dilate=PERSON_DILATE) > 0.5
    if keep.all():
        return rgb
    out = rgb.copy()
    hidden = ~keep
    rng = np.random.default_rng(seed)
    source = rgb[keep] if keep.sum() >= 64 else np.full((1, 3), 128, np.uint8)
    out[hidden] = source[rng.integers(0, len(source), int(hidden.sum()))]
    return out


def sharpen(rgb: np.ndarray) -> np.ndarray:
    """Unsharp mask: on the soft, JPEG-compressed signs of phone photos it made the detector find lines it
    missed (small print under a large headline) and the recogniser read the last digits of numbers."""
    sigma, amount = SHARPEN
    if amount <= 0:
        return rgb
    return cv2.addWeighted(rgb, 1 + amount, cv2.GaussianBlur(rgb, (0, 0), sigma), -amount, 0)


def _as_rgb(img) -> np.ndarray | None:
    """A uint8 H x W x 3 array, or None when `img` is not a usable picture (empty, tiny, wrong shape)."""
    a = np.asarray(img) if img is not None else None
    if a is None or a.ndim not in (2, 3) or a.size == 0 or min(a.shape[:2]) < 8:
        return None
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = cv2.cvtColor(a, cv2.COLOR_GRAY2RGB)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    elif a.shape[2] != 3:
        return None
    return np.ascontiguousarray(a)


def read_wall_text(rgb: np.ndarray, person_mask: np.ndarray | None = None, *,
                   size: tuple[int, int] | None = None) -> WallText:
    """OCR of the background of one photo (RGB uint8), the person painted over first.

    person_mask: H x W person probability (or 0/255 mask) at any resolution; None = the engine's person
    segmentation. size: (width, height) of the original photo when `rgb` is a downscaled copy, so that
    the boxes come back in the original's pixels. An empty or tiny picture gives an empty WallText."""
    a = _as_rgb(rgb)
    if a is None:
        return WallText()
    width, height = size or (a.shape[1], a.shape[0])
    s = min(1.0, OCR_SIDE / max(a.shape[:2]))
    if s < 1.0:
        a = cv2.resize(a, (max(1, round(a.shape[1] * s)), max(1, round(a.shape[0] * s))), interpolation=cv2.INTER_AREA)
    person = segment_person(a) if person_mask is None else person_mask
    masked = sharpen(mask_person(a, person))
    result = engine()(cv2.cvtColor(masked, cv2.COLOR_RGB2BGR))
    if result is None or getattr(result, "boxes", None) is None or result.txts is None:
        return WallText()
    fx, fy = width / a.shape[1], height / a.shape[0]
    lines = []
    for poly, text, score in zip(result.boxes, result.txts, result.scores):
        text = ocr_text.normalise(text)
        if score < MIN_SCORE or not any(ch.isalnum() for ch in text):
            continue
        poly = np.asarray(poly, dtype=np.float32)
        x0, y0 = poly.min(0)
        x1, y1 = poly.max(0)
        box = (int(round(x0 * fx)), int(round(y0 * fy)), int(round(x1 * fx)), int(round(y1 * fy)))
        lines.append(TextLine(text, box, float(score)))
    lines.sort(key=lambda ln: (ln.box[1] // max(8, (ln.box[3] - ln.box[1]) // 2), ln.box[0]))  # reading order
    return WallText.from_lines(lines)


# -- the registered feature ----------------------------------------------------------------------


@register
class WallTextFeature(Extractor):
    """Lines of text read in the background (person masked), stored as JSON; decode() gives a WallText."""

    name, kind, dim = "walltext", "blob", 0
    version = f"ppocrv6-small/ocr{OCR_SIDE}/det{DET_SIDE}/sharp{SHARPEN[0]:g}x{SHARPEN[1]:g}/min{MIN_SCORE:g}/v1"

    def compute(self, img: Decoded) -> bytes:
        from lookalike.features.background import background_info

        person = background_info(img).person  # computed once per image, shared with the background features
        return read_wall_text(img.rgb, person, size=(img.width, img.height)).to_bytes()

    def decode(self, blob: bytes) -> WallText:
        return WallText.from_bytes(blob)

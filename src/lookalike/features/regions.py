"""Picture regions of a composite image: a photo shown small in a screenshot, photos pasted into a
collage. Copy candidates come from a whole-image CNN descriptor, which a photo filling a quarter of a
desktop screenshot does not dominate; each region found here gets descriptors of its own (CNN, SIFT,
thumbnail), so the region finds its original as a crop would.

A region is what the frame's background does not explain. The background is learned from the
frame's outer ring: a screenshot's UI, a collage's stripes, checks or noise are a few colours and
mixtures of two of them (anti-aliased text, JPEG, downscaling all mix two colours), so a pixel close
to a segment between two ring colours is background. What remains, opened to drop thin text strokes,
falls into connected parts; a part that is large, fills most of its box and is not the whole frame is
a region. A photograph's own ring is not a few colours, so ordinary photos get no region (and cost
nothing more).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from lookalike.features import registry
from lookalike.features.local import LocalFeatures, extract_local
from lookalike.features.registry import Extractor, register
from lookalike.imageio import Decoded

VERSION = "regions256/v4"  # bump when find_regions changes: stored regions are recomputed

SIDE = 256  # long side the regions are found at
RING = 0.04  # width of the outer ring, as a share of each side
MAX_COLOURS = 4  # ring colours (quantised) modelled as background
MIN_RING_EXPLAINED = 0.85  # a ring the colours explain less than this is a photograph's: no regions
MIN_SIDES_EXPLAINED = 0.95  # ... or each of two opposite sides explained this well (flat UI above and below)
MIX_DISTANCE = 12.0  # RGB distance to a two-colour mixture under which a pixel is background
MIN_AREA, MAX_AREA = 0.02, 0.7  # a region's box, as a share of the frame
MIN_FILL = 0.8  # share of a region's box that is foreground
MIN_EDGE = 0.6  # ... and of each edge of the box (see _straight_edges)
MAX_REGIONS = 4
TRIM, MAX_TRIM = 0.5, 0.03  # outer rows (columns) of a part's box less foreground than this, up to this share
# of its side, are not the picture's: a stray stroke touching it; more is a shape, no picture (a person)
FINE_SIDE = 320  # a region smaller than this (long side, working pixels) is described from a finer decoding
MAX_FINER = 3072  # ... of at most this long side


def _ring(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    t, s = max(1, round(h * RING)), max(1, round(w * RING))
    return np.concatenate([img[:t].reshape(-1, 3), img[-t:].reshape(-1, 3),
                           img[t:-t, :s].reshape(-1, 3), img[t:-t, -s:].reshape(-1, 3)]).astype(np.float32)


def _ring_colours(ring: np.ndarray) -> np.ndarray:
    """The ring's dominant colours: means of the most frequent 32-level colour bins."""
    q = (ring // 32).astype(np.int32)
    code = q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2]
    counts = np.bincount(code, minlength=512)
    top = [c for c in np.argsort(-counts)[:MAX_COLOURS] if counts[c] >= 0.02 * len(ring)]
    return np.array([ring[code == c].mean(0) for c in top], np.float32).reshape(-1, 3)


def _mixture_distance(px: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Distance of each pixel (n, 3) to the nearest segment between two colours (or a colour),
    computed once per distinct colour (quantised to steps of 8)."""
    q = px.astype(np.int32) >> 3
    code = (q[:, 0] << 10) | (q[:, 1] << 5) | q[:, 2]
    present = np.flatnonzero(np.bincount(code, minlength=32768))
    centres = np.stack([present >> 10, (present >> 5) & 31, present & 31], 1).astype(np.float32) * 8 + 3.5
    lut = np.zeros(32768, np.float32)
    lut[present] = _segment_distance(centres, colours)
    return lut[code]


def _segment_distance(px: np.ndarray, colours: np.ndarray) -> np.ndarray:
    best = np.full(len(px), np.inf, np.float32)
    for i in range(len(colours)):
        for j in range(i, len(colours)):
            a, d = colours[i], colours[j] - colours[i]
            dd = float(d @ d)
            t = np.clip((px - a) @ d / dd, 0, 1) if dd > 1e-6 else np.zeros(len(px), np.float32)
            r = px - a - t[:, None] * d
            best = np.minimum(best, np.sqrt((r * r).sum(1)))
    return best


def _straight_edges(part: np.ndarray) -> float:
    """How rectangular a part is: the foreground share of its box's second best-filled edge (2 px
    deep). A pasted picture fills its box to the edges (but where its content has the background's
    colour, as a white sky on a white page); a blob of a photograph touches its box at points."""
    return float(sorted([part[:2].mean(), part[-2:].mean(), part[:, :2].mean(), part[:, -2:].mean()])[2])


def _trimmed(part: np.ndarray) -> tuple[int, int, int, int]:
    """The part's box (x0, y0, x1, y1, in its own pixels) without the few outer rows and columns that
    are mostly background: a stray stroke of text or a JPEG speck touching a pasted picture widens its
    bounding box by a few pixels whose edges the picture does not fill."""
    def span(filled: np.ndarray) -> tuple[int, int]:
        n, k = len(filled), int(len(filled) * MAX_TRIM)
        start = next((i for i in range(k) if filled[i]), k)
        end = next((n - i for i in range(k) if filled[n - 1 - i]), n - k)
        return start, end

    (x0, x1), (y0, y1) = span(part.mean(0) >= TRIM), span(part.mean(1) >= TRIM)
    return x0, y0, x1, y1


def _explained(px: np.ndarray, colours: np.ndarray) -> float:
    return float((_mixture_distance(px, colours) < MIX_DISTANCE).mean()) if len(colours) else 0.0


def _background_colours(small: np.ndarray) -> np.ndarray | None:
    """The frame's background colours, or None for a photograph. A picture as wide (or as tall) as
    the frame, as in a phone screenshot, gives its colours to the ring's sides that it touches: then
    two opposite sides that the same few colours explain almost entirely (the UI above and below it)
    are the background. Otherwise the whole outer ring is (a screenshot's UI, a collage's pattern)."""
    h, w = small.shape[:2]
    t, s = max(1, round(h * RING)), max(1, round(w * RING))
    for sides in ((small[:t], small[-t:]), (small[:, :s], small[:, -s:])):
        px = [np.ascontiguousarray(x).reshape(-1, 3).astype(np.float32) for x in sides]
        colours = _ring_colours(np.concatenate(px))
        if min(_explained(x, colours) for x in px) >= MIN_SIDES_EXPLAINED:
            return colours
    ring = _ring(small)
    colours = _ring_colours(ring)
    return colours if _explained(ring, colours) >= MIN_RING_EXPLAINED else None


def find_regions(rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1) in rgb's pixels of the pictures inside a composite frame, largest first;
    [] for an ordinary photograph."""
    h, w = rgb.shape[:2]
    s = SIDE / max(h, w)
    small = cv2.resize(rgb, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA) \
        if s < 1 else rgb
    sh, sw = small.shape[:2]
    colours = _background_colours(small)
    if colours is None:
        return []
    fg = (_mixture_distance(small.reshape(-1, 3).astype(np.float32), colours) >= MIX_DISTANCE).reshape(sh, sw)
    fg = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    boxes = []
    for i in range(1, n):
        x, y, bw, bh, _ = stats[i]
        if bw * bh < MIN_AREA * sh * sw:
            continue
        x0, y0, x1, y1 = _trimmed(labels[y:y + bh, x:x + bw] == i)
        part = labels[y + y0:y + y1, x + x0:x + x1] == i
        box_share = part.size / float(sh * sw)
        if MIN_AREA <= box_share <= MAX_AREA and part.mean() >= MIN_FILL and min(part.shape) >= 8 \
                and _straight_edges(part) >= MIN_EDGE:
            boxes.append((box_share, (x + x0, y + y0, x + x1, y + y1)))
    boxes.sort(key=lambda b: -b[0])
    inv = 1.0 / s if s < 1 else 1.0
    return [(max(0, int(x0 * inv)), max(0, int(y0 * inv)), min(w, int(round(x1 * inv))), min(h, int(round(y1 * inv))))
            for _, (x0, y0, x1, y1) in boxes[:MAX_REGIONS]]


@dataclass
class Region:
    """One picture inside a composite frame, with what copy verification needs of it."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the working image's pixels
    cnn: np.ndarray  # CNN descriptor of the region alone (the `cnn` feature's space)
    local: LocalFeatures  # SIFT of the region alone, in its crop's pixels (of a finer decoding if small)
    thumb: np.ndarray  # 128 px grey thumbnail of the region (photometric.thumb)


_MAGIC = b"LRG1"


def describe(rgb: np.ndarray, net, finer: Callable[[int], np.ndarray] | None = None) -> list[Region]:
    """The regions of one working image with their descriptors (net: the `cnn` feature's network).
    finer(side): the image decoded again at up to that long side (Decoded.finer); a picture shown
    small in a large screenshot is then described from its own pixels, not the working image's."""
    from lookalike.search.photometric import thumb

    boxes = find_regions(rgb)
    source = rgb
    if boxes and finer is not None:
        smallest = min(max(x1 - x0, y1 - y0) for x0, y0, x1, y1 in boxes)
        if smallest < FINE_SIDE:
            source = finer(min(MAX_FINER, math.ceil(max(rgb.shape[:2]) * FINE_SIDE / smallest)))
    fy, fx = source.shape[0] / rgb.shape[0], source.shape[1] / rgb.shape[1]
    crops = [np.ascontiguousarray(source[round(y0 * fy):round(y1 * fy), round(x0 * fx):round(x1 * fx)])
             for x0, y0, x1, y1 in boxes]
    vecs = net.embed(crops) if crops else []
    return [Region(b, v, extract_local(c), thumb(c)) for b, v, c in zip(boxes, vecs, crops)]


def to_bytes(regions: list[Region]) -> bytes:
    from lookalike.features import local as L
    from lookalike.search import photometric as P

    out = [_MAGIC, struct.pack("<I", len(regions))]
    for r in regions:
        lb, tb, vb = L.to_bytes(r.local), P.to_bytes(r.thumb), np.asarray(r.cnn, np.float16).tobytes()
        out += [struct.pack("<4HIII", *r.box, len(vb), len(lb), len(tb)), vb, lb, tb]
    return b"".join(out)


def from_bytes(b: bytes) -> list[Region]:
    from lookalike.features import local as L
    from lookalike.search import photometric as P

    if b[:4] != _MAGIC:
        raise ValueError("not a lookalike regions blob (wrong magic): recompute the features")
    (n,), pos, out = struct.unpack_from("<I", b, 4), 8, []
    head = struct.Struct("<4HIII")
    for _ in range(n):
        *box, nv, nl, nt = head.unpack_from(b, pos)
        pos += head.size
        vec = np.frombuffer(b, np.float16, nv // 2, pos).astype(np.float32)
        lf = L.from_bytes(b[pos + nv: pos + nv + nl])
        th = P.from_bytes(b[pos + nv + nl: pos + nv + nl + nt])
        pos += nv + nl + nt
        out.append(Region(tuple(box), vec, lf, th))
    return out


@register
class Regions(Extractor):
    """Pictures inside a composite frame (screenshot, collage), each with its own CNN descriptor,
    SIFT and thumbnail: copy candidates and verification of a picture shown small in a large frame.
    Empty (a few bytes, ~5 ms) for an ordinary photograph."""

    name, kind, dim, needs_model = "regions", "blob", 0, "efficientnet-lite0"

    def __init__(self):
        self.net = registry.get("cnn").net  # the `cnn` feature's network: region vectors search its index
        self.version = f"{VERSION}/{self.net.name}/v{self.net.version}"

    def compute(self, img: Decoded) -> bytes:
        return to_bytes(describe(img.rgb, self.net, img.finer))

    def decode(self, blob: bytes):
        return from_bytes(blob)

"""Generic CNN image descriptor: EfficientNet-Lite conv features + GeM pooling, run with onnxruntime.

Used for "similar" search (same place / object), as a robust signal for copy search, and, with the person
masked out of the pooling, for "same background" search. Descriptors are float32, L2-normalised, so the dot
product is the cosine similarity.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from lookalike import models

STRIDE = 32  # the network's total stride: input sides must be multiples of it
_LAYERS = {"head": 1280, "block": 320}
_DIMS = {("efficientnet-lite0", "block"): 320, ("efficientnet-lite2", "block"): 352}


def _fit(img: np.ndarray, shape: tuple[int, int], resize: str) -> np.ndarray:
    """Resize `img` (HxW or HxWxC) to `shape` (h, w): 'squash' stretches the whole image,
    'crop' scales the shorter side and crops the centre."""
    h, w = shape
    if resize == "crop":
        ih, iw = img.shape[:2]
        s = max(h / ih, w / iw)
        ch, cw = min(ih, round(h / s)), min(iw, round(w / s))
        y, x = (ih - ch) // 2, (iw - cw) // 2
        img = img[y : y + ch, x : x + cw]
    interp = cv2.INTER_AREA if img.shape[0] > h else cv2.INTER_LINEAR
    return cv2.resize(img, (w, h), interpolation=interp)


def _input_shape(hw: tuple[int, int], size: int, resize: str) -> tuple[int, int]:
    """Network input (h, w) for an image of size hw: size x size, or for 'aspect' the image's aspect ratio
    with about size^2 pixels, both sides rounded to multiples of 32 (so a few shapes cover most photos)."""
    if resize != "aspect":
        return size, size
    ih, iw = hw
    r = (ih / max(iw, 1)) ** 0.5
    r = min(max(r, 0.5), 2.0)  # very long panoramas are squashed to 2:1 rather than starved of pixels
    h = max(STRIDE, round(size * r / STRIDE) * STRIDE)
    w = max(STRIDE, round(size / r / STRIDE) * STRIDE)
    return h, w


def _as_rgb(img: np.ndarray) -> np.ndarray:
    if img.dtype != np.uint8:
        raise ValueError(f"CNN input images must be uint8 RGB (HxWx3), got {img.dtype}: decode with lookalike.imageio")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return np.ascontiguousarray(img[:, :, :3])
    return img


def gem(fmap: np.ndarray, weights: np.ndarray | None = None, *, p: float = 3.0, eps: float = 1e-6) -> np.ndarray:
    """Generalised-mean pooling of B x C x h x w maps -> B x C, optionally weighted by B x h x w weights."""
    x = np.maximum(fmap, eps) ** p
    if weights is None:
        m = x.mean(axis=(2, 3))
    else:
        w = weights[:, None, :, :]
        m = (x * w).sum(axis=(2, 3)) / np.maximum(w.sum(axis=(2, 3)), eps)
    return np.maximum(m, eps) ** (1.0 / p)


def l2n(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class CnnDescriptor:
    """EfficientNet-Lite feature map -> GeM (p=3) -> L2-normalised float32 descriptor.

    size: network input side (a multiple of 32); scales: extra sizes whose descriptors are averaged in
    (multi-scale); resize: 'squash' (whole image to size x size), 'crop' (shorter side + centre crop) or
    'aspect' (aspect ratio kept, about size^2 pixels); layer: 'head' (1280-d) or 'block' (last block, 320-d).
    The ONNX session is created on first use (threads = onnxruntime intra-op threads). batch: images per
    ONNX run; one at a time was fastest on one core (11 ms vs 13-15 ms per image at 16: the activations
    of one image stay in cache).

    Defaults chosen by benchmarks/bench_cnn.py (retrieval mAP, copy recall, speed): 224 px beat 256-320 px
    and multi-scale 224+320; 'aspect' beat 'squash' on retrieval (0.81 vs 0.77 mAP) at equal cost; the
    1280-d head matched the 320-d block on retrieval and was better on copies.
    """

    version = "1"

    def __init__(
        self,
        model: str = "efficientnet-lite0",
        *,
        size: int = 224,
        scales: Sequence[int] = (),
        resize: str = "aspect",
        layer: str = "head",
        p: float = 3.0,
        mask_power: float = 8.0,
        threads: int = 1,
        batch: int = 1,
    ):
        if size % STRIDE or any(s % STRIDE for s in scales):
            raise ValueError(f"CNN input sizes must be multiples of {STRIDE}, got {size} {tuple(scales)}")
        if resize not in ("squash", "crop", "aspect"):
            raise ValueError(f"resize must be 'squash', 'crop' or 'aspect', got {resize!r}")
        if layer not in _LAYERS:
            raise ValueError(f"layer must be one of {sorted(_LAYERS)}, got {layer!r}")
        self.model = model
        self.sizes = (size, *[s for s in scales if s != size])
        self.resize = resize
        self.layer = layer
        self.p = p
        self.mask_power = mask_power
        self.threads = threads
        self.batch = batch
        self._session = None

    @property
    def name(self) -> str:
        """Identifies the descriptor space: vectors with different names are not comparable."""
        sizes = "+".join(map(str, self.sizes))
        return f"cnn:{self.model}:{self.layer}:{self.resize}{sizes}:gem{self.p:g}"

    @property
    def masked_name(self) -> str:
        """Like name, for descriptors from embed_masked."""
        return f"{self.name}:mask{self.mask_power:g}"

    @property
    def dim(self) -> int:
        return _DIMS.get((self.model, self.layer), _LAYERS[self.layer])

    def __getstate__(self):  # picklable for worker processes: each one opens its own session
        return {**self.__dict__, "_session": None}

    def _sess(self):
        if self._session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._session = ort.InferenceSession(
                str(models.path(self.model)), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        return self._session

    def feature_maps(self, images: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
        """Feature maps B x C x h/32 x w/32 of images already resized to `shape` (h, w)."""
        x = np.stack([_as_rgb(im) for im in images])  # uint8 B x h x w x 3, as the graph takes it
        return self._sess().run([self.layer], {"image": x})[0]

    def _pool(self, images, masks) -> np.ndarray:
        n = len(images)
        out = np.zeros((n, self.dim), np.float32)
        for size in self.sizes:
            # Group images by input shape (one shape except in 'aspect' mode), then run in batches.
            shapes = [_input_shape(im.shape[:2], size, self.resize) for im in images]
            for shape in dict.fromkeys(shapes):
                idx = [i for i, s in enumerate(shapes) if s == shape]
                for start in range(0, len(idx), self.batch):
                    part = idx[start : start + self.batch]
                    fmap = self.feature_maps([_fit(images[i], shape, self.resize) for i in part], shape)
                    w = None
                    if masks is not None:
                        # Kept fraction per feature cell, raised to a power: a cell's receptive field reaches
                        # well beyond it, so cells that touch the masked-out part at all must count little.
                        grid = (fmap.shape[3], fmap.shape[2])
                        w = np.stack(
                            [cv2.resize(_fit(masks[i], shape, self.resize), grid, interpolation=cv2.INTER_AREA)
                             for i in part]
                        )
                        w = np.clip(w, 0.0, 1.0) ** self.mask_power
                    out[part] += l2n(gem(fmap, w, p=self.p))
        return l2n(out)

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """RGB uint8 HxWx3 images -> (n, dim) float32, L2-normalised."""
        if len(images) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self._pool(list(images), None)

    def embed_masked(
        self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray], *, return_kept: bool = False
    ):
        """Like embed, but each image's pooling is weighted by its mask (float HxW in [0, 1], 1 = keep),
        e.g. the background with the person masked out. With return_kept, also returns the kept fraction
        of each image (mask mean): a descriptor from a few percent of the image is unreliable.

        For "same background" search use CnnDescriptor(layer="block", size=320): on the background set
        with ground-truth person masks it reached 0.83 mAP vs 0.75 for the default (head, 224 px)
        and 0.50 for unmasked block features."""
        if len(images) != len(masks):
            raise ValueError(f"embed_masked needs one mask per image, got {len(images)} images, {len(masks)} masks")
        masks = [np.clip(np.asarray(m, np.float32), 0.0, 1.0) for m in masks]
        for im, m in zip(images, masks):
            if m.shape != im.shape[:2]:
                raise ValueError(f"mask shape {m.shape} does not match image shape {im.shape[:2]}")
        if len(images) == 0:
            d = np.zeros((0, self.dim), np.float32)
            return (d, np.zeros(0, np.float32)) if return_kept else d
        d = self._pool(list(images), masks)
        if return_kept:
            return d, np.array([float(m.mean()) for m in masks], np.float32)
        return d


GREY_SIDE = 512  # equalised_grey works at this long side (about twice the CNN input)


def equalised_grey(rgb: np.ndarray) -> np.ndarray:
    """Luminance only, brightened when dark and contrast-equalised locally (CLAHE), as 3 equal channels:
    what a night shot, a thermal frame or another season still shares with a daylight photo (the
    structure, not the colours or the light). A no-op in spirit on well-lit photos. Shrunk to GREY_SIDE
    first: in a dark photo the gamma lift turned full-resolution noise into texture that the CNN's own
    downscaling no longer averaged out (held-out night mAP 0.505 -> 0.521, tune 0.838 -> 0.845)."""
    g = cv2.cvtColor(_as_rgb(rgb), cv2.COLOR_RGB2GRAY)
    h, w = g.shape
    scale = GREY_SIDE / max(h, w)
    if scale < 1:  # average the sensor noise away before the gamma below amplifies it
        g = cv2.resize(g, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    median = float(np.median(g)) / 255.0
    if 0.0 < median < 0.4:  # dark: a gamma that lifts the median to 0.4 (only ever brightens)
        gamma = max(np.log(0.4) / np.log(median), 0.3)
        g = cv2.LUT(g, ((np.arange(256) / 255.0) ** gamma * 255 + 0.5).astype(np.uint8))
    g = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(g)
    return cv2.cvtColor(g, cv2.COLOR_GRAY2RGB)


def fit_pca_whitening(X: np.ndarray, dim: int, *, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Learn PCA whitening on descriptors X (n, d): returns mean (d,) and projection (d, dim).
    dim is capped at min(n - 1, d): more components than samples would whiten noise."""
    X = np.asarray(X, np.float64)
    mean = X.mean(axis=0)
    dim = max(1, min(dim, X.shape[0] - 1, X.shape[1]))
    _, s, vt = np.linalg.svd(X - mean, full_matrices=False)
    var = s[:dim] ** 2 / max(X.shape[0] - 1, 1)
    proj = vt[:dim].T / np.sqrt(var + eps)
    return mean.astype(np.float32), proj.astype(np.float32)


def apply_whitening(X: np.ndarray, mean: np.ndarray, proj: np.ndarray) -> np.ndarray:
    """Centre, project, whiten and L2-normalise descriptors X (n, d) -> (n, dim)."""
    return l2n((np.asarray(X, np.float32) - mean) @ proj)

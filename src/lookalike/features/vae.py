"""`bg_vae`: the bottleneck of a small convolutional variational auto-encoder trained on the index's own
masked backgrounds (`lookalike train vae`), and `fuse`: concatenation of two registered extractors.

The seeds concatenate a CNN's features with an auto-encoder's. The auto-encoder sees the background only:
the picture at 64 x 64 with the person (the engine's dilated mask) filled in from the surrounding
background, so it cannot encode who stands there. Encoder: four 3x3 stride-2 convolutions (16-32-64-64
channels, ReLU) and a linear layer to the mean of a 64-d latent; the decoder mirrors it. Torch at training
time only; the encoder runs in numpy from the weights stored in the index (background-vae.npz); nothing
is shipped. The extractor's version names the weights' digest, so retraining recomputes the stored vectors.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import cv2
import numpy as np

from lookalike.features.registry import Extractor, register
from lookalike.imageio import Decoded

VAE_FILE = "background-vae.npz"
ENV = "LOOKALIKE_BG_VAE"  # weights file in use (set by bind(); inherited by worker processes)
SIDE = 64
LATENT = 64
CHANNELS = (3, 16, 32, 64, 64)


def masked_input(rgb: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """(SIDE, SIDE, 3) float32 in [0, 1]: the background, the person filled by a wide blur of the
    background around it (normalised convolution)."""
    small = cv2.resize(rgb, (SIDE, SIDE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    w = cv2.resize(np.asarray(keep, np.float32), (SIDE, SIDE), interpolation=cv2.INTER_AREA)[:, :, None]
    num = cv2.GaussianBlur(small * w, (0, 0), SIDE / 8)
    den = cv2.GaussianBlur(w, (0, 0), SIDE / 8)[:, :, None]
    fill = np.where(den > 1e-3, num / np.maximum(den, 1e-3), small.mean((0, 1)))
    return (small * w + fill * (1 - w)).astype(np.float32)


def _conv_s2(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3x3 convolution, stride 2, padding 1, NHWC input, torch-layout weights (out, in, 3, 3)."""
    x = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(1, 2))[:, ::2, ::2]  # N,H,W,C,3,3
    return np.einsum("nhwcij,ocij->nhwo", win, w, optimize=True) + b


class Encoder:
    """The auto-encoder's encoder in numpy: masked inputs (N, SIDE, SIDE, 3) -> latent means (N, LATENT)."""

    def __init__(self, params: dict[str, np.ndarray]):
        self.p = params

    def __call__(self, x: np.ndarray) -> np.ndarray:
        h = np.asarray(x, np.float32)
        for n in range(len(CHANNELS) - 1):
            h = np.maximum(_conv_s2(h, self.p[f"conv{n}.weight"], self.p[f"conv{n}.bias"]), 0)
        h = h.transpose(0, 3, 1, 2).reshape(len(h), -1)  # torch's flatten order (C, H, W)
        return (h @ self.p["mu.weight"].T + self.p["mu.bias"]).astype(np.float32)


_ENCODERS: dict[str, tuple[str, Encoder]] = {}


def _bound() -> tuple[str, Encoder] | None:
    path = os.environ.get(ENV)
    if not path or not Path(path).is_file():
        return None
    stamp = f"{path}:{Path(path).stat().st_mtime_ns}"
    if stamp not in _ENCODERS:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
        with np.load(path) as z:
            _ENCODERS[stamp] = (digest, Encoder({k: z[k] for k in z.files}))
    return _ENCODERS[stamp]


def bind(index) -> bool:
    """Use this index's auto-encoder for `bg_vae` (in this process and the workers it starts)."""
    path = Path(index.dir) / VAE_FILE
    if not path.is_file():
        return False
    os.environ[ENV] = str(path)
    return True


@register
class BackgroundVae(Extractor):
    """Latent mean of the index's background auto-encoder (`lookalike train vae`), 64-d."""

    name, kind, dim = "bg_vae", "float", LATENT

    @property
    def version(self) -> str:  # type: ignore[override]
        b = _bound()
        return f"vae{SIDE}/{b[0] if b else 'untrained'}"

    def compute(self, img: Decoded) -> np.ndarray:
        return self.compute_batch([img])[0]

    def compute_batch(self, imgs):
        from lookalike.errors import LookalikeError
        from lookalike.features.background import background_info

        b = _bound()
        if b is None:
            raise LookalikeError("no background auto-encoder: run `lookalike train vae --index IDX` first")
        if not imgs:
            return []
        return list(b[1](np.stack([masked_input(im.rgb, background_info(im).keep) for im in imgs])))


# -- training --------------------------------------------------------------------------------------

def _stored_inputs(index, ids: list[int]) -> tuple[list[int], np.ndarray]:
    """Masked inputs of indexed files from their stored person masks (no segmentation again)."""
    from lookalike.features.background import keep_mask
    from lookalike.imageio import load_file

    masks = index.feature_values(ids, "bg_mask")
    paths = index.catalog.paths(ids)
    used, X = [], []
    for i in ids:
        if i not in masks:
            continue
        try:
            img = load_file(paths[i])
        except Exception:  # unreadable now: already reported by the index
            continue
        H, W = img.rgb.shape[:2]
        person = cv2.resize(masks[i].mask.astype(np.float32) / 255, (W, H), interpolation=cv2.INTER_LINEAR)
        X.append(masked_input(img.rgb, keep_mask(person)))
        used.append(i)
    return used, (np.stack(X) if X else np.zeros((0, SIDE, SIDE, 3), np.float32))


def fit(X: np.ndarray, *, epochs: int = 60, batch: int = 32, lr: float = 2e-3, beta: float = 1e-3,
        seed: int = 0) -> tuple[dict[str, np.ndarray], dict]:
    """Train the VAE on inputs (N, SIDE, SIDE, 3) in [0, 1]; returns the encoder's numpy weights and a report.
    Augmentation: horizontal flips and a small random shift (other shots of the same background)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # tiny matrices: a second thread only spins (3.5x the CPU on the shared machine)
    enc = nn.ModuleDict({f"conv{n}": nn.Conv2d(CHANNELS[n], CHANNELS[n + 1], 3, 2, 1)
                         for n in range(len(CHANNELS) - 1)})
    flat = CHANNELS[-1] * (SIDE // 16) ** 2
    enc["mu"], enc["logvar"] = nn.Linear(flat, LATENT), nn.Linear(flat, LATENT)
    dec = nn.Sequential(nn.Linear(LATENT, flat), nn.Unflatten(1, (CHANNELS[-1], SIDE // 16, SIDE // 16)),
                        *[m for n in range(len(CHANNELS) - 1, 0, -1)
                          for m in (nn.ReLU(), nn.ConvTranspose2d(CHANNELS[n], CHANNELS[n - 1], 4, 2, 1))],
                        nn.Sigmoid())
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=lr)
    data = torch.from_numpy(np.ascontiguousarray(X.transpose(0, 3, 1, 2)))
    rng = np.random.default_rng(seed)
    t0, history = time.perf_counter(), []
    for epoch in range(epochs):
        total = 0.0
        for start in range(0, len(data), batch):
            x = data[rng.permutation(len(data))[start : start + batch]]
            if rng.random() < 0.5:
                x = x.flip(3)
            dy, dx = (int(v) for v in rng.integers(-3, 4, 2))
            x = torch.roll(x, (dy, dx), (2, 3))
            h = x
            for n in range(len(CHANNELS) - 1):
                h = torch.relu(enc[f"conv{n}"](h))
            h = h.flatten(1)
            mu, logvar = enc["mu"](h), enc["logvar"](h).clamp(-8, 8)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            rec = ((dec(z) - x) ** 2).sum((1, 2, 3)).mean()
            kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1).mean()
            loss = rec + beta * SIDE * SIDE * kl / LATENT
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(x)
        if epoch % 10 == 9 or epoch == epochs - 1:
            history.append({"epoch": epoch + 1, "loss": round(total / len(data), 2)})
    params = {k: v.detach().numpy().astype(np.float32) for k, v in enc.state_dict().items()
              if not k.startswith("logvar")}
    return params, {"images": int(len(X)), "epochs": epochs, "history": history,
                    "train_seconds": round(time.perf_counter() - t0, 1)}


def train_vae(index, *, epochs: int = 60, seed: int = 0) -> tuple[Path, dict]:
    """Train on every indexed photo's masked background, store the weights in the index and the
    bottleneck of every photo as the `bg_vae` feature."""
    from lookalike.features.background import BACKGROUND_FEATURES

    index.ensure(list(BACKGROUND_FEATURES[:1]))  # person masks
    ids = sorted(index.catalog.ids_by_path().values())
    t0 = time.perf_counter()
    used, X = _stored_inputs(index, ids)
    if len(used) < 8:
        raise ValueError(f"only {len(used)} usable indexed photos: an auto-encoder needs a few dozen at least")
    prep = time.perf_counter() - t0
    params, report = fit(X, epochs=epochs, seed=seed)
    out = Path(index.dir) / VAE_FILE
    np.savez(out, **params)
    bind(index)
    from lookalike.features import registry

    ex = registry.get("bg_vae")
    Z = _bound()[1](X)
    index.catalog.put_features([(i, {"bg_vae": (ex.version, ex.encode(z))}) for i, z in zip(used, Z)])
    report["prepare_seconds"] = round(prep, 1)
    return out, report


# -- fusion ------------------------------------------------------------------------------------------

def parse_fuse(spec: str, weights: str | None = None) -> list[tuple[str, float]]:
    """"bg_cnn+bg_vae" and "1,0.5" -> [("bg_cnn", 1.0), ("bg_vae", 0.5)] (registered float extractors)."""
    from lookalike.features import registry

    names = [n.strip() for n in spec.split("+") if n.strip()]
    if len(names) < 2:
        raise ValueError(f"--fuse {spec!r}: name two or more features joined by '+', e.g. bg_cnn+bg_vae")
    registry.check(names)
    bad = [n for n in names if registry.get(n).kind != "float"]
    if bad:
        raise ValueError(f"--fuse: {', '.join(bad)} is not a float vector feature")
    w = [1.0] * len(names) if not weights else [float(x) for x in weights.split(",")]
    if len(w) != len(names) or min(w) < 0:
        raise ValueError(f"--fuse weights {weights!r}: one non-negative number per feature")
    return list(zip(names, w))


def fuse(parts: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """Concatenation of (n, d_i) parts, each L2-normalised per row and scaled by sqrt(weight), then the whole
    L2-normalised: the dot product of two fused vectors is the weighted mean of the parts' cosines."""
    out = []
    for x, w in zip(parts, weights):
        x = np.asarray(x, np.float32)
        out.append(np.sqrt(w) * x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))
    f = np.concatenate(out, axis=1)
    return (f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def fused_values(index, ids: list[int], spec: str, weights: str | None = None) -> tuple[list[int], np.ndarray]:
    """Fused vectors of these indexed files (those that have every part)."""
    pw = parse_fuse(spec, weights)
    if any(n == "bg_vae" for n, _ in pw):
        bind(index)
    vals = [index.feature_values(ids, n) for n, _ in pw]
    have = [i for i in ids if all(i in v for v in vals)]
    return have, fuse([np.stack([v[i] for i in have]) for v in vals], [w for _, w in pw])

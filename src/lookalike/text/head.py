"""The trained image-text head: image features and MiniLM text vectors mapped into one space.

Image side: stored features of the engine (CNN descriptors, ImageNet logits; see IMAGE_FEATURES),
standardised, then a small MLP with a linear shortcut -> `dim`, L2-normalised. Text side: the MiniLM vector
plus a learned linear correction (starts at zero, so training starts from MiniLM's own space) -> `dim`,
L2-normalised. Loss (the seed's, plus a contrastive term): the squared difference between an image's
vector and its caption's vector, plus a symmetric InfoNCE over the batch (each caption must pick its
own image among the batch's images and vice versa), which keeps the two sides from collapsing onto
one point.

Training runs on CPU with torch (`train`); the weights are saved as .npz and applied with numpy, so
search needs no torch.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# image features the head reads, in order (all stored, float): the default engine descriptor first
IMAGE_FEATURES = ("cnn", "imagenet", "cnn_lite2")


def image_input(feats: dict[str, np.ndarray], names) -> np.ndarray:
    """Concatenated raw input of the head: L2-normalised descriptors as they are, ImageNet logits as
    log-probabilities (their scale differs per image; the class ranking is what tells)."""
    parts = []
    for n in names:
        x = np.asarray(feats[n], np.float32)
        if n == "imagenet":
            x = x - x.max(axis=1, keepdims=True)
            x = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
            x = np.maximum(x, -20.0)  # very unlikely classes all look alike
        parts.append(x)
    return np.concatenate(parts, axis=1)


def _gelu(x):
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def _l2n(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _image_forward(p: dict, X: np.ndarray) -> np.ndarray:
    """Raw image input -> unit vectors in the joint space (numpy)."""
    x = ((np.asarray(X, np.float32) - p["mu"]) / p["sd"]) @ p["proj"]
    return _l2n(_gelu(x @ p["w1"] + p["b1"]) @ p["w2"] + x @ p["ws"] + p["b2"])


@dataclass
class TextHead:
    params: dict[str, np.ndarray]
    features: tuple[str, ...]
    report: dict = field(default_factory=dict)

    def embed_images(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        return _image_forward(self.params, image_input(feats, self.features))

    def embed_texts(self, t: np.ndarray) -> np.ndarray:
        p = self.params
        t = np.asarray(t, np.float32)
        return _l2n((t + t @ p["wt"]) @ p["pt"])

    def save(self, path: str | Path) -> None:
        path = Path(path)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, features=np.array(self.features), report=np.array(json.dumps(self.report)), **self.params)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "TextHead":
        with np.load(path) as z:
            params = {k: z[k] for k in z.files if k not in ("features", "report")}
            return cls(params, tuple(str(s) for s in z["features"]), json.loads(str(z["report"])))


@dataclass
class TrainConfig:
    dim: int = 384  # joint space
    hidden: int = 512
    components: int = 512  # PCA of the standardised input first: 3.5k inputs are redundant and slow
    epochs: int = 30  # DEV captions: the best held-out epoch was 24 of 30
    batch: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    dropout: float = 0.3  # on the standardised image input: 2-3 thousand images overfit quickly
    temperature: float = 0.05
    mse_weight: float = 1.0  # the seed's image-text difference loss
    seed: int = 0


def train(X: np.ndarray, T: np.ndarray, pair_image: np.ndarray, *, features, config: TrainConfig | None = None,
          val: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None, log=None) -> TextHead:
    """Fit the head on CPU. X: (n_images, d) raw image input (image_input), T: (n_pairs, 384) MiniLM
    vectors, pair_image: (n_pairs,) row of X described by each caption. val: (X, T, pair_image) of
    held-out images, scored each epoch; the weights of the epoch with the best held-out Recall@10 are kept."""
    try:
        import torch
    except ImportError as e:
        raise ValueError("training the text head needs PyTorch: pip install torch==2.13.0 (CPU wheel)") from e
    c = config or TrainConfig()
    torch.manual_seed(c.seed)
    rng = np.random.default_rng(c.seed)
    torch.set_num_threads(1)  # small matrices on a shared machine: more threads mostly contend
    X = np.asarray(X, np.float32)
    mu, sd = X.mean(axis=0), X.std(axis=0) + 1e-4
    Z = (X - mu) / sd
    _, sv, vt = np.linalg.svd(Z, full_matrices=False)
    k = min(c.components, len(sv))
    proj = (vt[:k].T / np.sqrt(np.mean(sv[:k] ** 2) / len(Z))).astype(np.float32)  # unit variance on average
    Xs = torch.from_numpy((Z @ proj).astype(np.float32))
    Tt = torch.from_numpy(np.asarray(T, np.float32))
    d, dt = k, T.shape[1]

    def lin(i, o, scale=1.0):
        return torch.nn.Parameter(torch.randn(i, o) * scale / np.sqrt(i))

    P = {"w1": lin(d, c.hidden), "b1": torch.nn.Parameter(torch.zeros(c.hidden)),
         "w2": lin(c.hidden, c.dim), "ws": lin(d, c.dim, 0.5), "b2": torch.nn.Parameter(torch.zeros(c.dim)),
         "wt": torch.nn.Parameter(torch.zeros(dt, dt)),
         "pt": torch.nn.Parameter(torch.eye(dt, c.dim) if c.dim == dt else torch.randn(dt, c.dim) / np.sqrt(dt))}
    opt = torch.optim.AdamW(P.values(), lr=c.lr, weight_decay=c.weight_decay)
    steps = c.epochs * max(1, int(np.ceil(len(T) / c.batch)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=c.lr, total_steps=steps, pct_start=0.1)
    drop = torch.nn.Dropout(c.dropout)
    F = torch.nn.functional

    def img(x):
        return F.normalize(F.gelu(x @ P["w1"] + P["b1"]) @ P["w2"] + x @ P["ws"] + P["b2"], dim=1)

    def txt(t):
        return F.normalize((t + t @ P["wt"]) @ P["pt"], dim=1)

    def snapshot():
        return {k: v.detach().numpy().copy() for k, v in P.items()}

    best, best_score, history = snapshot(), -1.0, []
    t0 = time.perf_counter()
    for epoch in range(c.epochs):
        order = rng.permutation(len(T))
        total = 0.0
        for start in range(0, len(order), c.batch):
            b = order[start : start + c.batch]
            # one caption per image in a batch: two captions of one image must not be each other's negatives
            _, first = np.unique(pair_image[b], return_index=True)
            b = b[first]
            vi, vt = img(drop(Xs[pair_image[b]])), txt(Tt[b])
            logits = vi @ vt.T / c.temperature
            target = torch.arange(len(b))
            nce = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
            mse = ((vi - vt) ** 2).sum(dim=1).mean()
            loss = nce + c.mse_weight * mse
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(b)
        entry = {"epoch": epoch + 1, "loss": round(total / len(T), 4)}
        if val is not None:
            head = TextHead(snapshot() | {"mu": mu, "sd": sd, "proj": proj}, tuple(features))
            entry["val_recall@10"] = recall_at(head, *val, k=10)
            if entry["val_recall@10"] > best_score:
                best, best_score = snapshot(), entry["val_recall@10"]
        history.append(entry)
        if log and (epoch % 10 == 9 or epoch == c.epochs - 1):
            log(", ".join(f"{k} {v}" for k, v in entry.items()))
    if val is None:
        best = snapshot()
    params = {**best, "mu": mu.astype(np.float32), "sd": sd.astype(np.float32), "proj": proj}
    report = {"epochs": c.epochs, "pairs": int(len(T)), "images": int(len(X)), "features": list(features),
              "final_loss": history[-1]["loss"], "train_seconds": round(time.perf_counter() - t0, 1),
              "config": c.__dict__, "history": history}
    if val is not None:
        report["best_epoch"] = max(history, key=lambda h: h["val_recall@10"])["epoch"]
    return TextHead({k: np.asarray(v, np.float32) for k, v in params.items()}, tuple(features), report)


def ranks(head: TextHead, X: np.ndarray, T: np.ndarray, pair_image: np.ndarray) -> np.ndarray:
    """1-based rank of each caption's own image among all rows of X (raw input, already concatenated)."""
    S = head.embed_texts(T) @ _image_forward(head.params, X).T
    own = S[np.arange(len(T)), pair_image]
    return 1 + (S > own[:, None]).sum(axis=1)


def recall_at(head: TextHead, X, T, pair_image, k: int = 10) -> float:
    return round(float((ranks(head, X, T, pair_image) <= k).mean()), 4)

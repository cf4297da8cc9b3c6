"""`lookalike train pairs`: a Siamese head on the masked background descriptor, trained without labels.

The seeds (CN116386117 / CN116740500 / CN114511717) train a Siamese network that outputs the probability
that two photos show the same background. Labels are rare for a fraud team, so the training pairs are made
from the collection itself: each photo and views of it with another crop and zoom, a small rotation, other
light and white balance, JPEG noise and, for half of them, another person pasted in (cut out of another
photo of the collection with the engine's person mask) are "same background"; different photos are "other
background" (a few of them may in truth share one: InfoNCE tolerates that noise). Labelled pairs from a
groups CSV (path,background) can be used instead.

Every view goes through the real pipeline (person mask, then the masked EfficientNet block descriptor
`bg_cnn`), so the head learns what survives the engine's own masking. The head: g(x) = L2n(x + MLP(x))
on the 320-d descriptor (starting as the identity, so an untrained head is the untrained pipeline), trained
with InfoNCE; then P(same) = sigmoid(a * cos(g(x), g(y)) + b) is fitted on the training pairs.
Weights: numpy .npz in the index (background-pairs.npz); torch only at training time.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

HEAD_FILE = "background-pairs.npz"


def _l2n(x):
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


@dataclass
class PairHead:
    params: dict[str, np.ndarray]
    report: dict = field(default_factory=dict)

    def embed(self, x: np.ndarray) -> np.ndarray:
        p = self.params
        x = np.asarray(x, np.float32)
        return _l2n(x + np.maximum(x @ p["w1"] + p["b1"], 0) @ p["w2"])

    def probability(self, cos: np.ndarray | float) -> np.ndarray:
        """P(same background) from the cosine of two embedded descriptors."""
        return 1 / (1 + np.exp(-(self.params["a"] * np.asarray(cos) + self.params["b"])))

    def raw_scale(self, cos: np.ndarray | float) -> np.ndarray:
        """A head cosine as the raw `bg_cnn` cosine of the same rank among the training pairs, so the background
        mode's global ramp (calibrated on raw cosines) applies unchanged: the head reorders, the scale stays."""
        return np.interp(cos, self.params["cal_head"], self.params["cal_raw"])

    def save(self, path) -> None:
        np.savez(path, report=np.array(json.dumps(self.report)), **self.params)

    @classmethod
    def load(cls, path) -> "PairHead":
        with np.load(path) as z:
            return cls({k: z[k] for k in z.files if k != "report"}, json.loads(str(z["report"])))


# -- views ---------------------------------------------------------------------------------------

def cutout(rgb: np.ndarray, person: np.ndarray) -> np.ndarray | None:
    """RGBA crop of the person (probability map) in `rgb`, or None if there is hardly anyone."""
    m = person > 0.5
    if m.mean() < 0.03:
        return None
    ys, xs = np.nonzero(m)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    a = (np.clip(person[y0:y1, x0:x1], 0, 1) * 255).astype(np.uint8)
    return np.dstack([rgb[y0:y1, x0:x1], a])


def paste(rgb: np.ndarray, person: np.ndarray, rng) -> np.ndarray:
    """`person` (RGBA) pasted at a random place, 40-90% of the frame's height, feet towards the bottom."""
    H, W = rgb.shape[:2]
    s = rng.uniform(0.4, 0.9) * H / person.shape[0]
    ph, pw = max(1, int(person.shape[0] * s)), max(1, int(person.shape[1] * s))
    if pw >= W:
        s2 = (W - 1) / pw
        ph, pw = max(1, int(ph * s2)), W - 1
    p = cv2.resize(person, (pw, ph), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        p = p[:, ::-1]
    y = H - ph - int(rng.uniform(0, 0.1) * H)
    y = max(0, y)
    x = int(rng.integers(0, W - pw + 1))
    out = rgb.astype(np.float32).copy()
    a = p[:, :, 3:4].astype(np.float32) / 255
    region = out[y : y + ph, x : x + pw]
    ph, pw = region.shape[:2]
    region[:] = region * (1 - a[:ph, :pw]) + p[:ph, :pw, :3] * a[:ph, :pw]
    return out.astype(np.uint8)


def augment(rgb: np.ndarray, rng, people: list[np.ndarray]) -> np.ndarray:
    """Another shot of the same background: crop/zoom 0.7-1, rotation +-4 deg, light, white balance,
    maybe a pasted person, JPEG quality 55-92."""
    H, W = rgb.shape[:2]
    s = rng.uniform(0.7, 1.0)
    ch, cw = max(32, int(H * s)), max(32, int(W * s))
    y, x = int(rng.integers(0, H - ch + 1)), int(rng.integers(0, W - cw + 1))
    v = rgb[y : y + ch, x : x + cw]
    M = cv2.getRotationMatrix2D((cw / 2, ch / 2), rng.uniform(-4, 4), 1.05)
    v = cv2.warpAffine(v, M, (cw, ch), borderMode=cv2.BORDER_REFLECT)
    f = v.astype(np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)
    f = f * rng.uniform(0.88, 1.12, size=3)
    v = np.clip(f, 0, 255).astype(np.uint8)
    if people and rng.random() < 0.5:
        v = paste(v, people[int(rng.integers(len(people)))], rng)
    ok, buf = cv2.imencode(".jpg", v[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(55, 93))])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].copy() if ok else v


def _decoded(rgb: np.ndarray):
    from lookalike.imageio import Decoded

    return Decoded(np.ascontiguousarray(rgb), rgb.shape[1], rgb.shape[0], "view", "", "")


def make_views(paths: list[str], *, views: int = 2, seed: int = 0, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """bg_cnn descriptors of each photo and of `views` augmented shots of it:
    (descriptors (n_items, 320), photo index of each item)."""
    from lookalike.features import registry
    from lookalike.features.background import background_info
    from lookalike.imageio import load_file

    rng = np.random.default_rng(seed)
    ex = registry.get("bg_cnn")
    photos, people = [], []
    for p in paths:
        try:
            img = load_file(p)
        except Exception:  # unreadable files are already reported by the index
            continue
        photos.append(img)
        c = cutout(img.rgb, background_info(img).person)
        if c is not None:
            people.append(c)
    X, owner = [], []
    for n, img in enumerate(photos):
        others = [c for c in people]  # any person may stand in front of any background
        items = [img] + [_decoded(augment(img.rgb, rng, others)) for _ in range(views)]
        X += list(ex.compute_batch(items))
        owner += [n] * len(items)
        if progress:
            progress(n + 1, len(photos))
    return np.stack(X).astype(np.float32), np.array(owner)


# -- training ------------------------------------------------------------------------------------

def train(X: np.ndarray, owner: np.ndarray, *, hidden: int = 256, epochs: int = 200, lr: float = 1e-3,
          temperature: float = 0.05, weight_decay: float = 1e-3, seed: int = 0,
          spare: float = 0.9) -> PairHead:
    """InfoNCE over items of one batch (positives: items of the same photo), then P(same) calibration.

    spare: other photos whose raw cosine to an item is above this quantile of that item's cosines are left
    out of its negatives: they are likely other shots of the same background, which plain instance
    discrimination would learn to pull apart (it did: DEV mAP 0.82 -> 0.49 with spare=1)."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # tiny matrices: a second thread only spins (3.5x the CPU on the shared machine)
    Xt = torch.from_numpy(X)
    d = X.shape[1]
    P = {"w1": torch.nn.Parameter(torch.randn(d, hidden) / np.sqrt(d)), "b1": torch.nn.Parameter(torch.zeros(hidden)),
         "w2": torch.nn.Parameter(torch.zeros(hidden, d))}
    opt = torch.optim.AdamW(P.values(), lr=lr, weight_decay=weight_decay)
    same = torch.from_numpy(owner[:, None] == owner[None, :])
    eye = torch.eye(len(X), dtype=torch.bool)
    raw = X @ X.T
    likely = torch.from_numpy(raw > np.quantile(raw, spare, axis=1, keepdims=True)) & ~same
    t0 = time.perf_counter()
    history = []
    for epoch in range(epochs):
        z = torch.nn.functional.normalize(Xt + torch.relu(Xt @ P["w1"] + P["b1"]) @ P["w2"], dim=1)
        logits = (z @ z.T / temperature).masked_fill(eye | likely, -1e9)
        logp = logits.log_softmax(dim=1)
        pos = same & ~eye
        loss = -(logp * pos).sum(1).div(pos.sum(1).clamp(min=1)).mean()  # supervised-contrastive form
        opt.zero_grad()
        loss.backward()
        opt.step()
        if epoch % 20 == 19 or epoch == epochs - 1:
            history.append({"epoch": epoch + 1, "loss": round(loss.item(), 4)})
    params = {k: v.detach().numpy().astype(np.float32) for k, v in P.items()}
    head = PairHead({**params, "a": np.float32(1.0), "b": np.float32(0.0)})
    # P(same) = sigmoid(a cos + b): a 1-d logistic fit on the training pairs (balanced)
    Z = head.embed(X)
    C = Z @ Z.T
    iu = np.triu_indices(len(X), 1)
    y = (owner[:, None] == owner[None, :])[iu]
    c = C[iu]
    from sklearn.linear_model import LogisticRegression

    lr_ = LogisticRegression(class_weight="balanced").fit(c[:, None], y)
    head.params["a"], head.params["b"] = np.float32(lr_.coef_[0, 0]), np.float32(lr_.intercept_[0])
    head.params.update(calibration(X, Z))
    head.report = {"items": int(len(X)), "photos": int(owner.max() + 1), "epochs": epochs,
                   "final_loss": history[-1]["loss"], "train_seconds": round(time.perf_counter() - t0, 1),
                   "history": history}
    return head


def calibration(X: np.ndarray, Z: np.ndarray) -> dict[str, np.ndarray]:
    """Quantile knots matching head cosines to raw cosines over all pairs of the training items (no labels):
    dense at the top, where decisions are made."""
    iu = np.triu_indices(len(X), 1)
    levels = np.unique(np.concatenate([np.linspace(0, 0.99, 100), 1 - np.logspace(-2, -5, 40), [1.0]]))
    raw = np.quantile((X @ X.T)[iu], levels).astype(np.float32)
    head = np.quantile((Z @ Z.T)[iu], levels).astype(np.float32)
    return {"cal_head": np.maximum.accumulate(head), "cal_raw": np.maximum.accumulate(raw)}


def train_pairs(index, *, views: int = 2, epochs: int = 200, max_photos: int = 2000, seed: int = 0,
                progress=None) -> tuple[Path, dict]:
    """Self-supervised training from the index's own photos; saves the head in the index."""
    ids = sorted(index.catalog.ids_by_path().items(), key=lambda kv: kv[1])
    if len(ids) < 8:
        raise ValueError(f"only {len(ids)} indexed photos: a pair head needs a few dozen at least")
    rng = np.random.default_rng(seed)
    chosen = [ids[i][0] for i in sorted(rng.permutation(len(ids))[:max_photos])]
    t0 = time.perf_counter()
    X, owner = make_views(chosen, views=views, seed=seed, progress=progress)
    seconds = time.perf_counter() - t0
    head = train(X, owner, epochs=epochs, seed=seed)
    head.report["view_seconds"] = round(seconds, 1)
    out = Path(index.dir) / HEAD_FILE
    head.save(out)
    return out, head.report


# -- use in search -------------------------------------------------------------------------------

SETTING = "background_pair_head"  # catalog setting: "on" / "off" (written by `train pairs [--use|--no-use]`)
_LOADED: dict[str, tuple[float, PairHead]] = {}


def head_for_search(index, choice: str = "index") -> PairHead | None:
    """The index's pair head if background search should use it, else None.

    choice: "on" / "off", or "index": the index's setting (`train pairs` turns it on, `--no-use` off; none: off).
    The environment variable LOOKALIKE_PAIR_HEAD=on|off overrides both (one run of search/dedup/cluster)."""
    import os

    choice = os.environ.get("LOOKALIKE_PAIR_HEAD", "").strip().lower() or choice
    if choice == "index":
        choice = index.catalog.get_meta(SETTING) or "off"
    if choice != "on":
        return None
    path = Path(index.dir) / HEAD_FILE
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None  # "on" without a trained head: the untrained pipeline
    hit = _LOADED.get(str(path))
    if hit is None or hit[0] != mtime:
        head = PairHead.load(path)
        if "cal_head" not in head.params:
            return None  # trained before calibration was stored: retrain to use it
        hit = _LOADED[str(path)] = (mtime, head)
    return hit[1]

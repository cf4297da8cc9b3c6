"""Background pair head in `--mode background`, labelled-pair training and the background auto-encoder with
feature fusion, on a small part of the background set (every 8th background), heads trained in the test run.

Floors sit below what this subset measured (see the asserts); full-set figures are in the README's
"Background pair head" paragraph.
"""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest

from lookalike import models


@pytest.fixture(scope="module")
def subset(model_cache, data_dir, tmp_path_factory):
    """A small index of every 8th background (background features only) and the set's labels."""
    from lookalike.api import Index
    from lookalike.eval import datasets
    from lookalike.features.background import BACKGROUND_FEATURES

    for name in ("efficientnet-lite0", "selfie-segmentation", "pose-detection"):
        models.prepare(name)
    ds = datasets.read_background(data_dir / "background")
    keep = set(sorted(set(ds.group.values()))[::8])
    images = [k for k in ds.images if ds.group[k] in keep]
    where = tmp_path_factory.mktemp("bgpairs-index")
    with Index.open(where) as idx:
        idx.add([str(ds.files[k]) for k in images], features=list(BACKGROUND_FEATURES), defaults=False)
    return where, ds, images


def cli(*args):
    return subprocess.run([sys.executable, "-m", "lookalike.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def _truth(ds, images):
    paths = {str(ds.files[k]): k for k in images}
    return paths, {tuple(sorted(p)) for p in ds.positive_pairs() if all(k in images for k in p)}


def test_labelled_pairs_training_skips_bad_rows(subset, tmp_path):
    where, ds, images = subset
    rows = [["path_a", "path_b", "same"]]
    for n, a in enumerate(images):
        for b in images[n + 1 :]:
            rows.append([str(ds.files[a]), str(ds.files[b]), int(ds.group[a] == ds.group[b])])
    rows += [[str(ds.files[images[0]]), "only two columns"], [str(ds.files[images[0]]), str(ds.files[images[1]]), "2"],
             [str(tmp_path / "gone.jpg"), str(ds.files[images[1]]), "1"]]
    pairs = tmp_path / "pairs.csv"
    with open(pairs, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    r = cli("train", "pairs", "--pairs", pairs, "--epochs", 60, "--index", where)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert out.count("skipped") == 3 and "line " in out and "gone.jpg" in out and "Traceback" not in out
    assert "background search uses it: off" in out  # a new head is not used until asked

    from lookalike.heads.pairs import PairHead

    head = PairHead.load(where / "background-pairs.npz")
    held = head.report["held_out"]
    # measured: 666 pairs of 37 images, held-out ROC AUC 1.0 for the raw descriptor already, so epoch 0 (identity) kept
    assert head.report["pairs"] == len(rows) - 4 and held["auc_head"] >= 0.9
    r = cli("train", "pairs", "--pairs", tmp_path / "none.csv", "--index", where)
    assert r.returncode == 2 and "cannot read" in r.stderr + r.stdout and "Traceback" not in r.stderr + r.stdout


def test_self_supervised_head_used_by_background_mode(subset, monkeypatch):
    from lookalike.api import Index
    from lookalike.heads.pairs import SETTING, head_for_search, train_pairs
    from lookalike.search.modes import get_mode

    where, ds, images = subset
    paths, positives = _truth(ds, images)
    mode = get_mode("background")
    with Index.open(where) as idx:
        _, report = train_pairs(idx, views=1, epochs=60)
        assert report["items"] == 2 * len(images)
        assert head_for_search(idx) is None  # off until the index says so
        idx.catalog.set_meta(SETTING, "on")
        head = head_for_search(idx)
        assert head is not None
        monkeypatch.setenv("LOOKALIKE_PAIR_HEAD", "off")
        assert head_for_search(idx) is None
        monkeypatch.delenv("LOOKALIKE_PAIR_HEAD")
        # the rank calibration maps the head's cosines monotonically onto raw ones
        c = np.linspace(-1, 1, 41)
        assert np.all(np.diff(head.raw_scale(c)) >= 0)

        found = idx.search([str(ds.files[images[0]])], mode="background", k=5)[0].results
        assert found and "head" in found[0].details
        pairs = mode.pairs(idx, mode.threshold)
        ids = idx.catalog.paths({i for p in pairs for i in p[:2]})
        predicted = {tuple(sorted((paths[ids[a]], paths[ids[b]]))) for a, b, *_ in pairs}
        hard = {tuple(sorted(p)) for p in ds.hard_negative_pairs()}
        tp = len(predicted & positives)
        # measured with the head: precision 1.000, recall 0.865, no same-person pair
        assert tp / max(1, len(predicted)) >= 0.95 and tp / len(positives) >= 0.6 and not predicted & hard
        idx.catalog.set_meta(SETTING, "off")
        found = idx.search([str(ds.files[images[0]])], mode="background", k=5)[0].results
        assert found and "head" not in found[0].details


def test_background_autoencoder_and_fusion(subset):
    import torch

    from lookalike.api import Index
    from lookalike.features import vae

    where, ds, images = subset
    with Index.open(where) as idx:
        path, report = vae.train_vae(idx, epochs=4)
        assert path.is_file() and report["images"] == len(images)
        ids = sorted(idx.catalog.ids_by_path().values())
        z = idx.feature_values(ids, "bg_vae")
        assert len(z) == len(images) and all(v.shape == (vae.LATENT,) for v in z.values())
        have, F = vae.fused_values(idx, ids, "bg_cnn+bg_vae", "1,0.5")
        assert F.shape == (len(images), 320 + vae.LATENT) and np.allclose(np.linalg.norm(F, axis=1), 1, atol=1e-4)
        # fused cosine = weighted mean of the parts' cosines
        cnn = idx.feature_values(ids, "bg_cnn")
        a, b = (np.asarray(cnn[i]) / np.linalg.norm(cnn[i]) for i in have[:2])
        za, zb = (np.asarray(z[i]) / np.linalg.norm(z[i]) for i in have[:2])
        assert abs(float(F[0] @ F[1]) - (a @ b + 0.5 * za @ zb) / 1.5) < 1e-3
        with pytest.raises(ValueError, match="two or more"):
            vae.parse_fuse("bg_cnn")
        with pytest.raises(ValueError, match="not a float"):
            vae.parse_fuse("bg_cnn+bg_mask")
        with pytest.raises(ValueError, match="unknown feature"):
            vae.parse_fuse("bg_cnn+nope")
    # the numpy encoder computes what the torch one does
    with np.load(path) as w:
        p = {k: w[k] for k in w.files}
    x = np.random.default_rng(0).random((2, vae.SIDE, vae.SIDE, 3)).astype(np.float32)
    h = torch.from_numpy(x.transpose(0, 3, 1, 2))
    for n in range(len(vae.CHANNELS) - 1):
        h = torch.relu(torch.nn.functional.conv2d(h, torch.from_numpy(p[f"conv{n}.weight"]),
                                                  torch.from_numpy(p[f"conv{n}.bias"]), stride=2, padding=1))
    ref = (h.flatten(1) @ torch.from_numpy(p["mu.weight"]).T + torch.from_numpy(p["mu.bias"])).numpy()
    assert np.abs(vae.Encoder(p)(x) - ref).max() < 1e-4

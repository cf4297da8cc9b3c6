"""Sentences -> 384-d unit vectors with all-MiniLM-L6-v2 (ONNX + tokenizers, no torch)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lookalike import models

DIM = 384


class TextEncoder:
    """all-MiniLM-L6-v2 as sentence-transformers runs it: WordPiece tokens (lower-cased, at most 256),
    BERT, mean pooling over the real tokens, L2 normalisation. `batch` sentences per ONNX run (padded
    to the longest of them)."""

    def __init__(self, *, threads: int = 1, batch: int = 64):
        from lookalike.models.minilm import tokenizer  # registers the assets

        self.threads = threads
        self.batch = batch
        self._tok = tokenizer(models.path("minilm-l6-v2-tokenizer"))
        self._session = None

    def _sess(self):
        if self._session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            self._session = ort.InferenceSession(str(models.path("minilm-l6-v2")), sess_options=opts,
                                                 providers=["CPUExecutionProvider"])
        return self._session

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 384) float32, unit length; the dot product is the cosine similarity."""
        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), DIM), np.float32)
        # sorted by length so that each batch pads little
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch):
            part = order[start : start + self.batch]
            enc = self._tok.encode_batch([texts[i] for i in part])
            ids = np.array([e.ids for e in enc], np.int64)
            mask = np.array([e.attention_mask for e in enc], np.int64)
            out[part] = self._sess().run(["embedding"], {"input_ids": ids, "attention_mask": mask})[0]
        return out


_encoder: TextEncoder | None = None


def encoder() -> TextEncoder:
    """One encoder per process."""
    global _encoder
    if _encoder is None:
        _encoder = TextEncoder()
    return _encoder

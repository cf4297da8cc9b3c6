"""Text search over an index: a sentence encoder (MiniLM, ONNX), an image-text head trained on the user's
captions (torch at training time only, numpy weights in the index), and a zero-shot fallback through
the CNN's ImageNet classes. Calls the engine through `lookalike.api.Index`."""

from lookalike.text import modes as _modes  # noqa: E402,F401  (registers --mode text-guided)

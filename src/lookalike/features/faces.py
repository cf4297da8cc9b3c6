"""Face detection and 128-d face embeddings.

Detection: MediaPipe BlazeFace full range (finds small faces too, as in group photos), falling back to
BlazeFace short range and then dlib's HOG detector only when it finds nothing (close-up crops where the
face fills the frame). Every BlazeFace detection must pass a face-ness check (`faceness`: a second
detector on the crop, two landmark models agreeing, the score) that keeps animals and objects out;
when none of full range's pass, short range is tried. On the evaluation sets the fallbacks find the
faces full range misses, while running HOG on every image (20-75 ms) adds nothing measurable.

Embedding: dlib's 5-point landmarks align the face, dlib's ResNet maps it to 128-d; the same person is
usually below 0.6 euclidean distance (dlib's threshold). BlazeFace boxes are mapped onto the box shape
that dlib's landmark model was trained on (its HOG boxes: measured 0.924 x the BlazeFace side, centre
1.5 % of the side lower), so the landmarks fit as well as on HOG detections. Each face is embedded
together with its mirror image and the two descriptors are averaged (test-time flip: fewer false
splits of one person, measured on faces_large). dlib's landmarks slip on sunglasses, open mouths and
turned heads: a face whose crop is asymmetric (descriptor far from its mirror's) is aligned again on
BlazeFace's keypoints, and the alignment whose descriptor agrees better with its mirror's wins.

Stored feature `faces` (blob): every face of the image, largest first, as FaceRecord(box, score,
quality, embedding) with the embedding L2-normalised, so cosine similarity compares faces. On
faces_large (in-the-wild photos) the same person is above ~SAME_PERSON cosine. `quality` in [0, 1]
predicts whether the embedding can be trusted (agreement of the face with its mirror, sharpness,
detector confidence): clustering can weight or set aside low-quality faces.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np

from lookalike.features.registry import Extractor, register
from lookalike.imageio import Decoded
from lookalike.models.mediapipe_tflite import decode_ssd, letterbox, load, ssd_anchors, weighted_nms

SAME_PERSON = 0.925  # cosine similarity of L2-normalised embeddings above which two faces are one person
MAX_FACES = 20  # largest faces embedded per image: crowds in the background cost time and add nothing
WELL_ALIGNED = 0.99  # flip consistency above which dlib's alignment is kept without trying the keypoints
CHIP = 150  # side of the aligned face crop that dlib's ResNet takes
# face-ness (see `faceness`) below which a detection is not a face: of 188 detections in animal, object
# and landscape photos of ../shared/data/captions 17 pass (91 % rejected); `faces` keeps all 83 photos'
# faces (a 96 px close-up's false 24 px face is rejected and short range then finds the real one),
# faces_large loses 1 of 859
FACENESS_MIN = 0.5
# Where BlazeFace's keypoints (subject's right eye, left eye, nose tip, mouth centre) fall in dlib's
# 150 px chips (padding 0.25): their median over 553 faces that dlib's landmarks align well
# (flip consistency >= 0.99) on faces_large; spread 2.5-6 px.
_KEYPOINT_TEMPLATE = np.array([[47.1, 47.9], [101.7, 47.5], [74.6, 82.2], [74.6, 106.3]], np.float32)

# (model asset, input size, anchor strides, interpolated anchors, output names, dlib box scale, shift)
_FULL = ("face-detection-full", 192, (4,), False, ("Identity", "Identity_1"), 0.924, 0.015)
_SHORT = ("face-detection-short", 128, (8, 16, 16, 16), True, ("regressors", "classificators"), 0.98, -0.028)


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels (dlib's face box convention)
    score: float  # detector confidence in [0, 1]
    landmarks: np.ndarray | None = None  # (6, 2) BlazeFace keypoints: eyes, nose tip, mouth, ears (None for HOG)

    @property
    def size(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


class _BlazeFace:
    def __init__(self, spec, threads: int):
        name, self.size, strides, interpolated, self.outputs, self.scale, self.shift = spec
        self.model = load(name, threads=threads)
        self.anchors = ssd_anchors(self.size, strides, interpolated=interpolated)

    def __call__(self, rgb: np.ndarray, min_score: float) -> list[Face]:
        x, s, px, py = letterbox(rgb, self.size)
        out = self.model.run(x[None])
        boxes, kps, scores = decode_ssd(*(out[k] for k in self.outputs), self.anchors, self.size, min_score=min_score)
        faces = []
        for box, kp, score in weighted_nms(boxes, kps, scores):
            x0, y0, x1, y1 = (box - (px, py, px, py)) / s
            w = x1 - x0
            cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2 + self.shift * w, self.scale * w / 2
            box = (float(cx - half), float(cy - half), float(cx + half), float(cy + half))
            faces.append(Face(box, score, ((kp - (px, py)) / s).astype(np.float32)))
        return faces


class FaceDetector:
    """`detect(rgb)` -> faces, largest first. Not thread-safe: one instance per thread or process."""

    def __init__(self, *, min_score: float = 0.5, min_size: float = 16.0, hog: bool = True, threads: int = 1):
        self.min_score = min_score
        self.min_size = min_size
        self._full = _BlazeFace(_FULL, threads)
        self._short = _BlazeFace(_SHORT, threads)
        self._hog = None
        if hog:
            import dlib

            self._hog = dlib.get_frontal_face_detector()

    def detect(self, rgb: np.ndarray, check=None) -> list[Face]:
        """Faces, largest first: full range, else short range, else HOG - the first that finds any.
        check(face) -> bool, if given, must accept a BlazeFace detection (face-ness); when it accepts
        none of full range's, short range gets its chance (a close-up whose face fills the frame)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"detect() needs an H x W x 3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
        for find in (self._full, self._short):
            faces = [f for f in find(rgb, self.min_score) if f.size >= self.min_size]
            if check is not None:
                faces = [f for f in faces if check(f)]
            if faces:
                return sorted(faces, key=lambda f: -f.size)
        return sorted((f for f in self._detect_hog(rgb) if f.size >= self.min_size), key=lambda f: -f.size)

    def confirm(self, rgb: np.ndarray, face: Face) -> float:
        """A second opinion on one detection: BlazeFace short range (a model of its own, trained on faces
        that fill the frame) on a square of twice the face's side around it; its best score there.
        Real faces score 0.59-0.96 (1 % below 0.76), dogs, cats and textures mostly 0.2-0.7."""
        cx, cy, s = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2, face.size
        h, w = rgb.shape[:2]
        crop = rgb[max(0, int(cy - s)):min(h, int(cy + s)), max(0, int(cx - s)):min(w, int(cx + s))]
        if crop.shape[0] < 4 or crop.shape[1] < 4:
            return 0.0
        return max((f.score for f in self._short(np.ascontiguousarray(crop), 0.1)), default=0.0)

    def _detect_hog(self, rgb: np.ndarray) -> list[Face]:
        if self._hog is None:
            return []
        # HOG needs faces of ~80 px: upsample small images once
        upsample = 1 if max(rgb.shape[:2]) < 640 else 0
        rects, scores, _ = self._hog.run(np.ascontiguousarray(rgb), upsample, 0.0)
        # HOG scores are SVM margins (0 = its default threshold): squash into (0, 1)
        return [
            Face((float(r.left()), float(r.top()), float(r.right()), float(r.bottom())), float(1 / (1 + np.exp(-s))))
            for r, s in zip(rects, scores)
        ]


class FaceEmbedder:
    """`embed(rgb, faces)` -> (n, 128) float32 dlib face descriptors, same person below ~0.6 apart.

    With `flip` (default) each face's descriptor is the mean of the aligned face and its mirror image.
    """

    def __init__(self, *, num_jitters: int = 0, flip: bool = True):
        import dlib

        from lookalike import models

        self.num_jitters = num_jitters
        self.flip = flip
        self._dlib = dlib
        self._landmarks = dlib.shape_predictor(str(models.path("dlib-landmarks-5")))
        self._net = dlib.face_recognition_model_v1(str(models.path("dlib-face-resnet")))

    def shapes(self, rgb: np.ndarray, faces: list[Face]) -> list:
        """dlib's 5 landmarks of each face (two corners of each eye, the base of the nose)."""
        rgb = np.ascontiguousarray(rgb)
        return [self._landmarks(rgb, self._dlib.rectangle(*(int(round(v)) for v in f.box))) for f in faces]

    def chips(self, rgb: np.ndarray, faces: list[Face], shapes: list | None = None) -> list[np.ndarray]:
        """150 x 150 aligned face crops (dlib 5-point alignment), the network's input."""
        rgb = np.ascontiguousarray(rgb)
        shapes = self.shapes(rgb, faces) if shapes is None else shapes
        return [self._dlib.get_face_chip(rgb, sh, size=CHIP, padding=0.25) for sh in shapes]

    def keypoint_chip(self, rgb: np.ndarray, face: Face) -> np.ndarray | None:
        """The face aligned on its BlazeFace keypoints (eyes, nose tip, mouth) instead of dlib's landmarks
        (None without keypoints, i.e. HOG detections). dlib's 5-point model slips on sunglasses, open
        mouths and turned heads, where BlazeFace's keypoints usually still hold."""
        if face.landmarks is None:
            return None
        src = np.asarray(face.landmarks[:4], np.float32)
        # least-squares similarity over all 4 points (RANSAC with an unbounded threshold keeps every point)
        m, _ = cv2.estimateAffinePartial2D(src, _KEYPOINT_TEMPLATE, method=cv2.RANSAC, ransacReprojThreshold=1e6)
        if m is None:
            return None
        return cv2.warpAffine(rgb, m, (CHIP, CHIP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def _descriptors(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, 128), np.float32)
        desc = self._net.compute_face_descriptor([np.ascontiguousarray(c) for c in chips], self.num_jitters)
        return np.asarray([np.asarray(d) for d in desc], dtype=np.float32).reshape(len(chips), 128)

    def embed_chips(self, chips: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(descriptors (n, 128), flip consistency (n,)): the cosine between the descriptors of each
        chip and of its mirror (1.0 without `flip`), a strong sign that the face is usable."""
        d = self._descriptors(chips)
        if not self.flip or not chips:
            return d, np.ones(len(chips), np.float32)
        m = self._descriptors([c[:, ::-1] for c in chips])
        cos = (d * m).sum(1) / np.maximum(np.linalg.norm(d, axis=1) * np.linalg.norm(m, axis=1), 1e-9)
        return (d + m) / 2, cos.astype(np.float32)

    def embed(self, rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
        return self.embed_chips(self.chips(rgb, faces))[0]


# --- quality -----------------------------------------------------------------------------------------


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))


def sharpness(chip: np.ndarray) -> float:
    """Variance of the Laplacian of the aligned 150 px face: low for blurred or upscaled tiny faces."""
    return float(cv2.Laplacian(cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def face_quality(*, score: float, sharp: float, flip_consistency: float) -> float:
    """How far a face's embedding can be trusted, in [0, 1]: the mean of three ramps.

    On faces_large each one alone ranks faces whose nearest neighbour is the wrong person below the
    others (ROC AUC: flip consistency 0.83, sharpness 0.72, detector score 0.69; the mean 0.855;
    face size and frontal-ness added nothing on top).
    """
    parts = (
        _ramp(flip_consistency, 0.975, 0.995),  # profile, occluded or non-faces change under mirroring
        _ramp(np.log(max(sharp, 1e-6)), np.log(20.0), np.log(400.0)),
        _ramp(score, 0.5, 0.95),
    )
    return float(np.mean(parts))


# --- face-ness -----------------------------------------------------------------------------------------


def eyes_apart(face: Face, shape) -> float | None:
    """How far dlib's eyes (the middle of each pair of eye corners of its 5 landmarks) lie from
    BlazeFace's eye keypoints, in face sides; None for HOG detections (no keypoints). Two models trained
    apart agree on a human face (median 0.02, 99 % below 0.15) and not on a dog's or a pillow's."""
    if face.landmarks is None:
        return None
    pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(4)], np.float32)
    d1, d2 = pts[0:2].mean(0), pts[2:4].mean(0)
    b1, b2 = face.landmarks[0], face.landmarks[1]
    apart = min(np.linalg.norm(d1 - b1) + np.linalg.norm(d2 - b2), np.linalg.norm(d1 - b2) + np.linalg.norm(d2 - b1))
    return float(apart / 2 / max(face.size, 1e-6))


def faceness(*, score: float, confirm: float, eyes: float | None) -> float:
    """How sure it is that a detection is a human face, in [0, 1]: a weighted mean of ramps of the
    second detector's score (x2), the agreement of the two landmark models (x2) and the detector score.
    BlazeFace fires at 0.5-0.8 on animal faces, fur, wheels and pillows, where real faces in small or
    blurred crops score as low: no single cut separates them, the three together do (FACENESS_MIN)."""
    parts = ((2, _ramp(confirm, 0.5, 0.9)),
             (2, 1.0 - _ramp(0.02 if eyes is None else eyes, 0.02, 0.25)),
             (1, _ramp(score, 0.5, 0.9)))
    return float(sum(w * p for w, p in parts) / sum(w for w, _ in parts))


# --- stored feature ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceRecord:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in the working image's pixels
    score: float  # detector confidence in [0, 1]
    quality: float  # trust in the embedding, in [0, 1] (see face_quality)
    embedding: np.ndarray  # (128,) float32, L2-normalised: cosine similarity = dot product

    @property
    def size(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


_MAGIC = b"LFC1"
_HEADER = struct.Struct("<4sH")  # magic, number of faces
_RECORD = np.dtype([("box", "<f4", (4,)), ("score", "<f4"), ("quality", "<f4"), ("embedding", "<f4", (128,))])


def encode_faces(faces: list[FaceRecord]) -> bytes:
    rec = np.zeros(len(faces), _RECORD)
    for r, f in zip(rec, faces):
        r["box"], r["score"], r["quality"], r["embedding"] = f.box, f.score, f.quality, f.embedding
    return _HEADER.pack(_MAGIC, len(faces)) + rec.tobytes()


def decode_faces(blob: bytes) -> list[FaceRecord]:
    if len(blob) < _HEADER.size or blob[:4] != _MAGIC:
        raise ValueError("not a lookalike faces blob (wrong magic): recompute the faces feature")
    _, n = _HEADER.unpack_from(blob)
    rec = np.frombuffer(blob, _RECORD, count=n, offset=_HEADER.size)
    return [
        FaceRecord(tuple(float(v) for v in r["box"]), float(r["score"]), float(r["quality"]), r["embedding"].copy())
        for r in rec
    ]


def main_face(faces: list[FaceRecord]) -> FaceRecord | None:
    """The face a photo is "of": the largest one, as people label photos (None if there is no face)."""
    return max(faces, key=lambda f: f.size) if faces else None


def describe(rgb: np.ndarray, detector: FaceDetector, embedder: FaceEmbedder) -> list[FaceRecord]:
    """Every face of `rgb` (largest first, at most MAX_FACES) with its normalised embedding and quality.

    Detections that are not human faces (face-ness below FACENESS_MIN: animals, objects) are dropped,
    so they never make a person. Each face is aligned on dlib's landmarks; unless that crop is already
    symmetric (WELL_ALIGNED) it is aligned again on BlazeFace's keypoints and keeps the alignment whose
    descriptor agrees better with its mirror's (a misaligned crop is asymmetric).
    On faces_large this lifts BCubed F of average-linkage clustering by ~0.01 over dlib alone.
    """
    checked: dict[tuple, object] = {}  # dlib landmarks of each BlazeFace detection checked, by box

    def is_face(f: Face) -> bool:
        checked[f.box] = sh = embedder.shapes(rgb, [f])[0]
        return faceness(score=f.score, confirm=detector.confirm(rgb, f), eyes=eyes_apart(f, sh)) >= FACENESS_MIN

    faces = detector.detect(rgb, check=is_face)[:MAX_FACES]
    shapes = [checked[f.box] if f.landmarks is not None and f.box in checked else embedder.shapes(rgb, [f])[0]
              for f in faces]
    chips = embedder.chips(rgb, faces, shapes)
    desc, consistency = embedder.embed_chips(chips)
    # faces that dlib aligned symmetrically keep it: the second alignment then changes nothing measurable
    # and skipping it saves a third of the time (it runs on ~36 % of faces_large's faces)
    retry = [i for i, c in enumerate(consistency) if c < WELL_ALIGNED]
    alt = [(i, c) for i in retry if (c := embedder.keypoint_chip(rgb, faces[i])) is not None]
    if alt and embedder.flip:
        alt_desc, alt_consistency = embedder.embed_chips([c for _, c in alt])
        for (i, chip), d, c in zip(alt, alt_desc, alt_consistency):
            if c > consistency[i]:
                chips[i], desc[i], consistency[i] = chip, d, c
    out = []
    for f, chip, d, c in zip(faces, chips, desc, consistency):
        q = face_quality(score=f.score, sharp=sharpness(chip), flip_consistency=float(c))
        e = (d / max(float(np.linalg.norm(d)), 1e-9)).astype(np.float32)
        out.append(FaceRecord(tuple(float(v) for v in f.box), float(f.score), q, e))
    return out


_models: tuple[FaceDetector, FaceEmbedder] | None = None


def _face_models() -> tuple[FaceDetector, FaceEmbedder]:
    """One detector and embedder per process (LiteRT interpreters are not thread-safe)."""
    global _models
    if _models is None:
        _models = (FaceDetector(), FaceEmbedder())
    return _models


@register
class Faces(Extractor):
    """All faces of an image: box, detector score, quality and 128-d embedding (blob; decode -> list)."""

    name, version, kind, dim = "faces", "blazeface+hog/faceness/dlib5|kp-align/resnet128-flip/v3", "blob", 0
    needs_model = "dlib-face-resnet"

    def compute(self, img: Decoded) -> bytes:
        return encode_faces(describe(img.rgb, *_face_models()))

    def decode(self, blob: bytes) -> list[FaceRecord]:
        return decode_faces(blob)

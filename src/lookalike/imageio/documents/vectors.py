"""EMF/WMF/SVG pictures rendered to PNG by LibreOffice or Inkscape, many per converter run."""

from __future__ import annotations

import time
import os
import io
import shutil
import subprocess
import tempfile
from pathlib import Path

from lookalike.imageio.documents.common import (
    DEFAULT_LIMITS, DocResult, Limits, Picture, sniff_image,
)


def vector_converter() -> str | None:
    """Path of the program that renders EMF/WMF to PNG here (LibreOffice or Inkscape), or None."""
    for name in ("soffice", "libreoffice", "inkscape"):
        found = shutil.which(name)
        if found:
            return found
    return None


def convert_vectors(results: list[DocResult], *, limits: Limits = DEFAULT_LIMITS) -> None:
    """Render the vector pictures of `results` to PNG, in place, with few converter runs.

    Rendered pictures move from `skipped` to `pictures` (kind "png", source_kind "emf"...);
    the others keep a skipped reason. Identical vector pictures (the same logo in many documents)
    are rendered once. Files go to the converter in batches of `VECTOR_BATCH`, each batch with its
    own time limit, so a large folder does not run into one overall limit. Files are written to a
    private temporary folder under numbered names, never under their part names.
    """
    todo = [(r, iid) for r in results for iid in r.vectors if any(s[0] == iid for s in r.skipped)]
    if not todo:
        return
    program = vector_converter()
    if program is None:
        return  # the skipped reasons already say what to install
    unique: dict[bytes, int] = {}  # vector bytes -> number of its rendering
    names: list[str] = []  # a part name of each, for the type of gzip-compressed ones
    for r, iid in todo:
        if r.vectors[iid] not in unique:
            unique[r.vectors[iid]] = len(unique)
            names.append(iid)
    blobs = list(unique)
    rendered: dict[int, bytes | None] = {}
    failures: dict[int, str | None] = {}
    with tempfile.TemporaryDirectory(prefix="lookalike-vec-") as tmp:
        for first in range(0, len(blobs), VECTOR_BATCH):
            batch = Path(tmp, f"batch{first}")
            out_dir = batch / "out"
            out_dir.mkdir(parents=True)
            inputs = []
            for i in range(first, min(first + VECTOR_BATCH, len(blobs))):
                kind = _vector_kind(blobs[i], names[i])
                inputs.append(batch / f"{i}.{kind}")
                inputs[-1].write_bytes(blobs[i])
            failure = _run_converter(program, inputs, out_dir, batch, limits.convert_timeout)
            for src in inputs:
                i = int(src.stem)
                rendered[i] = _crop_page(out_dir / f"{i}.png")  # one PNG bytes object shared by all users
                failures[i] = failure
    for r, iid in todo:
        i = unique[r.vectors[iid]]
        png = rendered.get(i)
        kind = _vector_kind(r.vectors[iid], iid)
        if png is None:
            reason = f"{kind.upper()} vector picture: conversion failed ({failures.get(i) or 'no output'})"
            r.skipped = [(s, reason if s == iid else why) for s, why in r.skipped]
            continue
        r.skipped = [s for s in r.skipped if s[0] != iid]
        r.pictures.append(Picture(iid, png, r.locations.get(iid, ""), "png", r.digests.get(iid, ""), kind))


VECTOR_BATCH = 100  # vector pictures per converter run (about 1 s each: well inside convert_timeout)


def _vector_kind(blob: bytes, image_id: str = "") -> str:
    """emf/wmf/svg from the bytes; for gzip (emz/wmz/svgz) the part name's extension says which."""
    kind = sniff_image(blob)
    if kind == "gzip":
        return image_id.rsplit(".", 1)[-1].lower() if "." in image_id else "emz"
    return kind or "emf"


def _run_converter(program: str, inputs: list[Path], out_dir: Path, tmp: Path, timeout: float) -> str | None:
    """Run LibreOffice (one process for all files) or Inkscape (one per file); a short failure reason or None."""
    env = dict(os.environ, HOME=str(tmp))  # no writes to the user's profile
    try:
        if Path(program).name.startswith(("soffice", "libreoffice")):
            # A private profile lets several runs go at once; a large page gives enough pixels,
            # and _crop_page cuts the picture out of the page it is drawn on.
            size = '{"PixelWidth":{"type":"long","value":"1588"},"PixelHeight":{"type":"long","value":"2246"}}'
            cmd = [program, f"-env:UserInstallation={tmp.as_uri()}/profile", "--headless", "--norestore",
                   "--convert-to", f"png:draw_png_Export:{size}", "--outdir", str(out_dir), *map(str, inputs)]
            subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=env, timeout=timeout, check=False, start_new_session=True)
        else:
            deadline = time.monotonic() + timeout
            for src in inputs:
                left = deadline - time.monotonic()
                if left <= 0:
                    return "time limit"
                subprocess.run([program, str(src), "--export-type=png", f"--export-filename={out_dir / (src.stem + '.png')}"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=env, timeout=left, check=False, start_new_session=True)
    except subprocess.TimeoutExpired:
        return f"converter took more than {timeout:.0f} s"
    except OSError as e:
        return f"cannot run {Path(program).name}: {e.strerror or e}"
    return None


def _crop_page(png: Path) -> bytes | None:
    """The drawing cut out of the white/transparent page the converter rendered it on, as PNG bytes."""
    from PIL import Image, ImageChops

    if not png.is_file():
        return None
    try:
        with Image.open(png) as im:
            im.load()
            rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(white, rgba).convert("RGB")
        box = ImageChops.difference(flat, Image.new("RGB", flat.size, (255, 255, 255))).getbbox()
        if box:
            flat = flat.crop(box)
        buf = io.BytesIO()
        flat.save(buf, format="PNG")
        return buf.getvalue()
    except Exception:
        return None



"""`lookalike inspect IMAGE -o out.png`: what the background search sees in one photo.

The picture has two panels side by side and a caption:
- left: the photo with the person mask tinted red and the dilated mask's edge in yellow (everything
  inside the yellow line is ignored by the background features);
- right: the background alone (person greyed out) with the keypoints that local matching uses;
- caption: person share of the frame, scene information score (and its parts), keypoint count, and
  the verdict the background mode would give (comparable, not comparable, weak evidence).
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from lookalike.imageio import load_file

_RED = (230, 40, 40)
_YELLOW = (255, 220, 0)
_GREEN = (40, 230, 90)


def _caption(lines: list[str], width: int) -> np.ndarray:
    """White text on a dark strip, one line per entry, scaled so the longest line fits the width."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    longest = max(cv2.getTextSize(t, font, 1.0, 1)[0][0] for t in lines)
    scale = float(np.clip((width - 20) / max(longest, 1), 0.3, 0.8))
    step = int(30 * scale) + 8
    strip = np.full((step * len(lines) + 10, width, 3), 24, np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(strip, text, (10, step * (i + 1)), font, scale, (240, 240, 240), 1, cv2.LINE_AA)
    return strip


def inspect_image(path: str | os.PathLike, out_png: str | os.PathLike | None, *, max_person: float | None = None,
                  min_scene: float | None = None, keypoint_radius: int = 3, width: int | None = None) -> dict:
    """Write the inspection picture of `path` to `out_png` (skipped if None) and return its numbers:
    person_share, kept_share, scene (+ scene_parts), keypoints, comparable and reasons.
    max_person / min_scene default to the background mode's settings; width scales the picture
    (default: two working-size panels, up to 1544 px wide)."""
    from lookalike.features import background as B
    from lookalike.search.background import BackgroundMode

    mode = BackgroundMode()
    max_person = mode.max_person if max_person is None else max_person
    min_scene = mode.min_scene if min_scene is None else min_scene

    img = load_file(path)
    info = B.background_info(img)
    rgb = img.rgb
    parts = B.scene_parts(rgb, info.keep, n_keypoints=len(info.local))
    person = info.person > 0.5
    keep = info.keep > 0.5

    mode.max_person, mode.min_scene = max_person, min_scene
    reasons = mode.photo_reasons(info.person_share, info.scene, info.visible, info.empty_ring)
    result = {
        "path": str(path),
        "width": int(rgb.shape[1]),
        "height": int(rgb.shape[0]),
        "person_share": round(info.person_share, 4),
        "kept_share": round(float(keep.mean()), 4),
        "visible_share": round(info.visible, 4),
        "empty_ring": round(info.empty_ring, 4),
        "scene": round(info.scene, 4),
        "scene_parts": {k: round(v, 4) for k, v in parts.items()},
        "keypoints": len(info.local),
        "comparable": not reasons,
        "reasons": reasons,
    }
    if out_png is None:
        return result

    # left: photo, person tinted red, edge of the ignored (dilated) region in yellow
    left = rgb.copy()
    left[person] = (0.45 * left[person] + 0.55 * np.array(_RED)).astype(np.uint8)
    contours, _ = cv2.findContours((~keep).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    thick = max(1, round(max(rgb.shape[:2]) / 300))
    cv2.drawContours(left, contours, -1, _YELLOW, thick, cv2.LINE_AA)
    # right: background only, ignored pixels greyed, keypoints in green
    right = rgb.copy()
    grey = cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    right[~keep] = (0.35 * grey[~keep] + 0.65 * 90).astype(np.uint8)
    for x, y in info.local.xy:
        cv2.circle(right, (int(round(x)), int(round(y))), keypoint_radius, _GREEN, thick, cv2.LINE_AA)
    gap = np.full((rgb.shape[0], 8, 3), 255, np.uint8)
    top = np.concatenate([left, gap, right], axis=1)
    verdict = "comparable" if not reasons else "; ".join(reasons)
    lines = [
        f"person: {100 * info.person_share:.1f}% of frame (red), ignored incl. margin: "
        f"{100 * (1 - result['kept_share']):.1f}% (inside yellow); visible background "
        f"{100 * info.visible:.0f}% (not an empty fill)",
        f"scene score {info.scene:.2f} = mean(texture {parts['texture']:.2f}, keypoints {parts['keypoints']:.2f}, "
        f"colour variety {parts['variety']:.2f}); {len(info.local)} background keypoints (green)",
        f"verdict: {verdict}",
    ]
    if width and width != top.shape[1]:
        f = width / top.shape[1]
        top = cv2.resize(top, (width, max(1, round(top.shape[0] * f))), interpolation=cv2.INTER_AREA)
    pic = np.concatenate([top, _caption(lines, top.shape[1])], axis=0)
    jpeg = str(out_png).lower().endswith((".jpg", ".jpeg"))  # each format its own parameter (no OpenCV warning)
    params = [cv2.IMWRITE_JPEG_QUALITY, 90] if jpeg else [cv2.IMWRITE_PNG_COMPRESSION, 9]
    if not os.path.isdir(os.path.dirname(os.path.abspath(out_png))):
        raise OSError(f"could not write {out_png}: the folder does not exist")
    if not cv2.imwrite(str(out_png), cv2.cvtColor(pic, cv2.COLOR_RGB2BGR), params):
        raise OSError(f"could not write {out_png}: name it .png or .jpg")
    result["picture"] = str(out_png)
    return result

"""Square face crops: the box around a face, its pixel mapping, and cropping it out of frames.

    boxes = square_boxes(centre_side, DEFAULT_CROP_SCALE)         # (T, 4) x0 y0 x1 y1, whole pixels
    crops = crop_frames(chunk, boxes[k : k + len(chunk)], 512)    # (n, 512, 512, 3)
    pts_crop = frame_to_crop(landmarks, boxes[k], 512)            # and crop_to_frame() back

Coordinates are continuous pixel coordinates with the origin at the top-left *corner* of the
image (pixel i covers [i, i + 1)), the convention of MediaPipe's landmarks times the image size.
Boxes are (x0, y0, x1, y1) floats in that convention and may extend past the frame.
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from talking_head.toolkit.frames import as_frames

__all__ = [
    "DEFAULT_CROP_SCALE",
    "centre_and_side",
    "square_boxes",
    "box_transform",
    "frame_to_crop",
    "crop_to_frame",
    "crop_frames",
]

# Crop side / BlazeFace box side. The box spans brows to chin (~0.4 of the sample's 512 frame), so
# 2.5 gives HDTF/MODA-like framing: 0.75 box sides of room above the box for the hair (the sample's
# reaches 0.6) and as much below for neck and shoulders.
DEFAULT_CROP_SCALE = 2.5
# Shrinking, against an antialiased Lanczos reference (sharp photo): bilinear matches INTER_AREA
# down to ~0.67x (39.6 vs 39.7 dB) at 1/5-1/7 of the cost; at 0.5x it aliases (37.0 vs 39.8 dB).
SHRINK_AREA_BELOW = 0.7


def centre_and_side(boxes: np.ndarray) -> np.ndarray:
    """(n, 3) centre x, centre y and larger side of (n, 4) boxes x0 y0 x1 y1."""
    b = boxes
    return np.stack(
        [0.5 * (b[:, 0] + b[:, 2]), 0.5 * (b[:, 1] + b[:, 3]), np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])], axis=1
    )


def square_boxes(centre_side: np.ndarray, scale: float = DEFAULT_CROP_SCALE) -> np.ndarray:
    """(n, 4) square boxes x0 y0 x1 y1 of side ``scale`` x side around (n, 3) centre x, centre y, side.

    Rounded to whole pixels (integer-valued floats), so a stored box is exactly the crop
    :func:`crop_frames` makes (see :func:`_pixel_box`).
    """
    side = np.maximum(np.floor(scale * centre_side[:, 2] + 0.5), 1.0)
    x0 = np.floor(centre_side[:, 0] - 0.5 * side + 0.5)
    y0 = np.floor(centre_side[:, 1] - 0.5 * side + 0.5)
    return np.stack([x0, y0, x0 + side, y0 + side], axis=1)


def _pixel_box(box: np.ndarray | Sequence[float]) -> tuple[int, int, int, int]:
    """The box with its corners rounded to whole pixels: the region a crop actually covers.

    Whole-pixel crops let :func:`crop_frames` use a slice and one ``cv2.resize`` (0.3-0.4 ms at
    512 px here) instead of a sub-pixel ``warpAffine`` (1-2 ms bilinear, 6-10 ms bicubic).
    """
    values = [float(v) for v in box]
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"a box is 4 finite numbers x0 y0 x1 y1, got {values}")
    x0, y0, x1, y1 = (math.floor(v + 0.5) for v in values)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"degenerate box {values}")
    return x0, y0, x1, y1


def box_transform(box: np.ndarray | Sequence[float], size: int) -> np.ndarray:
    """2x3 affine matrix taking frame pixel coordinates to the ``size`` x ``size`` crop of ``box``.

    Corner-origin convention on both sides (see the module docstring): the box's corner (x0, y0)
    goes to (0, 0) and (x1, y1) to (size, size), with the corners rounded to whole pixels exactly
    as :func:`crop_frames` does (boxes from :func:`smooth_square_boxes` already are). Invert with
    ``cv2.invertAffineTransform`` or use :func:`crop_to_frame`.
    """
    x0, y0, x1, y1 = _pixel_box(box)
    sx, sy = size / (x1 - x0), size / (y1 - y0)
    return np.array([[sx, 0.0, -sx * x0], [0.0, sy, -sy * y0]])


def _apply(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape[-1] not in (2, 3):
        raise ValueError(f"points must have shape (..., 2) or (..., 3), got {pts.shape}")
    out = pts.copy()
    out[..., :2] = pts[..., :2] @ matrix[:, :2].T + matrix[:, 2]
    if pts.shape[-1] == 3:  # MediaPipe z is in the x pixel scale: it scales with x
        out[..., 2] = pts[..., 2] * matrix[0, 0]
    return out


def frame_to_crop(points: np.ndarray, box: np.ndarray | Sequence[float], size: int) -> np.ndarray:
    """Map (..., 2) or (..., 3) frame-pixel points into crop pixels (z, if present, is rescaled)."""
    return _apply(points, box_transform(box, size))


def crop_to_frame(points: np.ndarray, box: np.ndarray | Sequence[float], size: int) -> np.ndarray:
    """Map crop-pixel points back into frame pixels: the inverse of :func:`frame_to_crop`."""
    return _apply(points, cv2.invertAffineTransform(box_transform(box, size)))


def _span(start: int, stop: int, length: int) -> tuple[int, int, int, int]:
    """Source range [lo, hi) inside 0..length covering [start, stop), and the replicated pad before/after."""
    lo = min(max(start, 0), length - 1)
    hi = min(max(stop - 1, 0), length - 1) + 1
    extra = (stop - start) - (hi - lo)
    before = min(max(lo - start, 0), extra)
    return lo, hi, before, extra - before


def crop_frames(frames: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Crop box k out of frame k and resize it to ``size`` x ``size``: (n, H, W, 3) -> (n, size, size, 3).

    Exactly the mapping of :func:`box_transform` (corners rounded to whole pixels). Interpolation
    by scale factor r = size / box side: r > 1 (enlarging) bicubic, sharper than bilinear for small
    faces and 0.4 ms; SHRINK_AREA_BELOW <= r <= 1 bilinear; r < SHRINK_AREA_BELOW INTER_AREA, which
    averages every covered pixel and so does not alias. Where a box leaves the frame, the frame's
    border pixels are replicated.
    """
    frames = as_frames(frames, "frames", uint8=True, single_frame=False, allow_no_frames=True)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(boxes) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(boxes)} boxes")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    height, width = frames.shape[1:3]
    out = np.empty((len(frames), size, size, 3), dtype=np.uint8)
    for k, (frame, box) in enumerate(zip(frames, boxes)):
        x0, y0, x1, y1 = _pixel_box(box)
        xlo, xhi, left, right = _span(x0, x1, width)
        ylo, yhi, top, bottom = _span(y0, y1, height)
        region = frame[ylo:yhi, xlo:xhi]
        if left or right or top or bottom:
            region = cv2.copyMakeBorder(region, top, bottom, left, right, cv2.BORDER_REPLICATE)
        ratio = size / max(x1 - x0, y1 - y0)
        if ratio > 1:
            interpolation = cv2.INTER_CUBIC
        elif ratio >= SHRINK_AREA_BELOW:
            interpolation = cv2.INTER_LINEAR
        else:
            interpolation = cv2.INTER_AREA
        cv2.resize(region, (size, size), dst=out[k], interpolation=interpolation)
    return out

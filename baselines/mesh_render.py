"""Draw MediaPipe's 478-point face mesh as an image: the landmark condition of the image generators.

One function, :func:`render_mesh`, shared by every baseline that conditions an image model on a mesh
(DreamHead's landmark-to-image diffusion, MODA's renderer). It draws MediaPipe's tessellation in grey,
then the contours (face oval, lips, eyebrows, eyes) and the irises on top, each part in its own colour,
so a network can tell the mouth from the eyes and the subject's right side from the left.

Coordinates are pixels of the image being drawn (times ``scale``), with (0, 0) the top-left corner of
the top-left pixel, as when MediaPipe's normalised coordinates are multiplied by the image size
(:class:`toolkit.face_mesh.FaceMeshDetector`, the preprocessed ``landmarks`` column): pixel (i, j) is
centred at (i + 0.5, j + 0.5). Lines are drawn with 4 fractional bits, so a downscaled mesh keeps its
sub-pixel positions. The result is a pure function of the arguments (OpenCV's rasteriser, no randomness).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from talking_head.toolkit.face_mesh import NUM_POINTS

# Part name -> (MediaPipe connection set, RGB colour). Drawn in this order, later parts on top.
# Right/left are the subject's, as in MediaPipe (the subject's right eye is on the image's left).
PARTS: dict[str, tuple[str, tuple[int, int, int]]] = {
    "tessellation": ("FACEMESH_TESSELATION", (112, 112, 112)),
    "face_oval": ("FACEMESH_FACE_OVAL", (232, 232, 232)),
    "lips": ("FACEMESH_LIPS", (255, 40, 40)),
    "right_eyebrow": ("FACEMESH_RIGHT_EYEBROW", (40, 160, 40)),
    "left_eyebrow": ("FACEMESH_LEFT_EYEBROW", (40, 40, 160)),
    "right_eye": ("FACEMESH_RIGHT_EYE", (40, 255, 40)),
    "left_eye": ("FACEMESH_LEFT_EYE", (40, 40, 255)),
    "right_iris": ("FACEMESH_RIGHT_IRIS", (255, 255, 40)),
    "left_iris": ("FACEMESH_LEFT_IRIS", (40, 255, 255)),
}
_SHIFT = 4  # fractional bits of the coordinates passed to OpenCV
_FAR = 4.0  # coordinates are clamped to [-_FAR, 1 + _FAR] image sizes: OpenCV's fixed point overflows far out


@functools.lru_cache(maxsize=1)
def connections() -> dict[str, np.ndarray]:
    """Part name -> (E, 2) int array of point-index pairs, from MediaPipe's own connection sets."""
    # The module itself, not `mediapipe.solutions`: importing the package would load TensorFlow Lite.
    from mediapipe.python.solutions import face_mesh_connections as mp_connections

    return {part: np.array(sorted(getattr(mp_connections, attr)), dtype=np.int64) for part, (attr, _) in PARTS.items()}


def render_mesh(
    landmarks: np.ndarray,
    size: int | tuple[int, int],
    *,
    scale: float = 1.0,
    tessellation: bool = True,
    thickness: int = 1,
    antialias: bool = True,
) -> np.ndarray:
    """Draw one mesh (478, 2|3) or a sequence (T, 478, 2|3) as RGB uint8 (H, W, 3) or (T, H, W, 3).

    Args:
        landmarks: MediaPipe 478-point landmarks in pixels (x, y; a third column, depth, is ignored).
            Points may lie outside the image (their lines are clipped); edges with a non-finite end
            (a frame without a face stored as NaN) are not drawn.
        size: output size, ``S`` for S x S or ``(height, width)``.
        scale: multiplies the coordinates first, e.g. ``64 / 256`` to draw 256-pixel landmarks at 64.
        tessellation: draw the grey triangle mesh under the contours (off for very small images,
            where it fills the face).
        thickness: line width in output pixels.
        antialias: anti-aliased lines (about 3x slower; smoother to a network at low resolution).
    """
    points = np.asarray(landmarks, dtype=np.float64)
    single = points.ndim == 2
    if single:
        points = points[None]
    if points.ndim != 3 or points.shape[1] != NUM_POINTS or points.shape[2] not in (2, 3):
        raise ValueError(f"expected landmarks of shape (478, 2|3) or (T, 478, 2|3), got {np.shape(landmarks)}")
    height, width = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    if height <= 0 or width <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if thickness < 1:
        raise ValueError(f"thickness must be >= 1, got {thickness}")

    # Continuous pixel coordinates -> OpenCV's (pixel centres at integers), in fixed point.
    xy = points[..., :2] * scale - 0.5
    finite = np.isfinite(xy).all(axis=-1)
    limits = np.array([width, height], dtype=np.float64)
    xy = np.clip(np.nan_to_num(xy), -_FAR * limits, (1 + _FAR) * limits)
    fixed = np.round(xy * (1 << _SHIFT)).astype(np.int32)

    line = cv2.LINE_AA if antialias else cv2.LINE_8
    parts = [(connections()[part], colour) for part, (_, colour) in PARTS.items() if tessellation or part != "tessellation"]
    out = np.zeros((len(points), height, width, 3), dtype=np.uint8)
    for image, pts, ok in zip(out, fixed, finite):
        for edges, colour in parts:
            segments = pts[edges]  # (E, 2 ends, 2 coords)
            keep = ok[edges].all(axis=1)
            if not keep.all():
                segments = segments[keep]
            if len(segments):
                cv2.polylines(image, segments, False, colour, thickness, line, _SHIFT)
    return out[0] if single else out

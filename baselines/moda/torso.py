"""MODA's torso representation: 18 shoulder points per frame (9 per side), derived from the frame itself.

Usage::

    from talking_head.baselines.moda.torso import clip_shoulders, draw_shoulders

    torso = clip_shoulders(frames, meshes)   # (T, H, W, 3) uint8 RGB, (T, 478, 3) px -> (T, 18, 3)
    image = draw_shoulders(frames[0].copy(), torso[0])   # two white polylines

Method
------

MODA (docs/reference-models.md#torso-points) segments the frame with a BiSeNet face-parsing model and fits 9 points per
shoulder to the cloth/background boundary. No face-parsing weights can be fetched here, so the toolkit
derives the same 18 points without a learned model, from the colour difference to the background:

1. Nine columns per side, evenly between the side of the face oval (points 234 / 454) and the image
   edge: beside the face, where the crop shows background at the chin's height (MediaPipe point 152).
2. Each column's background colour is its mean over the ``BACKGROUND_ROWS`` rows just above the chin's
   row (blurred 5x5), so a background that changes slowly over the frame does not look like a body.
3. Scanning down from the chin, the shoulder point is the first row where ``RUN`` consecutive rows
   differ from that colour by more than ``THRESHOLD``; a column with no body in the crop gets the bottom
   row (the shoulder is below it).
4. Over a clip each point's row is median-filtered over 5 frames (MODA smooths its points in time too).

Points are (x, y, 0) in crop pixels: the frame gives no depth, so z is 0 (MODA's 18 x 3 layout). The
order is the image's left shoulder from the edge inwards, then the right shoulder from the neck
outwards, so each side is one polyline (:func:`draw_shoulders`). Works where the background differs
in colour from clothes and hair; a parsing model remains the better choice on busy backgrounds.

:func:`clip_torso` derives the points of every clip of a preprocessed dataset once and caches them in
the dataset folder (``derived/moda_torso_v1/<split>/<clip_id>.npy``, written atomically).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import median_filter

from talking_head.toolkit import dataset as schema
from talking_head.toolkit.fileio import atomic_path

NUM_POINTS = 18
PER_SIDE = 9
CHIN, RIGHT_CHEEK, LEFT_CHEEK = 152, 234, 454  # MediaPipe: chin, image-left and image-right face-oval sides
BACKGROUND_ROWS = 6  # the background colour of a column: its rows just above the chin's row
THRESHOLD = 30.0  # foreground: RGB distance (0-255 levels) from that colour; slow background gradients stay below
RUN = 3  # consecutive foreground rows that make the shoulder's top
TEMPORAL_MEDIAN = 5  # frames
METHOD = "colour change below the chin, 9 columns per side (baselines/moda/torso.py)"
CACHE = Path("derived") / "moda_torso_v1"


def shoulder_points(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(18, 3) shoulder points of one RGB crop `frame` (H, W, 3) uint8 with its MediaPipe mesh `landmarks`
    (478, 3) in crop pixels; all NaN when the mesh is (a frame without a face)."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if not np.isfinite(landmarks[[CHIN, RIGHT_CHEEK, LEFT_CHEEK], :2]).all():
        return np.full((NUM_POINTS, 3), np.nan, np.float32)
    height, width = frame.shape[:2]
    image = cv2.blur(frame, (5, 5)).astype(np.float32)
    chin_row = int(np.clip(np.ceil(landmarks[CHIN, 1]), 0, height - 1))
    columns, rows = [], []
    for side, cheek_x, edge in ((0, landmarks[RIGHT_CHEEK, 0], 0.0), (1, landmarks[LEFT_CHEEK, 0], width - 1.0)):
        fractions = (np.arange(PER_SIDE) + 0.5) / PER_SIDE  # neck side first
        xs = np.clip(cheek_x + (edge - cheek_x) * fractions, 0, width - 1)
        if side == 0:
            xs = xs[::-1]  # the image-left shoulder from the edge inwards: one left-to-right polyline
        cols = np.round(xs).astype(int)
        background = image[max(0, chin_row - BACKGROUND_ROWS) : chin_row + 1, cols].mean(axis=0)  # (9, 3)
        below = image[chin_row:, cols]  # (rows, 9, 3)
        foreground = np.linalg.norm(below - background, axis=-1) > THRESHOLD
        runs = foreground[: max(0, len(foreground) - RUN + 1)].copy()
        for k in range(1, RUN):
            runs &= foreground[k : len(foreground) - RUN + 1 + k]
        found = runs.any(axis=0) if len(runs) else np.zeros(PER_SIDE, bool)
        first = np.where(found, runs.argmax(axis=0) if len(runs) else 0, height - 1 - chin_row)
        columns.append(xs)
        rows.append(chin_row + first)
    xs, ys = np.concatenate(columns), np.concatenate(rows).astype(np.float64)
    return np.stack([xs, ys, np.zeros_like(xs)], axis=1).astype(np.float32)


def clip_shoulders(frames: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(T, 18, 3) for a clip's frames (T, H, W, 3) and meshes (T, 478, 3), rows median-filtered over time."""
    points = np.stack([shoulder_points(f, lm) for f, lm in zip(frames, landmarks)])
    good = np.isfinite(points).all(axis=(1, 2))
    if good.sum() >= TEMPORAL_MEDIAN:
        points[good, :, 1] = median_filter(points[good, :, 1], size=(TEMPORAL_MEDIAN, 1), mode="nearest")
    return points


def draw_shoulders(image: np.ndarray, points: np.ndarray, scale: float = 1.0, colour=(255, 255, 255),
                   thickness: int = 1) -> np.ndarray:
    """Draw the two shoulder polylines of (18, 2|3) crop-pixel `points` (times `scale`) on `image` in place."""
    points = np.asarray(points, dtype=np.float64)
    if not np.isfinite(points[:, :2]).all():
        return image
    fixed = np.round((points[:, :2] * scale - 0.5) * 16).astype(np.int32)
    for side in (fixed[:PER_SIDE], fixed[PER_SIDE:]):
        cv2.polylines(image, [side], False, colour, thickness, cv2.LINE_AA, 4)
    return image


def clip_torso(dataset_dir: str | Path, split: str = "train", clip_ids: list[str] | None = None) -> dict[str, np.ndarray]:
    """clip id -> (T, 18, 3) shoulder points of the clips of `split` (or only `clip_ids`), derived once and
    cached in the dataset folder."""
    dataset_dir = Path(dataset_dir)
    rows = schema.load_split(dataset_dir, split)
    ids = list(rows[schema.CLIP_ID])
    wanted = set(ids if clip_ids is None else clip_ids)
    cache = dataset_dir / CACHE / split
    out = {}
    for index, clip_id in enumerate(ids):
        if clip_id not in wanted:
            continue
        path = cache / f"{clip_id}.npy"
        if path.is_file():
            out[clip_id] = np.load(path)
            continue
        row = rows.select_columns([schema.VIDEO, schema.LANDMARKS]).with_format("numpy")[index]
        with schema.open_row_video(row[schema.VIDEO]) as reader:
            frames = reader.read_all()
        points = clip_shoulders(frames, np.asarray(row[schema.LANDMARKS]))
        cache.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp_path:
            with open(tmp_path, "wb") as handle:
                np.save(handle, points)
        out[clip_id] = points
    return out

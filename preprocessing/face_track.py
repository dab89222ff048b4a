"""Face detection, tracking and a temporally smoothed square crop, on plain numpy arrays.

One step per job, each streaming-friendly (frames are decoded in chunks; only the small per-frame
box arrays are ever held for a whole clip)::

    detector = FaceDetector()                                     # BlazeFace, reused across clips
    detections = [detector.detect(frame) for frame in frames]     # one list[Detection] per frame
    tracks = track_faces(detections)                              # greedy IoU association
    main, record = select_main_track(tracks, num_frames)          # the talking face, and why
    boxes = smooth_square_boxes(main, num_frames)                 # (T, 4) x0 y0 x1 y1, median-filtered
    crops = crop_frames(chunk, boxes[k : k + len(chunk)], 512)    # (n, 512, 512, 3)
    pts_crop = frame_to_crop(landmarks, boxes[k], 512)            # and crop_to_frame() back

Coordinates are continuous pixel coordinates with the origin at the top-left *corner* of the
image (pixel i covers [i, i + 1)), the convention of MediaPipe's landmarks times the image size.
Boxes are (x0, y0, x1, y1) floats in that convention and may extend past the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

import cv2
import numpy as np
from scipy.ndimage import median_filter

from talking_head.toolkit import face_mesh

__all__ = [
    "DEFAULT_CROP_SCALE",
    "DEFAULT_MEDIAN_WINDOW",
    "DEFAULT_SIZE_WINDOW",
    "DEFAULT_IOU_THRESHOLD",
    "DEFAULT_MAX_GAP",
    "DEFAULT_MIN_CONFIDENCE",
    "NoFaceError",
    "Detection",
    "Track",
    "FaceDetector",
    "FaceTracker",
    "track_faces",
    "select_main_track",
    "smooth_square_boxes",
    "missing_frames",
    "face_fraction",
    "mean_face_size",
    "box_transform",
    "frame_to_crop",
    "crop_to_frame",
    "crop_frames",
]

# ----------------------------------------------------------------------------- constants

DEFAULT_MIN_CONFIDENCE = 0.5  # MediaPipe's default; sample faces score 0.88-0.95
# Model choice (see FaceDetector): sizes are the face box side over the frame's LONG side, because
# both models letterbox the whole frame into a square input (128 px short range, 192 px full range).
SHORT_RANGE_MIN_FACE = 0.20  # short range is reliable from ~0.13 (measured); below 0.2 use full range
FULL_RANGE_MAX_FACE = 0.30  # full range misses faces filling >~0.8 of the frame; go back well before
DEFAULT_IOU_THRESHOLD = 0.3  # a face moves a few % of its size per frame at 25 fps; two faces barely overlap
DEFAULT_MAX_GAP = 25  # frames (1 s at 25 fps) a track may miss (occlusion, turned head) and continue
DEFAULT_MEDIAN_WINDOW = 13  # frames (~0.5 s): removes detector jitter and outliers up to 6 frames long
# BlazeFace's box side follows the mouth (r = 0.94 with the lip gap, +-8% on the sample, where the
# head's true size varies by 1%), so the side gets a ~2 s window spanning many syllables; real
# size changes (leaning in) take seconds. 13 frames left the crop pulsing by 10% with speech.
DEFAULT_SIZE_WINDOW = 51
JITTER_SMOOTHING = 5  # frames of moving average after the median: removes its 1-px staircase steps
# Crop side / BlazeFace box side. The box spans brows to chin (~0.4 of the sample's 512 frame), so
# 2.5 gives HDTF/MODA-like framing: 0.75 box sides of room above the box for the hair (the sample's
# reaches 0.6) and as much below for neck and shoulders.
DEFAULT_CROP_SCALE = 2.5
PROMINENCE_RATIO = 0.25  # tracks under 1/4 of the most prominent one (coverage x area) are bystanders
MOUTH_MIN_FRAMES = 8  # fewer detections than this give no usable mouth-motion estimate
MOUTH_HIGHPASS = 9  # frames: median removed from the mouth signal, keeping syllable-rate (3-8 Hz) motion
# Keypoint noise of a still face in a noisy, shaky video (measured 0.0056; the talking sample faces
# give 0.009-0.018): keeps prominence decisive when nobody talks.
ACTIVITY_FLOOR = 0.005
RECORD_MAX_TRACKS = 8  # the dataset row lists the most prominent tracks only (false positives add many)
# Shrinking, against an antialiased Lanczos reference (sharp photo): bilinear matches INTER_AREA
# down to ~0.67x (39.6 vs 39.7 dB) at 1/5-1/7 of the cost; at 0.5x it aliases (37.0 vs 39.8 dB).
SHRINK_AREA_BELOW = 0.7

# BlazeFace keypoint order (mediapipe.solutions.face_detection.FaceKeyPoint).
RIGHT_EYE, LEFT_EYE, NOSE_TIP, MOUTH_CENTER, RIGHT_EAR, LEFT_EAR = range(6)

ModelName = Literal["short", "full"]


class NoFaceError(Exception):
    """No face was found in a clip; the message says what was examined."""

    def __init__(self, message: str, num_frames: int = 0) -> None:
        super().__init__(message)
        self.num_frames = num_frames


# ----------------------------------------------------------------------------- detection


@dataclass(frozen=True, eq=False)
class Detection:
    """One face in one frame: box (x0, y0, x1, y1) and keypoints (6, 2) in frame pixels.

    Keypoints are BlazeFace's: right eye, left eye, nose tip, mouth centre, right ear, left ear
    (the subject's right, on the image's left). ``model`` is the BlazeFace model that found it.
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray
    model: ModelName


class FaceDetector:
    """MediaPipe BlazeFace (0.10.21's bundled models, offline) on RGB uint8 frames of any size.

    Neither bundled model covers every talking-head video on its own (measured on the sample,
    scaled): the short-range model (128 px input, ~2.4 ms/frame here) loses faces smaller than
    ~0.13 of the frame's long side, and the full-range model (192 px input, ~6-7 ms/frame) loses
    faces filling more than ~0.8 of the frame. ``model="auto"`` (the default) therefore runs the
    short-range model while the face is large (>= 0.2 of the long side: close-ups like the sample,
    HDTF, MODA, at the speed target) and switches to the full-range model for small faces (wide
    shots, several people), switching back once faces are >= 0.3 again (hysteresis: no flapping).
    The other model is also tried on any frame where the current one finds nothing, so one
    detector can be reused across clips of different framing; a switch costs one extra inference
    and takes effect on the frame that caused it.
    The two models' boxes differ by ~5-10% in size, so a clip whose face crosses the thresholds
    gets a small step in box size (a single-frame switch at a clip start is removed by the median).
    """

    def __init__(
        self, model: Literal["auto", "short", "full"] = "auto", min_confidence: float = DEFAULT_MIN_CONFIDENCE
    ) -> None:
        if model not in ("auto", "short", "full"):
            raise ValueError(f"model must be 'auto', 'short' or 'full', got {model!r}")
        self.model = model
        self.min_confidence = float(min_confidence)
        self.current: ModelName = "full" if model == "full" else "short"  # model tried first
        self._solutions: dict[str, object] = {}  # created lazily: most videos never need "full"

    def reset(self) -> None:
        """Start the next clip with the first model again.

        Call between clips: otherwise which model a clip starts with depends on the clip before it in
        the same worker, and a dataset would depend on how clips were scheduled over workers.
        """
        self.current = "full" if self.model == "full" else "short"

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Every face in one RGB uint8 (H, W, 3) frame, highest score first."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")
        frame = np.ascontiguousarray(frame)
        found = self._run(self.current, frame)
        if self.model != "auto":
            return found
        size = _largest_face(found, frame.shape)
        if self.current == "short":
            in_range = size >= SHORT_RANGE_MIN_FACE
        else:
            in_range = 0 < size < FULL_RANGE_MAX_FACE
        if in_range:
            return found
        # Nothing found, or a face outside the current model's range: ask the other model, and switch
        # on this very frame, so that the first box of a clip (often held over earlier faceless
        # frames) comes from the model that detects the rest of it.
        other: ModelName = "full" if self.current == "short" else "short"
        alternative = self._run(other, frame)
        if alternative:
            self.current = other
            return alternative
        return found

    def _run(self, model: ModelName, frame: np.ndarray) -> list[Detection]:
        solution = self._solutions.get(model)
        if solution is None:
            import mediapipe as mp  # imported lazily: it takes a second and pulls in TensorFlow Lite

            solution = mp.solutions.face_detection.FaceDetection(
                model_selection=1 if model == "full" else 0, min_detection_confidence=self.min_confidence
            )
            self._solutions[model] = solution
        h, w = frame.shape[:2]
        out = []
        for d in face_mesh.run_solution(solution, frame, "detections") or []:
            rel = d.location_data.relative_bounding_box
            box = np.array([rel.xmin * w, rel.ymin * h, (rel.xmin + rel.width) * w, (rel.ymin + rel.height) * h])
            kps = np.array([(k.x * w, k.y * h) for k in d.location_data.relative_keypoints], dtype=np.float64)
            out.append(Detection(box=box, score=float(d.score[0]), keypoints=kps.reshape(6, 2), model=model))
        out.sort(key=lambda det: -det.score)
        return out

    def close(self) -> None:
        for solution in self._solutions.values():
            solution.close()
        self._solutions.clear()

    def __enter__(self) -> "FaceDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _largest_face(detections: Sequence[Detection], shape: tuple[int, ...]) -> float:
    """Side of the largest box over the frame's long side (0 when there is none)."""
    if not detections:
        return 0.0
    side = max(max(d.box[2] - d.box[0], d.box[3] - d.box[1]) for d in detections)
    return float(side / max(shape[:2]))


# ----------------------------------------------------------------------------- tracking


@dataclass(frozen=True, eq=False)
class Track:
    """One face followed through a clip: the frames it was detected in, with its boxes there."""

    frames: np.ndarray  # (n,) int, increasing frame indices
    boxes: np.ndarray  # (n, 4) float x0 y0 x1 y1
    scores: np.ndarray  # (n,) float
    keypoints: np.ndarray  # (n, 6, 2) float, BlazeFace keypoints

    def __len__(self) -> int:
        return len(self.frames)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


class FaceTracker:
    """Greedy IoU tracker fed one frame's detections at a time (``update``), for streaming use.

    Each detection joins the live track whose last box overlaps it most (IoU >= ``iou_threshold``,
    best pairs first); the others start new tracks. A track stays live while it has missed at most
    ``max_gap`` consecutive frames. No motion model: at 25 fps a face moves little between frames.
    """

    def __init__(self, iou_threshold: float = DEFAULT_IOU_THRESHOLD, max_gap: int = DEFAULT_MAX_GAP) -> None:
        if not 0 < iou_threshold <= 1:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if max_gap < 0:
            raise ValueError(f"max_gap must be >= 0, got {max_gap}")
        self.iou_threshold = iou_threshold
        self.max_gap = max_gap
        self.num_frames = 0
        self._tracks: list[list[tuple[int, Detection]]] = []

    def update(self, detections: Sequence[Detection]) -> None:
        """Add the next frame's detections (an empty list when the frame has no face)."""
        t = self.num_frames
        live = [k for k, tr in enumerate(self._tracks) if t - tr[-1][0] - 1 <= self.max_gap]
        pairs = []
        for k in live:
            last = self._tracks[k][-1][1].box
            for j, det in enumerate(detections):
                overlap = _iou(last, det.box)
                if overlap >= self.iou_threshold:
                    pairs.append((overlap, k, j))
        used_tracks, used_dets = set(), set()
        for _, k, j in sorted(pairs, key=lambda p: -p[0]):
            if k not in used_tracks and j not in used_dets:
                self._tracks[k].append((t, detections[j]))
                used_tracks.add(k)
                used_dets.add(j)
        for j, det in enumerate(detections):
            if j not in used_dets:
                self._tracks.append([(t, det)])
        self.num_frames += 1

    def tracks(self) -> list[Track]:
        """The tracks so far, in order of first appearance."""
        return [
            Track(
                frames=np.array([t for t, _ in tr], dtype=np.int64),
                boxes=np.array([d.box for _, d in tr], dtype=np.float64).reshape(-1, 4),
                scores=np.array([d.score for _, d in tr], dtype=np.float64),
                keypoints=np.array([d.keypoints for _, d in tr], dtype=np.float64).reshape(-1, 6, 2),
            )
            for tr in self._tracks
        ]


def track_faces(
    per_frame_detections: Iterable[Sequence[Detection]],
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    max_gap: int = DEFAULT_MAX_GAP,
) -> list[Track]:
    """Link per-frame detections (one list per frame, in order) into tracks. See FaceTracker."""
    tracker = FaceTracker(iou_threshold, max_gap)
    for detections in per_frame_detections:
        tracker.update(detections)
    return tracker.tracks()


# ----------------------------------------------------------------------------- the main face


def _mouth_activity(track: Track) -> float:
    """How much the mouth moves: std of the fast part of (mouth-to-eyes distance / eye distance).

    BlazeFace's mouth-centre keypoint drops as the jaw opens; on the sample this ratio follows the
    true lip gap with r ~ 0.93. Removing a running median drops slow pose changes and keeps
    syllable-rate motion. Returns 0 for tracks too short to tell.
    """
    if len(track) < MOUTH_MIN_FRAMES:
        return 0.0
    kp = track.keypoints
    eyes = 0.5 * (kp[:, RIGHT_EYE] + kp[:, LEFT_EYE])
    interocular = np.maximum(np.linalg.norm(kp[:, RIGHT_EYE] - kp[:, LEFT_EYE], axis=1), 1e-6)
    signal = np.linalg.norm(kp[:, MOUTH_CENTER] - eyes, axis=1) / interocular
    fast = signal - median_filter(signal, MOUTH_HIGHPASS, mode="nearest")
    return float(np.std(fast))


def select_main_track(tracks: Sequence[Track], num_frames: int) -> tuple[Track, dict]:
    """The main talking face among ``tracks`` of a ``num_frames``-frame clip, and a record of why.

    Heuristic: prominence = coverage (fraction of frames detected) x mean box area. Tracks under
    PROMINENCE_RATIO of the most prominent are bystanders (background people, false positives).
    Among the rest the winner maximises prominence x (mouth activity + ACTIVITY_FLOOR), so a
    talking face beats an equally prominent silent one (listener, photo on the wall), while a
    much more prominent face still wins over a small talking one. The record (JSON-ready) holds
    the number of tracks, the chosen index into ``tracks``, the reason, and the numbers of the
    RECORD_MAX_TRACKS most prominent tracks.

    Raises NoFaceError when there is no track at all.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if not tracks:
        raise NoFaceError(
            f"no face detected in any of the {num_frames} frames (BlazeFace found nothing to track)", num_frames
        )
    coverage = np.array([len(t) / num_frames for t in tracks])
    area = np.array([np.mean((t.boxes[:, 2] - t.boxes[:, 0]) * (t.boxes[:, 3] - t.boxes[:, 1])) for t in tracks])
    prominence = coverage * area
    activity = np.array([_mouth_activity(t) for t in tracks])
    candidates = prominence >= PROMINENCE_RATIO * prominence.max()
    score = np.where(candidates, prominence * (activity + ACTIVITY_FLOOR), -1.0)
    chosen = int(np.argmax(score))
    most_prominent = int(np.argmax(prominence))
    if len(tracks) == 1:
        reason = "only one face track"
    elif candidates.sum() == 1:
        reason = f"most prominent (coverage x area); the others are < {PROMINENCE_RATIO:g} of it"
    elif chosen == most_prominent:
        reason = "most prominent (coverage x area) with mouth motion taken into account"
    else:
        reason = "mouth motion: talks more than a more prominent face of comparable size"
    record = {
        "num_tracks": len(tracks),
        "chosen": chosen,
        "reason": reason,
        "tracks": [
            {
                "index": k,
                "first_frame": int(t.frames[0]),
                "last_frame": int(t.frames[-1]),
                "coverage": round(float(coverage[k]), 4),
                "mean_box_side": round(float(math.sqrt(area[k])), 2),
                "mouth_activity": round(float(activity[k]), 5),
                "mean_score": round(float(t.scores.mean()), 4),
            }
            for k, t in ((int(k), tracks[k]) for k in np.argsort(-prominence, kind="stable")[:RECORD_MAX_TRACKS])
        ],
    }
    return tracks[chosen], record


# ----------------------------------------------------------------------------- smoothed crop boxes


def _check_track(track: Track, num_frames: int) -> None:
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if len(track) == 0:
        raise ValueError("the track is empty")
    if track.frames.min() < 0 or track.frames.max() >= num_frames:
        raise ValueError(f"track frames {track.frames.min()}..{track.frames.max()} outside 0..{num_frames - 1}")


def smooth_square_boxes(
    track: Track,
    num_frames: int,
    scale: float = DEFAULT_CROP_SCALE,
    median_window: int = DEFAULT_MEDIAN_WINDOW,
    size_window: int = DEFAULT_SIZE_WINDOW,
) -> np.ndarray:
    """(num_frames, 4) float square boxes x0 y0 x1 y1 around the track's face, steady over time.

    Per frame: centre of the detected box and its larger side. Frames without a detection get
    values interpolated linearly between the neighbouring detections, held constant before the
    first and after the last one (see :func:`missing_frames` for which frames those are). The
    centre is then median-filtered over ``median_window`` frames and the side over ``size_window``
    frames (edges: nearest value repeated), which removes outliers without lagging behind real head
    motion, followed by a short moving average that removes the median's one-pixel steps. The side
    is multiplied by ``scale`` and the box rounded to whole pixels (integer-valued floats; exactly
    what crop_frames crops).
    """
    _check_track(track, num_frames)
    for name, window in (("median_window", median_window), ("size_window", size_window)):
        if window < 1 or window % 2 == 0:
            raise ValueError(f"{name} must be a positive odd number, got {window}")
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    b = track.boxes
    values = np.stack(
        [0.5 * (b[:, 0] + b[:, 2]), 0.5 * (b[:, 1] + b[:, 3]), np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])], axis=1
    )
    t = np.arange(num_frames)
    full = np.stack([np.interp(t, track.frames, values[:, c]) for c in range(3)], axis=1)  # holds at the ends
    full[:, :2] = median_filter(full[:, :2], size=(median_window, 1), mode="nearest")
    full[:, 2] = median_filter(full[:, 2], size=size_window, mode="nearest")
    if JITTER_SMOOTHING > 1 and num_frames > 1:
        pad = JITTER_SMOOTHING // 2
        padded = np.pad(full, ((pad, pad), (0, 0)), mode="edge")
        kernel = np.ones(JITTER_SMOOTHING) / JITTER_SMOOTHING
        full = np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(3)], axis=1)
    # Whole pixels, so the stored boxes are exactly the crops made (see _pixel_box).
    side = np.maximum(np.floor(scale * full[:, 2] + 0.5), 1.0)
    x0 = np.floor(full[:, 0] - 0.5 * side + 0.5)
    y0 = np.floor(full[:, 1] - 0.5 * side + 0.5)
    return np.stack([x0, y0, x0 + side, y0 + side], axis=1)


def missing_frames(track: Track, num_frames: int) -> np.ndarray:
    """Indices of the frames in which the track's face was not detected (int array, maybe empty)."""
    _check_track(track, num_frames)
    present = np.zeros(num_frames, dtype=bool)
    present[track.frames] = True
    return np.flatnonzero(~present)


def face_fraction(track: Track, num_frames: int) -> float:
    """Fraction of the clip's frames in which the face was detected."""
    _check_track(track, num_frames)
    return len(np.unique(track.frames)) / num_frames


def mean_face_size(track: Track, frame_height: int) -> float:
    """Mean detected box side (the larger of width and height) over the frame height."""
    if len(track) == 0 or frame_height <= 0:
        raise ValueError(f"need a non-empty track and a positive frame height, got {len(track)}, {frame_height}")
    b = track.boxes
    return float(np.mean(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])) / frame_height)


# ----------------------------------------------------------------------------- cropping


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
    frames = np.asarray(frames)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames (n, H, W, 3), got {frames.dtype} {frames.shape}")
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

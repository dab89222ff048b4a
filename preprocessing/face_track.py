"""Face tracking and a temporally smoothed square crop box, on plain numpy arrays.

One step per job, each streaming-friendly (frames are decoded in chunks; only the small per-frame
box arrays are ever held for a whole clip)::

    detector = FaceDetector()                                     # toolkit.face_detector, reused across clips
    detections = [detector.detect(frame) for frame in frames]     # one list[Detection] per frame, or
    detections = sparse_detections(detector.detect, chunks, n)    # every 5th frame + uncertain ones (None: skipped)
    tracks = track_faces(detections)                              # greedy IoU association
    main, record = select_main_track(tracks, num_frames)          # the talking face, and why
    boxes = smooth_square_boxes(main, num_frames)                 # (T, 4) x0 y0 x1 y1, median-filtered
    crops = face_box.crop_frames(chunk, boxes[k : k + len(chunk)], 512)  # (n, 512, 512, 3)

Coordinates and boxes follow :mod:`toolkit.face_box` (corner-origin pixels; boxes may extend
past the frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
from scipy.ndimage import median_filter

from talking_head.toolkit.face_box import DEFAULT_CROP_SCALE, centre_and_side, square_boxes
from talking_head.toolkit.face_detector import LEFT_EYE, MOUTH_CENTER, RIGHT_EYE, Detection, NoFaceError

__all__ = [
    "DEFAULT_MEDIAN_WINDOW",
    "DEFAULT_SIZE_WINDOW",
    "DEFAULT_IOU_THRESHOLD",
    "DEFAULT_MAX_GAP",
    "DEFAULT_DETECT_EVERY",
    "Track",
    "FaceTracker",
    "track_faces",
    "sparse_detections",
    "frame_weights",
    "candidates",
    "select_main_track",
    "smooth_square_boxes",
    "missing_frames",
    "face_fraction",
    "mean_face_size",
]

# ----------------------------------------------------------------------------- constants

DEFAULT_IOU_THRESHOLD = 0.3  # a face moves a few % of its size per frame at 25 fps; two faces barely overlap
DEFAULT_MAX_GAP = 25  # frames (1 s at 25 fps) a track may miss (occlusion, turned head) and continue
DEFAULT_MEDIAN_WINDOW = 13  # frames (~0.5 s): removes detector jitter and outliers up to 6 frames long
# BlazeFace's box side follows the mouth (r = 0.94 with the lip gap, +-8% on the sample, where the
# head's true size varies by 1%), so the side gets a ~2 s window spanning many syllables; real
# size changes (leaning in) take seconds. 13 frames left the crop pulsing by 10% with speech.
DEFAULT_SIZE_WINDOW = 51
JITTER_SMOOTHING = 5  # frames of moving average after the median: removes its 1-px staircase steps
PROMINENCE_RATIO = 0.25  # tracks under 1/4 of the most prominent one (coverage x area) are bystanders
MOUTH_MIN_FRAMES = 8  # fewer detections than this give no usable mouth-motion estimate
MOUTH_HIGHPASS = 9  # frames: median removed from the mouth signal, keeping syllable-rate (3-8 Hz) motion
# Keypoint noise of a still face in a noisy, shaky video (measured 0.0056; the talking sample faces
# give 0.009-0.018): keeps prominence decisive when nobody talks.
ACTIVITY_FLOOR = 0.005
# Detection on every k-th frame (see sparse_detections): at 25 fps a talking head moves a few % of its
# size in 0.2 s, and the box is median-filtered over 13 frames anyway; 1 detects every frame.
DEFAULT_DETECT_EVERY = 5
# Two detections k frames apart that overlap less than this are not interpolated: the frames between
# are detected (fast motion, a cut, a face coming or going). The sample gives IoU >= 0.77 over 5 frames.
SPARSE_MIN_IOU = 0.7
RECORD_MAX_TRACKS = 8  # the dataset row lists the most prominent tracks only (false positives add many)

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

    def update(self, detections: Sequence[Detection] | None) -> None:
        """Add the next frame's detections (an empty list when the frame has no face, None when it was
        not examined: both continue the live tracks, within ``max_gap``)."""
        detections = detections or []
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
    per_frame_detections: Iterable[Sequence[Detection] | None],
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    max_gap: int = DEFAULT_MAX_GAP,
) -> list[Track]:
    """Link per-frame detections (one list per frame, in order) into tracks. See FaceTracker."""
    tracker = FaceTracker(iou_threshold, max_gap)
    for detections in per_frame_detections:
        tracker.update(detections)
    return tracker.tracks()


def sparse_detections(
    detect: Callable[[np.ndarray], list[Detection]],
    chunks: Iterable[np.ndarray],
    num_frames: int,
    every: int = DEFAULT_DETECT_EVERY,
) -> list[list[Detection] | None]:
    """Faces in every ``every``-th frame (and the last), and in every frame where the track is uncertain.

    ``chunks`` yields the clip's frames in order, (n, H, W, 3) at a time. Frames 0, k, 2k, ... and the
    last are anchors; the frames between two anchors are detected too unless both hold as many faces and
    each face of the second continues one of the first (same model, IoU >= SPARSE_MIN_IOU): so a face
    that appears, disappears or jumps is found on every frame around the change, and only steady faces
    are interpolated (by :func:`smooth_square_boxes`). Returns one entry per frame:
    its detections, or None where it was not examined (as an empty list, it continues tracks: see
    FaceTracker). ``every=1`` is detection on every frame.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    out: list[list[Detection] | None] = [None] * num_frames
    held: list[tuple[int, np.ndarray]] = []  # frames since the last anchor, detected only if needed
    last: list[Detection] | None = None
    t = 0
    for chunk in chunks:
        for frame in chunk:
            if t % every and t != num_frames - 1:
                held.append((t, frame))
            else:
                found = detect(frame)
                if held and _uncertain(last, found):
                    for s, image in held:
                        out[s] = detect(image)
                out[t], last, held = found, found, []
            t += 1
    if t != num_frames:
        raise ValueError(f"the chunks hold {t} frames, not {num_frames}")
    return out


def _uncertain(a: Sequence[Detection] | None, b: Sequence[Detection]) -> bool:
    """Whether the frames between two anchors with detections ``a`` and ``b`` must be detected: unless
    each face in ``b`` continues one in ``a`` (same model, IoU >= SPARSE_MIN_IOU) and none came or went."""
    if a is None or len(a) != len(b):
        return True
    return any(
        max((_iou(d.box, e.box) for e in a if e.model == d.model), default=0.0) < SPARSE_MIN_IOU for d in b
    )


def frame_weights(detections: Sequence[Sequence[Detection] | None]) -> np.ndarray:
    """(T,) how many frames each examined frame stands for (None: not examined, weight 0), summing to T.

    An examined frame stands for the frames nearer to it than to any other examined one, so a track's
    coverage counts the frames it spans whether it was detected on every frame or every k-th; with
    every frame examined each weighs 1.
    """
    examined = np.flatnonzero([d is not None for d in detections]).astype(np.float64)
    weights = np.zeros(len(detections))
    if len(examined):
        bounds = np.concatenate([[-0.5], 0.5 * (examined[1:] + examined[:-1]), [len(detections) - 0.5]])
        weights[examined.astype(np.int64)] = np.diff(bounds)
    return weights


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


def _coverage_area(
    tracks: Sequence[Track], num_frames: int, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Coverage (fraction of the frames detected, ``weights`` per frame: see frame_weights) and mean box area."""
    if weights is None:
        coverage = np.array([len(t) / num_frames for t in tracks])
    else:
        coverage = np.array([weights[t.frames].sum() / weights.sum() for t in tracks])
    area = np.array([np.mean((t.boxes[:, 2] - t.boxes[:, 0]) * (t.boxes[:, 3] - t.boxes[:, 1])) for t in tracks])
    return coverage, area


def candidates(tracks: Sequence[Track], num_frames: int, weights: np.ndarray | None = None) -> np.ndarray:
    """(len(tracks),) bool: the tracks :func:`select_main_track` chooses among (the others are bystanders)."""
    if not tracks:
        return np.zeros(0, dtype=bool)
    coverage, area = _coverage_area(tracks, num_frames, weights)
    prominence = coverage * area
    return prominence >= PROMINENCE_RATIO * prominence.max()


def select_main_track(
    tracks: Sequence[Track], num_frames: int, weights: np.ndarray | None = None
) -> tuple[Track, dict]:
    """The main talking face among ``tracks`` of a ``num_frames``-frame clip, and a record of why.

    Heuristic: prominence = coverage (fraction of frames detected; with ``weights`` from
    :func:`frame_weights` when not every frame was examined) x mean box area. Tracks under
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
    coverage, area = _coverage_area(tracks, num_frames, weights)
    prominence = coverage * area
    activity = np.array([_mouth_activity(t) for t in tracks])
    chosen_among = candidates(tracks, num_frames, weights)
    score = np.where(chosen_among, prominence * (activity + ACTIVITY_FLOOR), -1.0)
    chosen = int(np.argmax(score))
    most_prominent = int(np.argmax(prominence))
    if len(tracks) == 1:
        reason = "only one face track"
    elif chosen_among.sum() == 1:
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
    values = centre_and_side(track.boxes)
    t = np.arange(num_frames)
    full = np.stack([np.interp(t, track.frames, values[:, c]) for c in range(3)], axis=1)  # holds at the ends
    full[:, :2] = median_filter(full[:, :2], size=(median_window, 1), mode="nearest")
    full[:, 2] = median_filter(full[:, 2], size=size_window, mode="nearest")
    if JITTER_SMOOTHING > 1 and num_frames > 1:
        pad = JITTER_SMOOTHING // 2
        padded = np.pad(full, ((pad, pad), (0, 0)), mode="edge")
        kernel = np.ones(JITTER_SMOOTHING) / JITTER_SMOOTHING
        full = np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(3)], axis=1)
    return square_boxes(full, scale)


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



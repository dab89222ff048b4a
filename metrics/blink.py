"""Blinks from the eye aspect ratio (EAR): blink count, rate per second and mean duration.

Usage::

    from talking_head.metrics.blink import blinks
    from talking_head.metrics.landmark_extraction import extract_landmarks

    mesh = extract_landmarks("generated.mp4")        # (T, 478, 3) MediaPipe mesh
    result = blinks(mesh, preset="mesh", fps=25.0)
    result["blinks"], result["blink_rate"], result["mean_duration_s"]

Definition
----------

EAR (Soukupova & Cech, CVWW 2016) of one eye with contour points p1..p6 (p1, p4 the corners, p2, p3
on the upper lid, p6, p5 below them on the lower lid)::

    EAR = (||p2 - p6|| + ||p3 - p5||) / (2 ||p1 - p4||)

computed on x, y and averaged over the two eyes per frame. A blink is a run of at least
``min_frames`` consecutive frames with EAR below the threshold.

Point sets
----------
* 68 points (iBUG, dlib/FAN): right eye 36-41, left eye 42-47 (the layout's own order is p1..p6).
* MediaPipe's 478-point mesh: the same six positions on the mesh's eye contours
  (:mod:`toolkit.face_mesh`): corners 33/133 and 362/263, and on each lid the points at one and two
  thirds of the contour (the 68-point layout's 37, 38 / 41, 40 sit there)::

      right eye (subject's, image left): 33, 160, 158, 133, 153, 144
      left eye:                          362, 385, 387, 263, 373, 380

  Each upper-lid point is paired with the lower-lid point at the same position along the contour
  (160-144, 158-153, 385-380, 387-373), as 37-41 and 38-40 are.

Thresholds
----------
* ``ear68``: EAR < 0.2 (the usual absolute 68-point threshold; open eyes give ~0.25-0.35), for >= 2
  frames (the common 2-3 consecutive frames at 25-30 fps; a blink lasts 100-400 ms).
* ``mesh``: EAR < 0.8 x the clip's median EAR, for >= 2 frames. A relative threshold, because
  MediaPipe's eyelids never close fully: on the built-in sample (5 clips of 8 s, seeds 0-2, 10
  complete blinks) the open-eye mesh EAR stays above 0.90 x its median while a full blink reaches
  only 0.50-0.63 x it (the ground-truth mesh reaches 0.23 x), and the open level differs between
  faces. The median is the open-eye level because eyes are closed for well under half of any clip.
  0.8 sits between the two: all 10 blinks are found, at the right frames, and nothing else.

Frames without landmarks (NaN) are never inside a blink (a run does not bridge them); they are
counted as excluded and left out of the duration the rate is divided by. A closed run touching the
clip's first or last frame counts as a blink.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from talking_head.metrics import registry
from talking_head.metrics.base import PerVideoRows
from talking_head.metrics.both_sides import BothSides

__all__ = [
    "EYES_68",
    "EYES_MESH",
    "BlinkPreset",
    "PRESETS",
    "eye_aspect_ratio",
    "find_blinks",
    "blinks",
    "BlinkRate",
]

# (right eye, left eye), each p1..p6
EYES_68 = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47))  # iBUG 68: FACIAL_LANDMARKS_IDXS right/left_eye
EYES_MESH = ((33, 160, 158, 133, 153, 144), (362, 385, 387, 263, 373, 380))  # MediaPipe mesh, see docstring
MESH_SIZES = (478, 468)


@dataclass(frozen=True)
class BlinkPreset:
    """Every knob of the blink count.

    layout: ``"68"`` or ``"mesh"`` (the point set, see the module docstring).
    threshold: EAR below which the eyes count as closed; a fraction of the clip's median EAR when
        `relative`.
    min_frames: shortest run of closed frames that is a blink.
    """

    name: str
    layout: Literal["68", "mesh"]
    threshold: float
    relative: bool
    min_frames: int

    def config(self) -> dict[str, Any]:
        out = asdict(self)
        out["eyes"] = [list(e) for e in (EYES_68 if self.layout == "68" else EYES_MESH)]
        return out


PRESETS: dict[str, BlinkPreset] = {
    "ear68": BlinkPreset(name="ear68", layout="68", threshold=0.2, relative=False, min_frames=2),
    "mesh": BlinkPreset(name="mesh", layout="mesh", threshold=0.8, relative=True, min_frames=2),
}


def get_preset(preset: str | BlinkPreset) -> BlinkPreset:
    if isinstance(preset, BlinkPreset):
        return preset
    try:
        return PRESETS[preset]
    except (KeyError, TypeError):
        raise ValueError(f"unknown blink preset {preset!r}; choose one of {sorted(PRESETS)}") from None


def _layout_of(num_points: int) -> str:
    if num_points == 68:
        return "68"
    if num_points in MESH_SIZES:
        return "mesh"
    raise ValueError(f"landmarks must have 68 (iBUG) or 478/468 (MediaPipe) points, got {num_points}")


def _check(landmarks: Any) -> np.ndarray:
    a = np.asarray(landmarks)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"landmarks must be numeric, got dtype {a.dtype}")
    if a.ndim != 3 or a.shape[2] not in (2, 3):
        raise ValueError(f"landmarks must be (T, P, 2|3), got shape {a.shape}")
    if a.shape[0] == 0:
        raise ValueError("landmarks are empty (0 frames)")
    return a[..., :2].astype(np.float64)


def eye_aspect_ratio(landmarks: np.ndarray, eye: Literal["both", "right", "left"] = "both") -> np.ndarray:
    """EAR per frame, (T,), from (T, 68|478|468, 2|3) landmarks (x, y used); NaN where a point is missing.

    ``eye="both"`` is the mean of the two eyes (the subject's right and left, as in the layouts).
    """
    a = _check(landmarks)
    eyes = EYES_68 if _layout_of(a.shape[1]) == "68" else EYES_MESH
    if eye not in ("both", "right", "left"):
        raise ValueError(f"eye must be 'both', 'right' or 'left', got {eye!r}")
    chosen = eyes if eye == "both" else (eyes[0] if eye == "right" else eyes[1],)
    values = []
    for idx in chosen:
        p = a[:, list(idx)]
        vertical = np.linalg.norm(p[:, 1] - p[:, 5], axis=-1) + np.linalg.norm(p[:, 2] - p[:, 4], axis=-1)
        horizontal = np.linalg.norm(p[:, 0] - p[:, 3], axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            values.append(np.where(horizontal > 0, vertical / (2.0 * horizontal), np.nan))
    return np.mean(values, axis=0)


def find_blinks(ear: np.ndarray, threshold: float, min_frames: int = 2) -> list[tuple[int, int]]:
    """Runs [start, stop) of >= `min_frames` consecutive frames with EAR < `threshold` (NaN breaks a run)."""
    ear = np.asarray(ear, dtype=np.float64)
    if ear.ndim != 1:
        raise ValueError(f"ear must be 1-D (T,), got shape {ear.shape}")
    if min_frames < 1:
        raise ValueError(f"min_frames must be >= 1, got {min_frames}")
    closed = np.zeros(len(ear) + 2, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        closed[1:-1] = ear < threshold  # NaN compares False: never closed
    edges = np.diff(closed)
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(s), int(e)) for s, e in zip(starts, stops) if e - s >= min_frames]


def check_layout(landmarks: Any, preset: BlinkPreset) -> np.ndarray:
    """`landmarks` as float64 (T, P, 2), checked against the preset's layout."""
    a = _check(landmarks)
    layout = _layout_of(a.shape[1])
    if layout != preset.layout:
        raise ValueError(f"blink preset {preset.name!r} is for {preset.layout}-layout landmarks, "
                         f"got {a.shape[1]} points (use preset {'ear68' if layout == '68' else 'mesh'!r})")
    return a


def _video(ear: np.ndarray, preset: BlinkPreset) -> dict[str, Any]:
    ok = np.isfinite(ear)
    used = int(ok.sum())
    if used == 0:
        return {"blinks": 0, "runs": [], "frames_used": 0, "frames_excluded": len(ear), "threshold": float("nan"),
                "open_ear": float("nan")}
    open_ear = float(np.median(ear[ok]))
    threshold = preset.threshold * open_ear if preset.relative else preset.threshold
    runs = find_blinks(ear, threshold, preset.min_frames)
    return {"blinks": len(runs), "runs": runs, "frames_used": used, "frames_excluded": len(ear) - used,
            "threshold": float(threshold), "open_ear": open_ear}


class BlinkRate(PerVideoRows):
    """Streaming blink statistics: ``update(landmarks)`` per video, ``compute()`` over all of them.

    `landmarks`: (T, 68, 2|3) for ``ear68``, (T, 478|468, 2|3) MediaPipe meshes for ``mesh``, at `fps`
    (the default rate; a video at another rate passes its own, ``update(landmarks, fps=30)``, and is
    reduced at it: its rate and durations in seconds use its frame rate).
    ``compute()``:

    * ``blink_rate``: blinks per second, all blinks over all valid frames' duration (pooled: each video's
      valid frames / its own fps, summed);
    * ``blink_rate_video_mean``: mean over videos of each video's rate;
    * ``mean_duration_s`` / ``mean_duration_frames``: mean length of all blinks (NaN without blinks; each
      blink's seconds at its video's fps);
    * ``blinks``, ``videos``, ``videos_excluded`` (no valid frame), ``frames_used``, ``frames_excluded``.

    ``per_video()``: per video its ``blinks``, ``runs`` ([start, stop) frame ranges), ``blink_rate``,
    ``mean_duration_s``, ``threshold``, ``open_ear``, frame counts, ``fps`` and ``seconds_used``.
    """

    name = "blink"
    direction = registry.entry(name).direction  # the registry is the one place for directions
    merged_attributes = ("_durations", "_durations_s", "_rates", "_frames_at", "_counts", "_per_video_rows")

    def __init__(self, preset: str | BlinkPreset = "mesh", fps: float = 25.0) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.preset = get_preset(preset)
        self.fps = float(fps)
        self.reset()

    def reset(self) -> None:
        self._durations: list[int] = []
        self._durations_s: list[float] = []
        self._rates: list[float] = []
        self._frames_at: dict[float, int] = {}  # fps -> valid frames of the videos at that rate
        self._counts = {"blinks": 0, "videos": 0, "videos_excluded": 0, "frames_used": 0, "frames_excluded": 0}
        self._per_video_rows = []

    def update(self, landmarks: np.ndarray, fps: float | None = None) -> None:
        """Add one video at `fps` (default: the metric's) (its blinks, rate and threshold: ``per_video()``)."""
        self.update_ear(eye_aspect_ratio(check_layout(landmarks, self.preset)), fps=fps)

    def update_ear(self, ear: np.ndarray, fps: float | None = None) -> None:
        """Add one video given its per-frame eye aspect ratio (T,) (NaN: no face), e.g. gathered chunk by
        chunk with ``eye_aspect_ratio``; the same as :meth:`update` on the landmarks. `fps`: the video's
        frame rate (default: the metric's)."""
        fps = self.fps if fps is None else float(fps)
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        ear = np.asarray(ear, dtype=np.float64)
        if ear.ndim != 1:
            raise ValueError(f"ear must be 1-D (T,), got shape {ear.shape}")
        row = _video(ear, self.preset)
        row["fps"] = fps
        row["seconds_used"] = row["frames_used"] / fps
        self._frames_at[fps] = self._frames_at.get(fps, 0) + row["frames_used"]
        c = self._counts
        c["videos"] += 1
        c["frames_used"] += row["frames_used"]
        c["frames_excluded"] += row["frames_excluded"]
        c["blinks"] += row["blinks"]
        durations = [stop - start for start, stop in row["runs"]]
        self._durations.extend(durations)
        self._durations_s.extend(d / fps for d in durations)
        if row["frames_used"]:
            row["blink_rate"] = row["blinks"] * fps / row["frames_used"]
            self._rates.append(row["blink_rate"])
        else:
            row["blink_rate"] = float("nan")
            c["videos_excluded"] += 1
        row["mean_duration_s"] = float(np.mean(durations)) / fps if durations else float("nan")
        self._per_video_rows.append(row)

    def compute(self) -> dict[str, Any]:
        c = self._counts
        seconds = sum(frames / fps for fps, frames in self._frames_at.items())  # one term per frame rate
        frames = float(np.mean(self._durations)) if self._durations else float("nan")
        if len(self._frames_at) <= 1:  # one frame rate: the mean length in frames over it
            duration_s = frames / next(iter(self._frames_at), self.fps)
        else:  # each blink's seconds at its own video's rate
            duration_s = float(np.mean(self._durations_s)) if self._durations_s else float("nan")
        return {"blink_rate": c["blinks"] / seconds if seconds else float("nan"),
                "blink_rate_video_mean": float(np.mean(self._rates)) if self._rates else float("nan"),
                "mean_duration_frames": frames, "mean_duration_s": duration_s, **c}

    def config(self) -> dict[str, Any]:
        return {"metric": "blink", "fps": self.fps, **self.preset.config(),
                "ear": "Soukupova & Cech, mean of both eyes, x and y",
                "rate": "blinks / (valid frames / fps), pooled over videos, each video at its own fps"}

    def weights_provenance(self) -> dict[str, str]:
        return {}


def blinks(landmarks: np.ndarray, preset: str | BlinkPreset = "mesh", fps: float = 25.0) -> dict[str, Any]:
    """Blink statistics of one video (see :class:`BlinkRate`)."""
    metric = BlinkRate(preset, fps)
    metric.update(landmarks)
    row = metric.per_video()[0]
    return {**metric.compute(), "runs": row["runs"], "threshold": row["threshold"], "open_ear": row["open_ear"]}


class BlinkVideos(BothSides):
    """Blink rate of the generated videos and of the references, from the runner's meshes."""

    name, direction = BlinkRate.name, BlinkRate.direction
    keys = ("blink_rate",)
    # Bootstrap (metrics.base): blink_rate_video_mean is a mean of the per-video rates; the pooled blink_rate
    # (all blinks over all valid frames) is recomputed by resample() from each video's blinks and frames.
    video_means = {"blink_rate_video_mean": "blink_rate", "reference.blink_rate_video_mean": "reference_blink_rate"}

    def make(self, fps: float) -> BlinkRate:
        return BlinkRate("mesh", fps=fps)

    def reduce(self, meshes: np.ndarray) -> np.ndarray:
        return eye_aspect_ratio(meshes)  # (n,)

    def add_video(self, metric: BlinkRate, per_frame: np.ndarray, path: Any, fps: float) -> dict[str, Any]:
        metric.update_ear(per_frame.reshape(-1), fps=fps)
        return metric.per_video(-1)[0]

    def resample(self, indices: np.ndarray) -> dict[str, float]:
        """The pooled blink rate (all blinks over the valid frames' duration, as compute()) of the videos at
        `indices`, both sides."""
        if self.generated is None:
            return {}
        out = {}
        for prefix, metric in (("", self.generated), ("reference.", self.reference)):
            rows = metric._per_video_rows  # one per committed video (update_ear is called for every video)
            blinks = np.array([r["blinks"] for r in rows], np.float64)[indices].sum()
            seconds = np.array([r["seconds_used"] for r in rows], np.float64)[indices].sum()  # each at its fps
            out[prefix + "blink_rate"] = float(blinks / seconds) if seconds else float("nan")
        return out

"""Beat Align (Bailando) of head motion to the audio's beats (docs/metrics-reference.md#head-motion).

Usage::

    from talking_head.metrics.beat_align import beat_align, BeatAlign

    beat_align(pose, "audio.wav", fps=25.0)["beat_align"]      # pose: (T, 3) yaw, pitch, roll, or meshes
    metric = BeatAlign(fps=25.0); metric.update(pose, audio, sample_rate=16000); metric.compute()

The pose input (arrays or meshes, NaN rows for frames without a face) is as in :mod:`metrics.head_motion`;
here missing frames are interpolated and counted.

Definition
----------

Beat Align (Bailando, ``utils/beat_align_score.py``)
    motion velocity v[t] = mean over joints of ||p[t+1] - p[t]||, smoothed by
    ``scipy.ndimage.gaussian_filter(v, 5)``; motion beats = its strict local minima
    (``argrelextrema(v, np.less)``), indexed like v (index t = the step from frame t to t+1).
    Audio beats: librosa ``onset_strength(aggregate=np.median)`` on the HPSS percussive part, then
    ``beat_track``, both with **hop = sample_rate / fps** so that audio beats are video frame indices
    (Bailando ran music at 30720 Hz with hop 512 = 60 frames/s for 60 fps dance; a public talking-head
    adaptation kept hop 512 at 16 kHz, 31.25 frames/s against 25 fps video: a unit mismatch).
    Audio beats at or past len(v) are dropped (Bailando reads ``music_array[:length]``).
    ``BA = mean over audio beats b of exp(-min_m (m - b)^2 / (2 * 9))``, i.e. a 3-frame Gaussian.
    The motion is the head pose angles by default (velocity = L2 over yaw, pitch, roll per frame,
    degrees/frame: the pose is one "joint"); ``source="points"`` uses the landmarks as Bailando uses
    joints. Per video BA, then the mean over videos (Bailando's ``calc_ba_score``).
    Speech has no musical beat: ``beat_track`` still returns a tempo-regular grid fitted to the onset
    envelope (on the built-in sample, a beat every ~17 frames), so the number measures how pauses in
    head motion line up with that grid.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.signal import argrelextrema

from talking_head.metrics import registry
from talking_head.metrics.base import AUDIO, LANDMARKS, PerVideoRows
from talking_head.metrics.head_motion import PoseVideos, as_array, head_pose

# Bailando utils/beat_align_score.py
VELOCITY_SIGMA = 5.0  # G(kinetic_vel, 5): gaussian_filter, frames
BEAT_VARIANCE = 9.0  # exp(-d**2 / 2 / 9): sigma = 3 frames
# Bailando extractor.py: librosa.effects.hpss, onset_strength(aggregate=np.median), beat_track(onset_envelope)
PERCUSSIVE = True
ONSET_AGGREGATE = "median"

MotionSource = Literal["pose", "points"]


# -- Beat Align -----------------------------------------------------------------------------------------


def _fill_missing(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Linear interpolation over frames with a non-finite value (edges held), and how many there were.

    A gap must not invent motion beats (a NaN would poison the Gaussian filter for 20 frames around it).
    """
    flat = x.reshape(len(x), -1)
    ok = np.isfinite(flat).all(axis=1)
    missing = int((~ok).sum())
    if missing == 0:
        return x, 0
    if ok.sum() < 2:
        raise ValueError(f"motion has {int(ok.sum())} frame(s) with values, need at least 2")
    t = np.arange(len(x))
    filled = np.stack([np.interp(t, t[ok], col[ok]) for col in flat.T], axis=1)
    return filled.reshape(x.shape), missing


def _motion_points(motion: np.ndarray, source: MotionSource) -> np.ndarray:
    """(T, J, D) 'joints' whose mean L2 velocity is the motion velocity."""
    a = as_array(motion, "motion")
    if source not in ("pose", "points"):
        raise ValueError(f"motion source must be 'pose' or 'points', got {source!r}")
    if source == "pose":
        return head_pose(a)[:, None, :]  # one joint: the (yaw, pitch, roll) vector
    if a.ndim != 3:
        raise ValueError(f"source='points' needs landmarks/joints (T, J, D), got shape {a.shape}")
    return a


def motion_velocity(motion: np.ndarray, source: MotionSource = "pose") -> tuple[np.ndarray, int]:
    """Bailando's kinetic velocity, (T-1,): mean over joints of ||p[t+1] - p[t]|| (unsmoothed), and the
    number of interpolated (missing) frames."""
    points, missing = _fill_missing(_motion_points(motion, source))
    if len(points) < 2:
        raise ValueError(f"motion needs at least 2 frames, got {len(points)}")
    return np.linalg.norm(np.diff(points, axis=0), axis=-1).mean(axis=1), missing


def motion_beats(velocity: np.ndarray, sigma: float = VELOCITY_SIGMA) -> np.ndarray:
    """Strict local minima of the Gaussian-smoothed velocity (indices into `velocity`)."""
    v = np.asarray(velocity, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"velocity must be 1-D, got shape {v.shape}")
    return argrelextrema(gaussian_filter(v, sigma), np.less)[0]


def audio_beats(audio: np.ndarray | str | PathLike[str], sample_rate: int = 16000, fps: float = 25.0,
                percussive: bool = PERCUSSIVE) -> np.ndarray:
    """Beat positions in video frames: librosa onset strength (median over mel bands) of the HPSS
    percussive part (`percussive`), then ``beat_track``, with hop = sample_rate / fps samples.

    `audio`: mono samples (float in [-1, 1] or int16) at `sample_rate`, or a media file (read at it).
    """
    import librosa

    hop = sample_rate / fps
    if hop <= 0 or abs(hop - round(hop)) > 1e-9:
        raise ValueError(f"sample_rate / fps must be a whole number of samples, got {sample_rate} / {fps} = {hop:g}; "
                         "resample the audio (e.g. 16000 Hz for 25 fps, 48000 Hz for 30 fps)")
    hop = int(round(hop))
    if isinstance(audio, (str, PathLike)):
        from talking_head.toolkit import media

        y = media.read_audio(audio, sample_rate=sample_rate)
    else:
        y = np.asarray(audio)
    if y.dtype == np.int16:
        y = y.astype(np.float32) / 32768.0
    if y.dtype.kind != "f" or y.ndim != 1:
        raise ValueError(f"audio must be mono samples (n,) float or int16, got {y.dtype} {y.shape}")
    if len(y) == 0:
        raise ValueError("audio is empty")
    y = y.astype(np.float32)
    if percussive:
        y = librosa.effects.hpss(y)[1]
    with _first_compile():
        envelope = librosa.onset.onset_strength(y=y, sr=sample_rate, hop_length=hop, aggregate=np.median)
        _, beats = librosa.beat.beat_track(onset_envelope=envelope, sr=sample_rate, hop_length=hop)
    return np.asarray(beats, dtype=np.int64)


_compiled = False
COMPILE_LOCK = Path(tempfile.gettempdir()) / "talking-head-toolkit-numba.lock"  # one per machine, any cache dir


@contextlib.contextmanager
def _first_compile():
    """Hold a machine-wide lock around this process's first beat tracking. librosa's beat tracker is a numba
    gufunc cached on disk, and two processes compiling it at once can leave cache files that disagree and crash
    the next process that loads them (numba issue 10128): one compiles and writes, the others then load."""
    global _compiled
    if _compiled:
        yield
        return
    from filelock import FileLock

    with FileLock(COMPILE_LOCK):
        yield
    _compiled = True


_beats_of_audio = audio_beats  # BeatAlign.update's `audio_beats` argument shadows the name


def beat_align_score(audio_beat_frames: np.ndarray, motion_beat_frames: np.ndarray,
                     variance: float = BEAT_VARIANCE) -> float:
    """Bailando's BA: mean over audio beats of exp(-(distance to the nearest motion beat)^2 / (2 variance)).

    NaN without audio beats (undefined); 0 without motion beats (no beat is matched).
    """
    a = np.asarray(audio_beat_frames, dtype=np.float64).ravel()
    m = np.asarray(motion_beat_frames, dtype=np.float64).ravel()
    if len(a) == 0:
        return float("nan")
    if len(m) == 0:
        return 0.0
    nearest = np.min((m[None, :] - a[:, None]) ** 2, axis=1)
    return float(np.mean(np.exp(-nearest / 2.0 / variance)))


class BeatAlign(PerVideoRows):
    """Streaming Beat Align: ``update(motion, audio)`` per video, ``compute()`` mean over videos.

    `motion`: pose (T, >=3) or meshes (T, 478, 3) (``source="pose"``: velocity of yaw, pitch, roll), or
    landmarks/joints (T, J, D) (``source="points"``). `audio`: mono samples at `sample_rate` or a file;
    or pass precomputed ``audio_beats=`` (video frame indices) instead. `fps`: the default frame rate; a
    video at another rate passes its own (``update(..., fps=30)``): its audio hop is sample_rate / its fps.
    ``compute()``: ``beat_align``, ``videos``, ``videos_excluded`` (no audio beat inside the motion),
    ``videos_without_motion_beats`` (scored 0), ``frames_interpolated`` (missing poses filled linearly).
    ``per_video()``: per video ``beat_align``, ``audio_beats``, ``motion_beats``, ``frames_interpolated``.
    """

    name = "beat_align"
    direction = registry.entry(name).direction
    merged_attributes = ("_scores", "_counts", "_per_video_rows")

    def __init__(self, fps: float = 25.0, *, source: MotionSource = "pose", percussive: bool = PERCUSSIVE,
                 sigma: float = VELOCITY_SIGMA, variance: float = BEAT_VARIANCE) -> None:
        if source not in ("pose", "points"):
            raise ValueError(f"motion source must be 'pose' or 'points', got {source!r}")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = float(fps)
        self.source = source
        self.percussive = bool(percussive)
        self.sigma = float(sigma)
        self.variance = float(variance)
        self.reset()

    def reset(self) -> None:
        self._scores: list[float] = []
        self._counts = {"videos": 0, "videos_excluded": 0, "videos_without_motion_beats": 0, "frames_interpolated": 0}
        self._per_video_rows = []

    def update(self, motion: np.ndarray, audio: np.ndarray | str | PathLike[str] | None = None, *,
               sample_rate: int = 16000, audio_beats: np.ndarray | None = None, fps: float | None = None) -> None:
        if (audio is None) == (audio_beats is None):
            raise ValueError("give exactly one of audio and audio_beats")
        fps = self.fps if fps is None else float(fps)
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        velocity, missing = motion_velocity(motion, self.source)
        m_beats = motion_beats(velocity, self.sigma)
        if audio_beats is None:
            a_beats = _beats_of_audio(audio, sample_rate, fps, self.percussive)
        else:
            a_beats = np.asarray(audio_beats).ravel()
        a_beats = a_beats[(a_beats >= 0) & (a_beats < len(velocity))]  # Bailando: music_array[:length]
        score = beat_align_score(a_beats, m_beats, self.variance)
        c = self._counts
        c["videos"] += 1
        c["frames_interpolated"] += missing
        if np.isnan(score):
            c["videos_excluded"] += 1
        else:
            self._scores.append(score)
            if len(m_beats) == 0:
                c["videos_without_motion_beats"] += 1
        self._per_video_rows.append({"beat_align": score, "audio_beats": len(a_beats), "motion_beats": len(m_beats),
                                     "frames_interpolated": missing, "fps": fps})

    def compute(self) -> dict[str, Any]:
        return {"beat_align": float(np.mean(self._scores)) if self._scores else float("nan"), **self._counts}

    def config(self) -> dict[str, Any]:
        return {"metric": "beat_align", "reference": "Bailando utils/beat_align_score.py", "fps": self.fps,
                "motion_source": self.source,
                "velocity": ("L2 of the (yaw, pitch, roll) step, degrees/frame" if self.source == "pose"
                             else "mean over points of the L2 step"),
                "velocity_sigma": self.sigma, "beat_variance": self.variance,
                "audio_hop": "sample_rate / fps", "hpss_percussive": self.percussive,
                "onset_aggregate": ONSET_AGGREGATE, "beat_tracker": "librosa.beat.beat_track defaults",
                "missing_frames": "linear interpolation", "aggregate": "mean over videos"}

    def weights_provenance(self) -> dict[str, str]:
        return {}


def beat_align(motion: np.ndarray, audio: np.ndarray | str | PathLike[str] | None = None, *,
               sample_rate: int = 16000, fps: float = 25.0, audio_beats: np.ndarray | None = None,
               **kwargs: Any) -> dict[str, Any]:
    """Beat Align of one video (see :class:`BeatAlign`); returns its score and beat counts."""
    metric = BeatAlign(fps, **kwargs)
    metric.update(motion, audio, sample_rate=sample_rate, audio_beats=audio_beats)
    return metric.per_video()[0]


# -- for the runner -----------------------------------------------------------------------------------


def beat_sample_rate(fps: float) -> int:
    """An audio rate near 16 kHz with a whole number of samples per video frame (the onset hop)."""
    if fps <= 0 or abs(fps - round(fps)) > 1e-6:
        raise ValueError(f"Beat Align needs an integer frame rate, got {fps:g}")
    return int(round(fps)) * math.ceil(16000 / round(fps))  # 16000 at 25 fps, 16020 at 30


class BeatAlignVideos(PoseVideos):
    """Bailando's Beat Align of head motion (yaw, pitch, roll velocity) to each video's own audio."""

    name, direction = BeatAlign.name, BeatAlign.direction
    keys = ("beat_align",)
    video_means = {"beat_align": "beat_align", "reference.beat_align": "reference_beat_align"}  # means over videos
    consumes = frozenset({LANDMARKS, AUDIO})

    def make(self, fps: float) -> Any:
        return BeatAlign(fps=fps, source="pose")

    def add_video(self, metric: Any, per_frame: np.ndarray, path: Any, fps: float) -> dict[str, Any]:
        if len(per_frame) < 2:
            return {"beat_align": float("nan")}
        from talking_head.toolkit import media  # as in audio_beats: the motion metrics import no media stack

        rate = beat_sample_rate(fps)
        metric.update(per_frame, media.read_audio(path, sample_rate=rate), sample_rate=rate, fps=fps)
        return metric.per_video(-1)[0]

    def config(self) -> dict[str, Any]:
        return {**super().config(), "audio": "each video's own audio track, at a whole number of samples per frame"}

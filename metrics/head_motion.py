"""Head motion: pose diversity, cross-sample diversity and Beat Align (docs/metrics-reference.md#head-motion).

Usage::

    from talking_head.metrics.head_motion import pose_diversity, cross_sample_diversity, beat_align

    pose_diversity([pose_a, pose_b])["mean_std"]     # (T, 3) yaw, pitch, roll in degrees, one per video
    cross_sample_diversity([seed0, seed1, seed2])["diversity"]  # K samples for one audio
    beat_align(pose_a, "audio.wav", fps=25.0)["beat_align"]

Definitions
-----------

Pose is (yaw, pitch, roll) in degrees, the convention of :mod:`toolkit.pose` (yaw > 0 nose to
image right, pitch > 0 nose down, roll > 0 clockwise). Every function takes either

* a pose array (T, >=3) whose columns 0-2 are yaw, pitch, roll in degrees (other columns, e.g.
  ``fit_pose``'s translation and scale, are ignored: pixels do not mix with degrees), or
* MediaPipe meshes (T, 478, 3) in pixels, turned into pose by :func:`toolkit.pose.fit_pose`.

Frames without a face are NaN rows; they are left out (or, for Beat Align, interpolated) and
counted, never dropped silently.

Pose diversity (SadTalker's "Diversity"; SadTalker released no evaluation code, SadTalker#755/#382/#620)
    per video, the standard deviation over time of each angle (``np.std``, ddof=0, as the public
    reimplementation on Hopenet angles); then the mean over videos, per angle. ``mean_std`` is the
    mean of the three. SadTalker's numbers came from Hopenet on the frames; ours come from the mesh
    fit, so they are comparable between models scored here, not with the paper's table.

Cross-sample diversity (for stochastic models)
    for one audio, K pose sequences generated with different seeds; per pair, the mean over time of
    the L2 distance between their (yaw, pitch, roll) vectors; averaged over the K(K-1)/2 pairs; then
    the mean over audios.

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

import itertools
import math
from os import PathLike
from typing import Any, Literal, Sequence

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.signal import argrelextrema

from talking_head.metrics import registry
from talking_head.metrics.base import AUDIO, LANDMARKS, Chunk, Metric, PerVideoRows, VideoInfo
from talking_head.metrics.both_sides import BothSides
from talking_head.toolkit import face_mesh

__all__ = [
    "ANGLES",
    "head_pose",
    "pose_diversity",
    "PoseDiversity",
    "cross_sample_diversity",
    "CrossSampleDiversity",
    "motion_velocity",
    "motion_beats",
    "audio_beats",
    "beat_align_score",
    "beat_align",
    "BeatAlign",
]

ANGLES = ("yaw", "pitch", "roll")
STD_DDOF = 0  # np.std's default, as in the public SadTalker-style reimplementation

# Bailando utils/beat_align_score.py
VELOCITY_SIGMA = 5.0  # G(kinetic_vel, 5): gaussian_filter, frames
BEAT_VARIANCE = 9.0  # exp(-d**2 / 2 / 9): sigma = 3 frames
# Bailando extractor.py: librosa.effects.hpss, onset_strength(aggregate=np.median), beat_track(onset_envelope)
PERCUSSIVE = True
ONSET_AGGREGATE = "median"

MotionSource = Literal["pose", "points"]


# -- pose input -------------------------------------------------------------------------------------


def _as_array(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{what} must be numeric, got dtype {a.dtype}")
    if a.ndim == 0 or a.shape[0] == 0:
        raise ValueError(f"{what} is empty (0 frames)")
    return a.astype(np.float64)


def _is_mesh(a: np.ndarray) -> bool:
    return a.ndim == 3 and a.shape[1] == face_mesh.NUM_POINTS and a.shape[2] == 3


def head_pose(motion: np.ndarray) -> np.ndarray:
    """(T, 3) yaw, pitch, roll in degrees from a pose array (T, >=3) or meshes (T, 478, 3); NaN rows kept."""
    a = _as_array(motion, "pose")
    if _is_mesh(a):
        from talking_head.toolkit.pose import fit_pose

        return fit_pose(a).pose[:, :3]
    if a.ndim != 2 or a.shape[1] < 3:
        raise ValueError(f"expected a pose array (T, >=3) with yaw, pitch, roll in degrees or meshes "
                         f"(T, {face_mesh.NUM_POINTS}, 3), got shape {a.shape}")
    return a[:, :3]


# -- pose diversity -----------------------------------------------------------------------------------


def _video_std(motion: np.ndarray) -> tuple[np.ndarray, int, int]:
    angles = head_pose(motion)
    ok = np.isfinite(angles).all(axis=1)
    used = int(ok.sum())
    std = angles[ok].std(axis=0, ddof=STD_DDOF) if used >= 2 else np.full(3, np.nan)
    return std, used, len(angles) - used


class PoseDiversity(PerVideoRows):
    """Streaming pose diversity: ``update(pose_or_mesh)`` per video, ``compute()`` mean over videos per angle.

    ``per_video()``: per video ``yaw_std``, ``pitch_std``, ``roll_std`` (NaN with fewer than 2 frames
    with a pose), ``frames_used``, ``frames_excluded``.

    ``compute()``: ``yaw_std``, ``pitch_std``, ``roll_std`` (degrees, mean over videos of the per-video
    std over time), ``mean_std`` (their mean), ``videos``, ``videos_excluded`` (fewer than 2 frames with
    a pose), ``frames_used``, ``frames_excluded``.
    """

    name = "pose"
    direction = registry.entry(name).direction  # the registry is the one place for directions

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._stds: list[np.ndarray] = []
        self._counts = {"videos": 0, "videos_excluded": 0, "frames_used": 0, "frames_excluded": 0}
        self._per_video_rows = []

    def update(self, motion: np.ndarray) -> None:
        std, used, excluded = _video_std(motion)
        self._counts["videos"] += 1
        self._counts["frames_used"] += used
        self._counts["frames_excluded"] += excluded
        if np.isfinite(std).all():
            self._stds.append(std)
        else:
            self._counts["videos_excluded"] += 1
        self._per_video_rows.append({**{f"{a}_std": float(s) for a, s in zip(ANGLES, std)}, "frames_used": used,
                                     "frames_excluded": excluded})

    def compute(self) -> dict[str, Any]:
        mean = np.mean(self._stds, axis=0) if self._stds else np.full(3, np.nan)
        return {**{f"{a}_std": float(m) for a, m in zip(ANGLES, mean)}, "mean_std": float(np.mean(mean)),
                "unit": "degrees", **self._counts}

    def config(self) -> dict[str, Any]:
        return {"metric": "pose_diversity", "angles": list(ANGLES), "std_ddof": STD_DDOF,
                "per_video": "std over time of each angle", "aggregate": "mean over videos, per angle",
                "pose": "talking_head.toolkit.pose.fit_pose on MediaPipe 478-point meshes, or given (T, >=3) poses"}

    def weights_provenance(self) -> dict[str, str]:
        return {}  # MediaPipe's model ships in its wheel; the pose fit uses the committed canonical face


def pose_diversity(videos: Sequence[np.ndarray] | np.ndarray) -> dict[str, Any]:
    """:class:`PoseDiversity` over `videos` (a list of per-video poses/meshes, or one array = one video)."""
    metric = PoseDiversity()
    for video in [videos] if isinstance(videos, np.ndarray) else videos:
        metric.update(video)
    return metric.compute()


# -- cross-sample diversity ---------------------------------------------------------------------------


def _pairwise(samples: Sequence[np.ndarray]) -> tuple[list[float], int, int, int]:
    if isinstance(samples, np.ndarray) and samples.ndim == 3 and not _is_mesh(samples):
        samples = list(samples)  # (K, T, >=3)
    if len(samples) < 2:
        raise ValueError(f"cross-sample diversity needs K >= 2 sequences for one audio, got {len(samples)}")
    poses = [head_pose(s) for s in samples]
    lengths = {len(p) for p in poses}
    if len(lengths) != 1:
        raise ValueError(f"the K sequences of one audio must have the same length, got {sorted(lengths)}")
    distances, used, excluded, empty = [], 0, 0, 0
    for a, b in itertools.combinations(poses, 2):
        d = np.linalg.norm(a - b, axis=1)
        ok = np.isfinite(d)
        used += int(ok.sum())
        excluded += int((~ok).sum())
        if ok.any():
            distances.append(float(d[ok].mean()))
        else:
            empty += 1
    return distances, used, excluded, empty


class CrossSampleDiversity(PerVideoRows):
    """Streaming cross-sample diversity: ``update(samples)`` per audio with K >= 2 pose sequences
    (list of (T, >=3) poses or (T, 478, 3) meshes, or one (K, T, >=3) array) from different seeds.

    Per audio: mean over the K(K-1)/2 pairs of the mean over frames of ||(yaw, pitch, roll)_i -
    (yaw, pitch, roll)_j|| (degrees; frames where either has no pose are left out and counted).
    ``compute()``: ``diversity`` (mean over audios), ``pairs``, ``pairs_excluded`` (no common frame),
    ``frames_used``/``frames_excluded`` (pair-frames), ``audios``. ``per_video()``: per audio (one
    update), ``diversity``, ``pairs``, ``pairs_excluded``.
    """

    name = "diversity"
    direction = registry.entry(name).direction

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._values: list[float] = []
        self._counts = {"audios": 0, "audios_excluded": 0, "pairs": 0, "pairs_excluded": 0,
                        "frames_used": 0, "frames_excluded": 0}
        self._per_video_rows = []

    def update(self, samples: Sequence[np.ndarray] | np.ndarray) -> None:
        distances, used, excluded, empty = _pairwise(samples)
        value = float(np.mean(distances)) if distances else float("nan")
        c = self._counts
        c["audios"] += 1
        c["pairs"] += len(distances)
        c["pairs_excluded"] += empty
        c["frames_used"] += used
        c["frames_excluded"] += excluded
        if distances:
            self._values.append(value)
        else:
            c["audios_excluded"] += 1
        self._per_video_rows.append({"diversity": value, "pairs": len(distances), "pairs_excluded": empty})

    def compute(self) -> dict[str, Any]:
        value = float(np.mean(self._values)) if self._values else float("nan")
        return {"diversity": value, "unit": "degrees", **self._counts}

    def config(self) -> dict[str, Any]:
        return {"metric": "cross_sample_diversity", "angles": list(ANGLES),
                "per_pair": "mean over frames of the L2 distance between (yaw, pitch, roll) vectors",
                "per_audio": "mean over the K(K-1)/2 pairs", "aggregate": "mean over audios"}

    def weights_provenance(self) -> dict[str, str]:
        return {}


def cross_sample_diversity(samples: Sequence[np.ndarray] | np.ndarray) -> dict[str, Any]:
    """:class:`CrossSampleDiversity` of one audio's K sequences."""
    metric = CrossSampleDiversity()
    metric.update(samples)
    return metric.compute()


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
    a = _as_array(motion, "motion")
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
    envelope = librosa.onset.onset_strength(y=y, sr=sample_rate, hop_length=hop, aggregate=np.median)
    _, beats = librosa.beat.beat_track(onset_envelope=envelope, sr=sample_rate, hop_length=hop)
    return np.asarray(beats, dtype=np.int64)


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
    or pass precomputed ``audio_beats=`` (video frame indices) instead.
    ``compute()``: ``beat_align``, ``videos``, ``videos_excluded`` (no audio beat inside the motion),
    ``videos_without_motion_beats`` (scored 0), ``frames_interpolated`` (missing poses filled linearly).
    ``per_video()``: per video ``beat_align``, ``audio_beats``, ``motion_beats``, ``frames_interpolated``.
    """

    name = "beat_align"
    direction = registry.entry(name).direction

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
               sample_rate: int = 16000, audio_beats: np.ndarray | None = None) -> None:
        if (audio is None) == (audio_beats is None):
            raise ValueError("give exactly one of audio and audio_beats")
        velocity, missing = motion_velocity(motion, self.source)
        m_beats = motion_beats(velocity, self.sigma)
        if audio_beats is None:
            a_beats = _beats_of_audio(audio, sample_rate, self.fps, self.percussive)
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
                                     "frames_interpolated": missing})

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


# -- for the runner -------------------------------------------------------------------------------------


class PoseVideos(BothSides):
    """Pose diversity of the generated videos and of the references, from the runner's meshes."""

    name, direction = PoseDiversity.name, PoseDiversity.direction
    keys = ("yaw_std", "pitch_std", "roll_std")

    def make(self, fps: float) -> Any:
        return PoseDiversity()

    def reduce(self, meshes: np.ndarray) -> np.ndarray:
        return head_pose(meshes)  # (n, 3) yaw, pitch, roll: the pose fit is per frame

    def add_video(self, metric: Any, per_frame: np.ndarray, path: Any, fps: float) -> dict[str, Any]:
        if len(per_frame) == 0:  # a video without frames is not counted (PoseDiversity rejects empty input)
            return {f"{angle}_std": float("nan") for angle in ANGLES}
        metric.update(per_frame)
        return metric.per_video(-1)[0]


def beat_sample_rate(fps: float) -> int:
    """An audio rate near 16 kHz with a whole number of samples per video frame (the onset hop)."""
    if fps <= 0 or abs(fps - round(fps)) > 1e-6:
        raise ValueError(f"Beat Align needs an integer frame rate, got {fps:g}")
    return int(round(fps)) * math.ceil(16000 / round(fps))  # 16000 at 25 fps, 16020 at 30


class BeatAlignVideos(PoseVideos):
    """Bailando's Beat Align of head motion (yaw, pitch, roll velocity) to each video's own audio."""

    name, direction = BeatAlign.name, BeatAlign.direction
    keys = ("beat_align",)
    consumes = frozenset({LANDMARKS, AUDIO})

    def make(self, fps: float) -> Any:
        return BeatAlign(fps=fps, source="pose")

    def add_video(self, metric: Any, per_frame: np.ndarray, path: Any, fps: float) -> dict[str, Any]:
        if len(per_frame) < 2:
            return {"beat_align": float("nan")}
        from talking_head.toolkit import media  # as in audio_beats: the motion metrics import no media stack

        rate = beat_sample_rate(fps)
        metric.update(per_frame, media.read_audio(path, sample_rate=rate), sample_rate=rate)
        return metric.per_video(-1)[0]

    def config(self) -> dict[str, Any]:
        return {**super().config(), "audio": "each video's own audio track, at a whole number of samples per frame"}


class DiversityVideos(Metric):
    """Cross-sample diversity: the head poses of the samples generated for one clip's audio
    (``<clip_id>.sample<k>``), compared pairwise. Clips with a single video do not count."""

    name, direction = CrossSampleDiversity.name, CrossSampleDiversity.direction
    consumes = frozenset({LANDMARKS})

    def __init__(self, device: str = "cpu") -> None:
        self.metric = CrossSampleDiversity()
        self.reset()

    def start_video(self, video: VideoInfo) -> None:
        self._video = video
        self._parts: list[np.ndarray] = []

    def update(self, chunk: Chunk) -> None:
        self._parts.append(head_pose(chunk.generated_meshes))  # (n, 3): the poses are all a sample leaves behind

    def end_video(self) -> dict[str, Any]:
        pair = self._video.pair
        if pair.sample is not None and self._parts:
            self._samples.setdefault(pair.clip_id, {})[pair.sample] = np.concatenate(self._parts)
        self.discard_video()
        return {}

    def discard_video(self) -> None:
        self._parts = []

    def compute(self) -> dict[str, Any]:
        self.metric.reset()
        clips = []
        for clip, samples in sorted(self._samples.items()):
            if len(samples) < 2:
                continue
            poses = [samples[k] for k in sorted(samples)]
            n = min(len(p) for p in poses)  # samples of one audio have its length; trim encoder padding
            self.metric.update([p[:n] for p in poses])
            clips.append(clip)
        per_clip = {clip: row["diversity"] for clip, row in zip(clips, self.metric.per_video())}  # one row per update
        out = self.metric.compute()
        out["per_clip"] = per_clip
        if not per_clip:
            out["note"] = "no clip has two or more generated samples named <clip_id>.sample<k>"
        return out

    def config(self) -> dict[str, Any]:
        return {**self.metric.config(), "samples": "generated videos <clip_id>.sample<k> (toolkit.video_ids)",
                "pose": "talking_head.toolkit.pose.fit_pose on the runner's MediaPipe meshes"}

    def reset(self) -> None:
        self.metric.reset()
        self._samples: dict[str, dict[int, np.ndarray]] = {}
        self._video: VideoInfo | None = None
        self._parts = []

"""Head motion: pose diversity and cross-sample diversity (docs/metrics-reference.md#head-motion).

Usage::

    from talking_head.metrics.head_motion import pose_diversity, cross_sample_diversity

    pose_diversity([pose_a, pose_b])["mean_std"]     # (T, 3) yaw, pitch, roll in degrees, one per video
    cross_sample_diversity([seed0, seed1, seed2])["diversity"]  # K samples for one audio

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

Beat Align, which reads the same pose input: :mod:`metrics.beat_align`.
"""

from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np

from talking_head.metrics import registry
from talking_head.metrics.base import LANDMARKS, Chunk, Metric, PerVideoRows, VideoInfo
from talking_head.metrics.both_sides import BothSides
from talking_head.toolkit import face_mesh

__all__ = [
    "ANGLES",
    "head_pose",
    "pose_diversity",
    "PoseDiversity",
    "cross_sample_diversity",
    "CrossSampleDiversity",
]

ANGLES = ("yaw", "pitch", "roll")
STD_DDOF = 0  # np.std's default, as in the public SadTalker-style reimplementation



# -- pose input -------------------------------------------------------------------------------------


def as_array(x: Any, what: str) -> np.ndarray:
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
    a = as_array(motion, "pose")
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
    merged_attributes = ("_stds", "_counts", "_per_video_rows")

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
    merged_attributes = ("_values", "_counts", "_per_video_rows")

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


# -- for the runner -------------------------------------------------------------------------------------


class PoseVideos(BothSides):
    """Pose diversity of the generated videos and of the references, from the runner's meshes."""

    name, direction = PoseDiversity.name, PoseDiversity.direction
    keys = ("yaw_std", "pitch_std", "roll_std")
    # Bootstrap (metrics.base): each angle's std is a mean over videos; mean_std the mean of the three.
    video_means = {
        "yaw_std": "pose_yaw_std", "pitch_std": "pose_pitch_std", "roll_std": "pose_roll_std",
        "mean_std": ("pose_yaw_std", "pose_pitch_std", "pose_roll_std"),
        "reference.yaw_std": "reference_pose_yaw_std", "reference.pitch_std": "reference_pose_pitch_std",
        "reference.roll_std": "reference_pose_roll_std",
        "reference.mean_std": ("reference_pose_yaw_std", "reference_pose_pitch_std", "reference_pose_roll_std"),
    }

    def make(self, fps: float) -> Any:
        return PoseDiversity()

    def reduce(self, meshes: np.ndarray) -> np.ndarray:
        return head_pose(meshes)  # (n, 3) yaw, pitch, roll: the pose fit is per frame

    def add_video(self, metric: Any, per_frame: np.ndarray, path: Any, fps: float) -> dict[str, Any]:
        if len(per_frame) == 0:  # a video without frames is not counted (PoseDiversity rejects empty input)
            return {f"{angle}_std": float("nan") for angle in ANGLES}
        metric.update(per_frame)
        return metric.per_video(-1)[0]


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

    def state(self) -> dict[str, Any]:
        """Each committed sample's head poses, by clip and sample number."""
        return {"samples": {clip: dict(samples) for clip, samples in self._samples.items()}}

    def merge(self, state: dict[str, Any]) -> None:
        for clip, samples in state["samples"].items():
            self._samples.setdefault(clip, {}).update(samples)

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

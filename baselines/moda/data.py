"""What MODA's stages read from a preprocessed dataset: the semantic point sets, per-speaker means and
per-clip motion (canonical meshes, head poses, shoulder points, audio).

Units (one convention; the release mixes two, docs/reference-models.md#data-and-units): meshes are the dataset's
``canonical_landmarks`` (head pose removed, 512-px canonical units); head motion is the dataset's 7-number
``pose`` (yaw, pitch, roll in degrees, tx, ty, tz in crop pixels, scale); shoulder points are crop pixels
(:mod:`baselines.moda.torso`). Every target is a displacement from the speaker's mean over its training
clips, as in MODA's ``Audio2ReprDataset``.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from talking_head.baselines.moda.torso import NUM_POINTS as TORSO_POINTS, clip_torso
from talking_head.toolkit import dataset as schema
from talking_head.toolkit import face_mesh

EYE_PARTS = ("right_eye", "right_eyebrow", "right_iris", "left_eye", "left_eyebrow", "left_iris")


@functools.lru_cache(maxsize=1)
def point_sets() -> dict[str, tuple[int, ...]]:
    """MODA's semantic subsets of the 478-point mesh: ``lips`` (MediaPipe's FACEMESH_LIPS, 40 points) and
    ``eyes`` (eyes, eyebrows and irises of both sides, 60 points), sorted indices."""
    from talking_head.baselines.mesh_render import connections

    edges = connections()
    eyes = sorted({int(i) for part in EYE_PARTS for i in np.unique(edges[part])})
    lips = sorted({int(i) for i in np.unique(edges["lips"])})
    assert len(lips) == 40 and len(eyes) == 60 and tuple(lips) == face_mesh.LIPS
    return {"lips": tuple(lips), "eyes": tuple(eyes)}


@dataclasses.dataclass
class Subject:
    """A speaker's means: the condition and the origin of every displacement target."""

    mesh: np.ndarray  # (478, 3) canonical
    pose: np.ndarray  # (7,)
    torso: np.ndarray  # (18, 3) crop px


@dataclasses.dataclass
class Clip:
    clip_id: str
    speaker: str
    fps: float
    canonical: np.ndarray  # (T, 478, 3), NaN where no face
    pose: np.ndarray  # (T, 7)
    torso: np.ndarray | None  # (T, 18, 3) or None when not asked for
    wav: np.ndarray  # 16 kHz float32
    mel: np.ndarray  # (M, 80) Wav2Lip log-mel

    @property
    def good(self) -> np.ndarray:
        """(T,) frames with a face (mesh, pose and, when present, shoulders all finite)."""
        ok = np.isfinite(self.canonical).all(axis=(1, 2)) & np.isfinite(self.pose).all(axis=1)
        if self.torso is not None:
            ok &= np.isfinite(self.torso).all(axis=(1, 2))
        return ok


def load_clips(dataset_dir: str | Path, split: str = "train", torso: bool = True,
               clip_ids: list[str] | None = None) -> list[Clip]:
    """The clips of `split` (or only `clip_ids`) with the arrays MODA uses; shoulders derived (and cached)
    by :func:`baselines.moda.torso.clip_torso` when `torso`."""
    rows = schema.load_split(dataset_dir, split)
    columns = [schema.CLIP_ID, schema.SPEAKER, schema.FPS, schema.CANONICAL_LANDMARKS, schema.POSE, schema.AUDIO,
               schema.MEL]
    shoulders = clip_torso(dataset_dir, split, clip_ids) if torso else {}
    clips = []
    for row in rows.select_columns(columns).with_format("numpy"):
        clip_id = str(row[schema.CLIP_ID])
        if clip_ids is not None and clip_id not in clip_ids:
            continue
        clips.append(Clip(clip_id, str(row[schema.SPEAKER]), float(row[schema.FPS]),
                          np.asarray(row[schema.CANONICAL_LANDMARKS], np.float32),
                          np.asarray(row[schema.POSE], np.float32),
                          shoulders.get(clip_id) if torso else None,
                          np.asarray(row[schema.AUDIO]).astype(np.float32) / 32768.0,
                          np.asarray(row[schema.MEL], np.float32)))
    return clips


def subjects(clips: list[Clip]) -> dict[str, Subject]:
    """Each speaker's mean mesh, pose and shoulders over the frames (with a face) of `clips` (the training
    clips). Shoulders are zeros when the clips were loaded without them."""
    sums: dict[str, list] = {}
    for clip in clips:
        _add_clip(sums, clip)
    return _means(sums)


def speaker_means(dataset_dir: str | Path, split: str = "train", torso: bool = False,
                  by_clip: bool = False) -> dict[str, Subject]:
    """``subjects(load_clips(dataset_dir, split, torso))``, the same numbers, read one clip at a time through
    zero-copy views of the dataset's arrays: no audio is read and no clip is kept, so memory does not grow
    with the dataset. `by_clip`: each clip's own means, keyed by clip id (the release's per-clip means,
    ``fixes.means: clip``)."""
    from talking_head.toolkit.windows import ArrowRows

    rows = schema.load_split(dataset_dir, split)
    views = ArrowRows(rows, (schema.CANONICAL_LANDMARKS, schema.POSE))
    shoulders = clip_torso(dataset_dir, split) if torso else {}
    sums: dict[str, list] = {}
    for row, (clip_id, speaker) in enumerate(zip(rows[schema.CLIP_ID], rows[schema.SPEAKER])):
        _add_clip(sums, Clip(str(clip_id), str(clip_id) if by_clip else str(speaker), 0.0,
                             np.asarray(views.view(schema.CANONICAL_LANDMARKS, row), np.float32),
                             np.asarray(views.view(schema.POSE, row), np.float32),
                             shoulders.get(str(clip_id)) if torso else None,
                             np.zeros(0, np.float32), np.zeros((0, 80), np.float32)))
    return _means(sums)


def _add_clip(sums: dict[str, list], clip: Clip) -> None:
    good = clip.good
    torso = clip.torso[good] if clip.torso is not None else np.zeros((good.sum(), TORSO_POINTS, 3), np.float32)
    entry = sums.setdefault(clip.speaker, [0.0, 0.0, 0.0, 0])
    entry[0] = entry[0] + clip.canonical[good].astype(np.float64).sum(0)
    entry[1] = entry[1] + clip.pose[good].astype(np.float64).sum(0)
    entry[2] = entry[2] + torso.astype(np.float64).sum(0)
    entry[3] += int(good.sum())


def _means(sums: dict[str, list]) -> dict[str, Subject]:
    return {speaker: Subject(*(np.asarray(s / n, np.float32) for s in (mesh, pose, torso)))
            for speaker, (mesh, pose, torso, n) in sums.items() if n}

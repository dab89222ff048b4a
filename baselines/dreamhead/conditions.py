"""DreamHead's test-time conditions: what I_mask shows, which head pose places the landmarks, and which mesh
is the identity input P-bar. Chosen by name (``toolkit generate --condition KEY=VALUE``) and recorded in
generation.json.

``setting``: the masked-frame condition of L2I (Fig. 2b)

``dubbing`` (the default for a dataset clip)
    the figure's: output frame i gets I_mask = the clip's frame i with its lower face blacked out, and A2L's
    canonical landmarks are placed with frame i's head pose; the generated lower face is pasted back into
    frame i. Training feeds the same (the target frame masked by the box of its own landmarks); here the
    box is the union of frame i's own lower-face box (its real mouth stays hidden) and the generated
    landmarks' box. Frames are read chunk by chunk as L2I needs them, never the whole clip at once.
``one_shot`` (the only one for ``--audio``, where there is no frame i)
    the reference frame masked for every output frame, the reference's head pose held (unless the caller
    gives poses), the generated lower face pasted into the reference frame.

In both, I_ref is the reference frame (or, with ``sampler.previous_as_reference``, the generated frame
i - 1): the real frame i - tau of a dataset clip would show the real mouth of a nearby frame.

``identity``: P-bar, A2L's identity input (training: the speaker's mean canonical mesh over its training
clips, :func:`baselines.subjects.speaker_means`)

``clip_mean`` (the default for a dataset clip)
    the mean canonical mesh over the clip's own frames with a face: a mean over many frames like training's,
    for every speaker, also in an identity-disjoint split (HDTF's) where the test speaker has no training
    clips. It averages the clip's own expressions, so it knows the clip's mean mouth shape.
``train_mean``
    the speaker's mean over the train split, exactly the training condition; refused for a speaker without
    training clips.
``reference_frame`` (the only one for ``--audio``)
    the reference frame's canonical mesh: one frame, its expression included.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Optional

import numpy as np
import torch

from talking_head.toolkit import face_mesh

SUBNASALE = 164  # MediaPipe point between the nose and the upper lip: the top of the masked box
# Each option's values, the default first: with a dataset clip, and with a reference image alone (--audio).
WITH_CLIP = {"setting": ("dubbing", "one_shot"), "identity": ("clip_mean", "train_mean", "reference_frame")}
WITHOUT_CLIP = {"setting": ("one_shot",), "identity": ("reference_frame",)}


def choices(clip: bool) -> dict[str, tuple[str, ...]]:
    return dict(WITH_CLIP if clip else WITHOUT_CLIP)


def identity_mesh(identity: str, reference_canonical: np.ndarray, clip_canonical: Optional[np.ndarray],
                  speaker: Optional[np.ndarray], where: str) -> np.ndarray:
    """P-bar (478, 3) for the `identity` choice (see the module docstring)."""
    if identity == "reference_frame":
        return reference_canonical
    if identity == "train_mean":
        if speaker is None:
            raise ValueError(f"{where}: identity=train_mean needs the speaker's training clips, and this speaker has "
                             "none; use identity=clip_mean or identity=reference_frame")
        return speaker
    if identity == "clip_mean":
        canonical = np.asarray(clip_canonical, dtype=np.float64)
        good = np.isfinite(canonical).all(axis=(1, 2))
        return canonical[good].mean(0).astype(np.float32)  # the reference frame has a face: never empty
    raise ValueError(f"identity must be one of {WITH_CLIP['identity']}, got {identity!r}")


# ------------------------------------------------------------------------------- the masked box
def lower_face_boxes(landmarks: np.ndarray, margin: float) -> np.ndarray:
    """(N, 4) boxes x0, y0, x1, y1 of the lower face for landmarks (N, 478, 2|3), in their pixels.

    From the point between nose and upper lip (164) down to the chin (152), and across the lips; the
    box grows by `margin` times its width left and right and `margin` times its height downwards, so
    the jaw line and the cheeks beside the mouth, which move with it, are covered too.
    """
    lips = landmarks[:, list(face_mesh.LIPS), :2]
    left, right = lips[..., 0].min(axis=1), lips[..., 0].max(axis=1)
    top, bottom = landmarks[:, SUBNASALE, 1], landmarks[:, face_mesh.CHIN, 1]
    width, height = right - left, bottom - top
    return np.stack([left - margin * width, top, right + margin * width, bottom + margin * height], axis=1)


def box_masks(boxes: np.ndarray, size: int) -> torch.Tensor:
    """(N, 1, size, size) float masks, 1 on the pixels whose centre lies inside the box."""
    centres = torch.arange(size, dtype=torch.float64) + 0.5
    b = torch.from_numpy(np.asarray(boxes, dtype=np.float64))
    inside_x = (centres[None] >= b[:, 0:1]) & (centres[None] < b[:, 2:3])
    inside_y = (centres[None] >= b[:, 1:2]) & (centres[None] < b[:, 3:4])
    return (inside_y[:, :, None] & inside_x[:, None, :]).float()[:, None]


def union_boxes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.concatenate([np.minimum(a[:, :2], b[:, :2]), np.maximum(a[:, 2:], b[:, 2:])], axis=1)


# ------------------------------------------------------------------------------- the masked frames
class MaskedFrames:
    """Where each output frame's I_mask and paste-back canvas come from: the reference frame (one-shot) or
    the clip's frame i (dubbing), read from `frames`, an iterator of (n, H, W, 3) uint8 chunks of the clip
    from frame 0 in order, with `frame_landmarks` (T, 478, 2|3) of those frames (NaN where no face)."""

    def __init__(self, reference: np.ndarray, reference_landmarks: np.ndarray, count: int,
                 frames: Optional[Iterable[np.ndarray]] = None, frame_landmarks: Optional[np.ndarray] = None):
        self.reference, self.dubbing = reference, frames is not None
        if (frames is None) != (frame_landmarks is None):
            raise ValueError("dubbing needs both the clip's frames and their landmarks")
        if frames is None:  # the reference's own box on every frame
            self.own = np.repeat(reference_landmarks[None, :, :2], count, axis=0)
        else:
            own = np.asarray(frame_landmarks, dtype=np.float64)
            if own.ndim != 3 or own.shape[1] != face_mesh.NUM_POINTS or len(own) < count:
                raise ValueError(f"frame_landmarks must be ({count} or more, 478, 2|3), got shape {own.shape}")
            self.own = own[:count, :, :2]
        self._chunks: Iterator[np.ndarray] = iter(frames) if frames is not None else iter(())
        self._left = np.zeros((0, *reference.shape), np.uint8)

    def points(self, reference_landmarks: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(N, 478, 2) faces the face crop is centred on: the reference's, the targets' and the dubbed frames'
        (:func:`baselines.face_crop.face_crop_box` leaves out those without a face)."""
        own = self.own if self.dubbing else self.own[:0]
        return np.concatenate([reference_landmarks[..., :2].reshape(-1, face_mesh.NUM_POINTS, 2), targets[..., :2], own])

    def boxes(self, targets: np.ndarray, margin: float, transform=lambda points: points) -> np.ndarray:
        """(T, 4) masked boxes: the union of the targets' and each source frame's own lower-face box (a
        dubbed frame without a face: the target's alone), in the pixels `transform` maps the frame's to."""
        mine = lower_face_boxes(targets, margin)
        own = lower_face_boxes(transform(self.own), margin)
        own = np.where(np.isfinite(own).all(axis=1, keepdims=True), own, mine)
        return union_boxes(mine, own)

    def take(self, count: int) -> np.ndarray:
        """The next `count` source frames (count, H, W, 3); one-shot: the reference (1, H, W, 3)."""
        if not self.dubbing:
            return self.reference[None]
        parts, have = [self._left], len(self._left)
        while have < count:
            chunk = next(self._chunks, None)
            if chunk is None:
                raise ValueError(f"the clip to dub has fewer frames than the landmarks to draw (ran out at {have})")
            if chunk.shape[1:] != self.reference.shape:
                raise ValueError(f"the clip's frames are {chunk.shape[1:]}, the reference {self.reference.shape}")
            parts.append(chunk)
            have += len(chunk)
        frames = np.concatenate(parts)
        self._left = frames[count:]
        return frames[:count]

"""The face a reference model animates: a square crop as ``toolkit preprocess`` makes them, with its
MediaPipe mesh, head pose and canonical mesh, from an image or video file or from a dataset clip."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from talking_head.toolkit import dataset as schema
from talking_head.toolkit import face_box, face_mesh, media, pose as pose_fit
from talking_head.toolkit.face_detector import FaceDetector

CROP_SIZES = (256, 512)  # the preprocessing crop sizes


class ReferenceError(ValueError):
    """A reference image or video that cannot be used (unreadable, no face)."""


@dataclasses.dataclass
class Reference:
    """The face to animate: a square crop as preprocessing makes them, with its mesh and pose."""

    frame: np.ndarray  # (S, S, 3) uint8 RGB crop
    landmarks: np.ndarray  # (478, 3) MediaPipe mesh in crop pixels
    pose: np.ndarray  # (7,) yaw pitch roll (deg), tx ty tz, scale (see toolkit.pose)
    canonical: np.ndarray  # (478, 3) the mesh with the head pose removed, canonical px
    source: str  # where it came from (a file, or a dataset clip)


def reference_from_file(path: str | Path, size: int = 256) -> Reference:
    """The first frame of an image or video, cropped around its most confident face like
    ``toolkit preprocess`` crops (BlazeFace box, square, ``DEFAULT_CROP_SCALE``), then meshed."""
    if size not in CROP_SIZES:
        raise ValueError(f"size must be one of {CROP_SIZES}, got {size}")
    path = Path(path)
    try:
        with media.VideoReader(path, fps=None) as reader:
            image = reader.read_window(0, 1)[0]
    except media.MediaError as exc:
        raise ReferenceError(f"{path}: cannot read the reference image or video ({exc})") from exc
    with FaceDetector() as detector:
        detections = detector.detect(image)
    if not detections:
        raise ReferenceError(f"{path}: no face found in the reference (first frame, {image.shape[1]}x{image.shape[0]})")
    best = detections[0]
    box = face_box.square_boxes(face_box.centre_and_side(best.box[None]), face_box.DEFAULT_CROP_SCALE)
    crop = face_box.crop_frames(image[None], box, size)[0]
    with face_mesh.FaceMeshDetector(video=False) as mesher:
        mesh = mesher.detect(crop)
    if mesh is None:
        raise ReferenceError(f"{path}: the face mesh found no face in the cropped reference")
    fit = pose_fit.fit_pose(mesh[None].astype(np.float32))
    return Reference(frame=crop, landmarks=mesh.astype(np.float32), pose=fit.pose[0].astype(np.float32),
                     canonical=fit.canonical[0].astype(np.float32), source=str(path))


def reference_from_row(row: dict, frame: np.ndarray, index: int = 0) -> Reference:
    """Frame `index` of a preprocessed dataset row (its crop, mesh, pose and canonical mesh)."""
    landmarks = np.asarray(row[schema.LANDMARKS][index], dtype=np.float32)
    if not np.isfinite(landmarks).all():
        raise ReferenceError(f"clip {row[schema.CLIP_ID]}: frame {index} has no face; choose another reference frame")
    return Reference(frame=frame, landmarks=landmarks, pose=np.asarray(row[schema.POSE][index], dtype=np.float32),
                     canonical=np.asarray(row[schema.CANONICAL_LANDMARKS][index], dtype=np.float32),
                     source=f"{row[schema.CLIP_ID]}[{index}]")

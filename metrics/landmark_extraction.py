"""Per-frame landmarks for the landmark metrics: the MediaPipe mesh, or FAN 68 points on one face box a frame.

Usage::

    from talking_head.metrics.landmark_extraction import extract_landmarks, LandmarkExtractor

    extract_landmarks("clip.mp4")                         # (T, 478, 3) MediaPipe mesh, NaN rows: no face
    extract_landmarks(frames, "fan", flip_input=True)     # (T, 68, 2) FAN points (ViCo's setting)
    with LandmarkExtractor("mediapipe") as extractor:     # one extractor per video (the tracker keeps state)
        points = extractor(frames)

Used by :mod:`metrics.lmd` (which re-exports both) and :mod:`metrics.blink`.
"""

from __future__ import annotations

from os import PathLike
from typing import Any, Iterable

import numpy as np

from talking_head.toolkit import face_mesh

DETECTORS = ("mediapipe", "fan")
# FAN needs a tight face box per frame (face-alignment's crop rule assumes S3FD's brows-to-chin boxes).
# "s3fd": face-alignment's own S3FD on the whole frame, first face: the same points as
#     ``fa.get_landmarks(frame)[0]`` in the ViCo script (slow on CPU: a VGG-16 pass at full resolution,
#     seconds a frame).
# "blazeface": MediaPipe BlazeFace (toolkit.face_detector.FaceDetector), highest score: its box
#     also spans brows to chin (the mesh's bounding box would include the forehead top) and costs
#     milliseconds, but FAN's points move slightly with the box: not the reference pipeline.
BOX_SOURCES = ("s3fd", "blazeface")
DEFAULT_BOX_SOURCE = "blazeface"


class LandmarkExtractor:
    """Per-frame landmarks of RGB uint8 frames, NaN rows where no face is found.

    ``"mediapipe"``: :class:`toolkit.face_mesh.FaceMeshDetector` in video (tracking) mode, (T, 478, 3)
    float32, x, y in pixels, z in the same pixel scale. Create one extractor per video (the tracker
    carries state from frame to frame).
    ``"fan"``: face-alignment's 2D-FAN-4 (:class:`toolkit.landmarks68.Landmarks68`, weights from
    the registry) on one face box per frame, (T, 68, 2) float32 pixels. Boxes come from `box_source`
    (see :data:`BOX_SOURCES`) unless given as (T, 4) x1, y1, x2, y2 pixels. `flip_input` (default
    :data:`toolkit.landmarks68.FLIP_INPUT`, False) also averages in the mirrored image (ViCo: True).
    """

    def __init__(self, detector: str = "mediapipe", *, device: str = "cpu", box_source: str = DEFAULT_BOX_SOURCE,
                 **landmarks68_kwargs: Any) -> None:
        if detector not in DETECTORS:
            hint = " (dlib is not available: bring dlib landmarks as arrays)" if detector == "dlib" else ""
            raise ValueError(f"detector must be one of {DETECTORS}, got {detector!r}{hint}")
        if box_source not in BOX_SOURCES:
            raise ValueError(f"box_source must be one of {BOX_SOURCES}, got {box_source!r}")
        self.detector = detector
        self.box_source = box_source
        self._mesh = None
        self._fan = None
        self._boxes = None
        if detector == "mediapipe":
            self._mesh = face_mesh.FaceMeshDetector(video=True)
        else:
            from talking_head.toolkit.landmarks68 import Landmarks68

            self._fan = Landmarks68(device=device, **landmarks68_kwargs)

    @property
    def num_points(self) -> int:
        return face_mesh.NUM_POINTS if self.detector == "mediapipe" else 68

    def __call__(self, frames: np.ndarray | Iterable[np.ndarray] | str | PathLike[str],
                 boxes: np.ndarray | None = None, fps: float = 25.0) -> np.ndarray:
        """Landmarks of `frames`: an array (T, H, W, 3) uint8 RGB, an iterable of frames, or a video path
        (decoded at `fps`). `boxes` (T, 4) only for FAN."""
        if boxes is not None:
            if self.detector != "fan":
                raise ValueError("boxes are only used by the 'fan' detector")
            boxes = np.asarray(boxes, dtype=np.float64)
            if boxes.ndim != 2 or boxes.shape[1] != 4:
                raise ValueError(f"boxes must be (T, 4) x1, y1, x2, y2 pixels, got shape {boxes.shape}")
        out = []
        for i, frame in enumerate(_frames(frames, fps)):
            if boxes is not None and i >= len(boxes):
                raise ValueError(f"got {len(boxes)} boxes for more frames")
            out.append(self._one(frame, None if boxes is None else boxes[i]))
        if not out:
            raise ValueError("no frames to extract landmarks from (empty input)")
        if boxes is not None and len(boxes) != len(out):
            raise ValueError(f"got {len(boxes)} boxes for {len(out)} frames")
        return np.stack(out)

    def _one(self, frame: np.ndarray, box: np.ndarray | None) -> np.ndarray:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be RGB uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        if self._mesh is not None:
            points = self._mesh.detect(frame)
            return np.full((face_mesh.NUM_POINTS, 3), np.nan, np.float32) if points is None else points
        if box is None:
            box = self._s3fd_box(frame) if self.box_source == "s3fd" else self._blazeface_box(frame)
        return self._fan(frame[None], np.asarray(box, dtype=np.float64)[None])[0]

    def _s3fd_box(self, frame: np.ndarray) -> np.ndarray:
        # The detector face-alignment built (and get_landmarks_from_image would run): the first face, as
        # the ViCo script's ``fa.get_landmarks(frame)[0]``. Landmarks68 exposes it only as ``_fa``.
        found = self._fan._fa.face_detector.detect_from_image(frame.copy())
        return np.asarray(found[0][:4], dtype=np.float64) if len(found) else np.full(4, np.nan)

    def _blazeface_box(self, frame: np.ndarray) -> np.ndarray:
        if self._boxes is None:
            from talking_head.toolkit.face_detector import FaceDetector

            self._boxes = FaceDetector()
        found = self._boxes.detect(frame)  # highest score first
        return found[0].box if found else np.full(4, np.nan)

    def config(self) -> dict[str, Any]:
        if self.detector == "mediapipe":
            import mediapipe

            return {"detector": "mediapipe", "mediapipe_version": mediapipe.__version__, "mode": "video tracking",
                    "refine_landmarks": True}
        return {"detector": "fan", "box_source": self.box_source, **self._fan.provenance}

    def weights_provenance(self) -> dict[str, str]:
        """Registry name -> sha256 of the weights used (MediaPipe's model ships in its wheel: none)."""
        if self._fan is None:
            return {}
        p = self._fan.provenance
        return {p["fan_weights"]: p["fan_sha256"], p["detector_weights"]: p["detector_sha256"]}

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
        if self._boxes is not None:
            self._boxes.close()

    def __enter__(self) -> "LandmarkExtractor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _frames(frames: Any, fps: float) -> Iterable[np.ndarray]:
    if isinstance(frames, (str, PathLike)):
        from talking_head.toolkit import media

        reader = media.VideoReader(frames, fps=fps)
        try:
            yield from reader.iter_frames()
        finally:
            reader.close()
        return
    if isinstance(frames, np.ndarray) and frames.ndim != 4:
        raise ValueError(f"frames must be (T, H, W, 3) uint8 RGB, got shape {frames.shape}")
    yield from frames


def extract_landmarks(frames: np.ndarray | Iterable[np.ndarray] | str | PathLike[str], detector: str = "mediapipe",
                      *, boxes: np.ndarray | None = None, fps: float = 25.0, **kwargs: Any) -> np.ndarray:
    """One-off :class:`LandmarkExtractor`: (T, 478, 3) for ``"mediapipe"``, (T, 68, 2) for ``"fan"``."""
    with LandmarkExtractor(detector, **kwargs) as extractor:
        return extractor(frames, boxes=boxes, fps=fps)

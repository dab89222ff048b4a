"""BlazeFace face detection on plain numpy frames: the detector every stage that looks for faces shares.

    detector = FaceDetector()                                     # BlazeFace, reused across clips
    detections = detector.detect(frame)                           # list[Detection], highest score first

Coordinates are continuous pixel coordinates with the origin at the top-left *corner* of the
image (pixel i covers [i, i + 1)), the convention of MediaPipe's landmarks times the image size.
Boxes are (x0, y0, x1, y1) floats in that convention. Following faces through a clip and cropping
them is preprocessing's job (``preprocessing/face_track.py``); the crop geometry is
:mod:`toolkit.face_box`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from talking_head.toolkit import face_mesh, quiet

__all__ = ["DEFAULT_MIN_CONFIDENCE", "NoFaceError", "Detection", "FaceDetector"]

DEFAULT_MIN_CONFIDENCE = 0.5  # MediaPipe's default; sample faces score 0.88-0.95
# Model choice (see FaceDetector): sizes are the face box side over the frame's LONG side, because
# both models letterbox the whole frame into a square input (128 px short range, 192 px full range).
SHORT_RANGE_MIN_FACE = 0.20  # short range is reliable from ~0.13 (measured); below 0.2 use full range
FULL_RANGE_MAX_FACE = 0.30  # full range misses faces filling >~0.8 of the frame; go back well before

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

            # A new solution logs from its graph threads while it opens and on its first inference: both
            # inside the scope that drops those lines (toolkit.quiet).
            with quiet.native_logs():
                solution = face_mesh.start_solution(lambda: mp.solutions.face_detection.FaceDetection(
                    model_selection=1 if model == "full" else 0, min_detection_confidence=self.min_confidence
                ))
                found = face_mesh.run_solution(solution, frame, "detections")
            self._solutions[model] = solution
        else:
            found = face_mesh.run_solution(solution, frame, "detections")
        h, w = frame.shape[:2]
        out = []
        for d in found or []:
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

"""MediaPipe's 478-point face mesh: the index sets the toolkit names, and one detector wrapper.

The mesh topology is MediaPipe's (468 face points + 10 iris points with ``refine_landmarks``).
Contours are listed in drawing order, corner to corner, so they can be used as polygons.
"Right"/"left" are the subject's, as in MediaPipe (the subject's right eye is on the image's left).
"""

from __future__ import annotations

import contextlib

import numpy as np

from talking_head.toolkit import quiet

NUM_POINTS = 478

LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
LIPS = tuple(sorted(set(LIPS_OUTER_UPPER + LIPS_OUTER_LOWER + LIPS_INNER_UPPER + LIPS_INNER_LOWER)))

RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LEFT_EYE_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
RIGHT_IRIS = (468, 469, 470, 471, 472)  # centre first
LEFT_IRIS = (473, 474, 475, 476, 477)

# Single points used for measurements.
UPPER_LIP_INNER_MID = 13
LOWER_LIP_INNER_MID = 14
MOUTH_CORNERS = (61, 291)
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263
RIGHT_EYE_TOP, RIGHT_EYE_BOTTOM = 159, 145
LEFT_EYE_TOP, LEFT_EYE_BOTTOM = 386, 374
NOSE_TIP = 1
CHIN = 152


def interocular(landmarks: np.ndarray) -> np.ndarray:
    """Distance between the outer eye corners, (...,) for landmarks (..., 478, 2|3): the scale unit."""
    d = landmarks[..., RIGHT_EYE_OUTER, :2] - landmarks[..., LEFT_EYE_OUTER, :2]
    return np.linalg.norm(d, axis=-1)


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap (points 13-14) divided by the inter-ocular distance, (...,).

    Normalising by the eye distance makes the number independent of face size and of small head motion.
    """
    gap = landmarks[..., LOWER_LIP_INNER_MID, :2] - landmarks[..., UPPER_LIP_INNER_MID, :2]
    return np.linalg.norm(gap, axis=-1) / interocular(landmarks)


def eye_opening(landmarks: np.ndarray) -> np.ndarray:
    """Mean lid gap of both eyes (159-145, 386-374) divided by the inter-ocular distance, (...,)."""
    right = np.linalg.norm(landmarks[..., RIGHT_EYE_TOP, :2] - landmarks[..., RIGHT_EYE_BOTTOM, :2], axis=-1)
    left = np.linalg.norm(landmarks[..., LEFT_EYE_TOP, :2] - landmarks[..., LEFT_EYE_BOTTOM, :2], axis=-1)
    return 0.5 * (right + left) / interocular(landmarks)


def run_solution(solution, image: np.ndarray, output: str):
    """``solution.process(image)`` of a MediaPipe legacy solution, returning just the `output` stream.

    MediaPipe 0.10's ``process`` builds a new ``namedtuple`` class on every call, which costs about
    0.7 ms: a third of a BlazeFace detection. This does the same steps (next 30 fps timestamp, one image
    packet, wait, read the output packet) without it; ``tests/test_face_mesh.py`` checks that the results
    are identical. Other MediaPipe versions, whose internals may differ, go through ``process``.
    """
    graph = getattr(solution, "_graph", None)
    types = getattr(solution, "_input_stream_type_info", None)
    if graph is None or not types or len(types) != 1 or not hasattr(solution, "_graph_outputs"):
        return getattr(solution.process(image), output)
    (stream, kind), = types.items()
    solution._graph_outputs.clear()
    solution._simulated_timestamp += 33333
    graph.add_packet_to_input_stream(stream=stream, packet=solution._make_packet(kind, image).at(solution._simulated_timestamp))
    graph.wait_until_idle()
    packet = solution._graph_outputs.get(output)
    if packet is None:
        return None
    return solution._get_packet_content(solution._output_stream_type_info[output], packet)


def start_solution(factory):
    """``factory()`` (a MediaPipe legacy solution) created with its native log lines dropped (toolkit.quiet).

    The graph opens its calculators on its own threads after the constructor returns, and they log then:
    waiting until the graph is idle inside the scope catches those lines, however long the caller waits
    before the first inference.
    """
    with quiet.native_logs():
        solution = factory()
        graph = getattr(solution, "_graph", None)
        if graph is not None and hasattr(graph, "wait_until_idle"):
            graph.wait_until_idle()
    return solution


_BLANK = np.zeros((64, 64, 3), np.uint8)  # an image without a face: ends a video-mode track (FaceMeshDetector.reset)


class FaceMeshDetector:
    """MediaPipe face mesh (0.10.21's bundled model, fully offline) returning pixel coordinates.

    ``video=True`` tracks across consecutive frames (MediaPipe's video mode: detection only when the
    track is lost), which is faster and steadier for clips; ``video=False`` treats each image alone.
    Landmarks come back as (478, 3) float32: x, y in pixels of the given image, z in the same pixel
    scale as x (MediaPipe's z is relative depth, normalised by image width).
    MediaPipe's native log lines (on creation, the first inferences, the first tracked face) are dropped
    until a face has been found once: :mod:`toolkit.quiet`.
    """

    def __init__(self, video: bool = False, max_faces: int = 1, min_confidence: float = 0.5):
        import mediapipe as mp  # imported lazily: it takes a second and pulls in TensorFlow Lite

        self._mesh = start_solution(lambda: mp.solutions.face_mesh.FaceMesh(
            static_image_mode=not video,
            max_num_faces=max_faces,
            refine_landmarks=True,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        ))
        # The graph logs once more when the landmark model first tracks a face ("landmark_projection_
        # calculator.cc ... Using NORM_RECT without IMAGE_DIMENSIONS"): inferences stay in the quiet scope
        # until a face has been found.
        self._logs_done = False
        self._fresh = True  # nothing seen since the graph started: reset() has nothing to forget

    def reset(self) -> None:
        """Forget every image seen: the next one is handled exactly as by a new detector (in video mode, the
        track starts again). Call between clips when one detector serves many.

        In video mode the graph finds the face from the previous image's landmarks and runs face detection
        only when there are none, so one image without a face ends the track: a small blank image costs about
        3 ms, against 10-15 ms for MediaPipe's own ``reset()`` (the graph's run restarted, its models
        re-initialised on the next image) and 20-50 ms for a new detector. ``tests/test_face_mesh.py``
        checks that the landmarks after it are bit for bit a new detector's."""
        if self._fresh:
            return
        if self.detect_all(_BLANK):  # cannot happen; if it ever did, restart the graph's run instead
            with quiet.native_logs():  # a restarted graph logs again while it opens (see start_solution)
                self._mesh.reset()
                graph = getattr(self._mesh, "_graph", None)
                if graph is not None and hasattr(graph, "wait_until_idle"):
                    graph.wait_until_idle()
            self._logs_done = False
        self._fresh = True

    def detect_all(self, image: np.ndarray) -> list[np.ndarray]:
        """Every face found in an RGB uint8 image, as a list of (478, 3) arrays."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        self._fresh = False
        with contextlib.nullcontext() if self._logs_done else quiet.native_logs():
            found = run_solution(self._mesh, np.ascontiguousarray(image), "multi_face_landmarks")
        self._logs_done = self._logs_done or bool(found)
        faces = []
        for face in found or []:
            pts = np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float32)
            faces.append(pts * np.array([w, h, w], dtype=np.float32))
        return faces

    def detect(self, image: np.ndarray) -> np.ndarray | None:
        """The first face's (478, 3) landmarks, or None when no face is found."""
        faces = self.detect_all(image)
        return faces[0] if faces else None

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> "FaceMeshDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

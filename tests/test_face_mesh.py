"""The MediaPipe glue in toolkit.face_mesh: the lean per-image call gives exactly what ``process`` gives."""

from __future__ import annotations

import mediapipe as mp
import numpy as np
import pytest

from talking_head.toolkit import face_mesh


@pytest.fixture(scope="module")
def frames(shared_sample) -> np.ndarray:
    from talking_head.toolkit import media

    clips = shared_sample(speakers=1, clips=1, seconds=1.0, seed=3)  # tests/conftest.py
    return media.read_video(clips[0].video)[:12]


def _landmarks(found) -> np.ndarray:
    return np.array([[(p.x, p.y, p.z) for p in face.landmark] for face in found or []], np.float32)


def test_run_solution_equals_process_for_the_mesh(frames) -> None:
    options = dict(static_image_mode=False, max_num_faces=1, refine_landmarks=True)
    with mp.solutions.face_mesh.FaceMesh(**options) as a, mp.solutions.face_mesh.FaceMesh(**options) as b:
        for frame in frames:  # video mode: both graphs track through the same sequence of timestamps
            expected = _landmarks(a.process(frame).multi_face_landmarks)
            got = _landmarks(face_mesh.run_solution(b, frame, "multi_face_landmarks"))
            assert expected.shape == (1, face_mesh.NUM_POINTS, 3)
            np.testing.assert_array_equal(got, expected)


def test_run_solution_equals_process_for_blazeface(frames) -> None:
    with mp.solutions.face_detection.FaceDetection(model_selection=0) as a, \
            mp.solutions.face_detection.FaceDetection(model_selection=0) as b:
        for frame in frames:
            expected = a.process(frame).detections
            got = face_mesh.run_solution(b, frame, "detections")
            assert len(expected) == 1 and [d.SerializeToString() for d in got] == [d.SerializeToString() for d in expected]


def test_run_solution_returns_none_without_a_face() -> None:
    blank = np.full((240, 320, 3), 90, np.uint8)
    with mp.solutions.face_detection.FaceDetection(model_selection=0) as detector:
        assert face_mesh.run_solution(detector, blank, "detections") is None
    with face_mesh.FaceMeshDetector(video=True) as mesher:
        assert mesher.detect(blank) is None and mesher.detect_all(blank) == []


def test_reset_detector_gives_a_new_detectors_landmarks(frames) -> None:
    """Preprocessing keeps one mesh per worker and resets it between clips: after another clip and reset(),
    the landmarks are bit for bit those of a new detector (the video-mode track starts again)."""
    with face_mesh.FaceMeshDetector(video=True) as new:
        expected = [new.detect(frame) for frame in frames]
    with face_mesh.FaceMeshDetector(video=True) as reused:
        reused.reset()  # nothing seen yet: a no-op
        for frame in frames[::-1, :, ::-1]:  # another clip: mirrored, backwards
            reused.detect(frame)
        reused.reset()
        got = [reused.detect(frame) for frame in frames]
        reused.reset()
        again = [reused.detect(frame) for frame in frames]
    assert all(mesh is not None for mesh in expected)
    for want, found, found_again in zip(expected, got, again):
        np.testing.assert_array_equal(found, want)
        np.testing.assert_array_equal(found_again, want)

"""talking_head.metrics.blink: EAR by hand, blink runs, rates, and MediaPipe blinks on the sample against its ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from talking_head.metrics import blink as B
from talking_head.toolkit import face_mesh as fm

FPS = 25


@pytest.fixture
def sample(meshed_sample):
    clip, truth, meshes = meshed_sample
    return truth, meshes


def _put_eyes(points: np.ndarray, eyes, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Eyes 10 px wide, lids `upper` px above and `lower` px below the corner line per frame: EAR = (u + l) / 10."""
    for k, idx in enumerate(eyes):
        x0 = 100.0 + 40.0 * k
        p1, p2, p3, p4, p5, p6 = idx
        points[:, p1] = (x0, 50.0)
        points[:, p4] = (x0 + 10.0, 50.0)
        points[:, p2, 0], points[:, p3, 0] = x0 + 3.0, x0 + 7.0
        points[:, p2, 1] = points[:, p3, 1] = 50.0 - upper
        points[:, p6, 0], points[:, p5, 0] = x0 + 3.0, x0 + 7.0
        points[:, p6, 1] = points[:, p5, 1] = 50.0 + lower
    return points


def _face68(ear: np.ndarray) -> np.ndarray:
    """(T, 68, 2) landmarks whose eyes have the given EAR per frame (lids split 2:1 above/below)."""
    points = np.random.default_rng(0).uniform(0, 300, (len(ear), 68, 2))
    return _put_eyes(points, B.EYES_68, upper=ear * 10 * 2 / 3, lower=ear * 10 / 3)


# -- EAR and runs ------------------------------------------------------------------------------------------


def test_ear_hand_computed_on_68_points():
    points = _put_eyes(np.zeros((2, 68, 2)), B.EYES_68, upper=np.array([2.0, 0.5]), lower=np.array([1.0, 0.5]))
    # Frame 0: (3 + 3) / (2 * 10) = 0.3; frame 1: (1 + 1) / 20 = 0.1.
    np.testing.assert_allclose(B.eye_aspect_ratio(points), [0.3, 0.1], rtol=1e-12)
    points[0, 42:48] *= 2.0  # the left eye twice as large (about the origin): EAR is scale-free
    np.testing.assert_allclose(B.eye_aspect_ratio(points, "left"), [0.3, 0.1], rtol=1e-12)
    points[1, 43, 1] = 50.0 - 1.5  # left eye p2 lifted by 1 px: (2 + 1) / 20 = 0.15
    np.testing.assert_allclose(B.eye_aspect_ratio(points, "left")[1], 0.15, rtol=1e-12)
    np.testing.assert_allclose(B.eye_aspect_ratio(points, "right")[1], 0.1, rtol=1e-12)
    np.testing.assert_allclose(B.eye_aspect_ratio(points)[1], 0.125, rtol=1e-12)


def test_mesh_eye_points_are_the_68_layout_positions():
    """p1/p4 are the corners, p2, p3 / p6, p5 the lid points at 1/3 and 2/3 of the mesh contours."""
    right, left = B.EYES_MESH
    for (p1, p2, p3, p4, p5, p6), upper, lower in ((right, fm.RIGHT_EYE_UPPER, fm.RIGHT_EYE_LOWER),
                                                    (left, fm.LEFT_EYE_UPPER[::-1], fm.LEFT_EYE_LOWER[::-1])):
        # Contours run corner to corner in image order (p1 = image-left corner) with 9 points each.
        assert (upper[0], upper[-1]) == (p1, p4) and (lower[0], lower[-1]) == (p1, p4)
        assert (upper.index(p2), upper.index(p3)) == (3, 5)
        assert (lower.index(p6), lower.index(p5)) == (3, 5)  # paired with the upper point above it
    assert (right[0], left[3]) == (fm.RIGHT_EYE_OUTER, fm.LEFT_EYE_OUTER)
    # Same geometry on either layout gives the same EAR.
    upper, lower = np.array([2.0, 1.0]), np.array([1.0, 0.2])
    mesh = _put_eyes(np.zeros((2, 478, 2)), B.EYES_MESH, upper, lower)
    face68 = _put_eyes(np.zeros((2, 68, 2)), B.EYES_68, upper, lower)
    np.testing.assert_allclose(B.eye_aspect_ratio(mesh), B.eye_aspect_ratio(face68), rtol=1e-12)


def test_find_blinks_runs():
    ear = np.array([0.3, 0.1, 0.1, 0.3, 0.1, 0.3, 0.1, 0.1, 0.1, np.nan, 0.1, 0.1])
    assert B.find_blinks(ear, 0.2, 2) == [(1, 3), (6, 9), (10, 12)]  # a NaN frame ends a run; edges count
    assert B.find_blinks(ear, 0.2, 1) == [(1, 3), (4, 5), (6, 9), (10, 12)]
    assert B.find_blinks(ear, 0.2, 3) == [(6, 9)]
    assert B.find_blinks(ear, 0.05, 1) == []
    assert B.find_blinks(np.full(4, 0.1), 0.2, 2) == [(0, 4)]


def test_blink_rate_and_duration_hand_computed():
    ear = np.full(50, 0.3)
    ear[10:13] = 0.1  # a 3-frame blink
    ear[30:35] = 0.15  # a 5-frame blink
    ear[40] = 0.1  # a 1-frame dip: shorter than min_frames = 2
    video = _face68(ear)
    out = B.blinks(video, "ear68", fps=FPS)
    assert out["runs"] == [(10, 13), (30, 35)] and out["blinks"] == 2 and out["threshold"] == 0.2
    assert out["blink_rate"] == pytest.approx(2 / 2.0)  # 2 blinks in 50 frames = 2 s
    assert out["mean_duration_frames"] == pytest.approx(4.0) and out["mean_duration_s"] == pytest.approx(0.16)
    gappy = video.copy()
    gappy[45:] = np.nan  # no face for the last 5 frames: excluded from the duration
    out = B.blinks(gappy, "ear68", fps=FPS)
    assert out["blink_rate"] == pytest.approx(2 / (45 / FPS)) and out["frames_excluded"] == 5
    # Streaming: pooled rate = all blinks / all valid seconds; video mean = mean of per-video rates.
    metric = B.BlinkRate("ear68", fps=FPS)
    metric.update(video)
    metric.update(_face68(np.full(25, 0.3)))  # 1 s, no blink
    metric.update(np.full((10, 68, 2), np.nan))  # no face at all
    out = metric.compute()
    assert out["blink_rate"] == pytest.approx(2 / 3.0) and out["blink_rate_video_mean"] == pytest.approx(0.5)
    assert (out["blinks"], out["videos"], out["videos_excluded"], out["frames_used"]) == (2, 3, 1, 75)
    assert out["mean_duration_frames"] == pytest.approx(4.0)
    config = metric.config()
    assert config["threshold"] == 0.2 and config["relative"] is False and config["min_frames"] == 2
    assert config["eyes"][0] == [36, 37, 38, 39, 40, 41] and metric.weights_provenance() == {}
    metric.reset()
    assert metric.compute()["videos"] == 0 and np.isnan(metric.compute()["blink_rate"])
    # The EAR gathered chunk by chunk (what `toolkit evaluate` keeps of long videos) gives the same row.
    streamed, whole = B.BlinkRate("ear68", fps=FPS), B.BlinkRate("ear68", fps=FPS)
    streamed.update_ear(np.concatenate([B.eye_aspect_ratio(gappy[s : s + 8]) for s in range(0, len(gappy), 8)]))
    whole.update(gappy)
    (by_ear,), (by_marks,) = streamed.per_video(), whole.per_video()
    assert by_ear.pop("runs") == by_marks.pop("runs") == [(10, 13), (30, 35)]
    assert by_ear == pytest.approx(by_marks)


def test_relative_threshold_follows_the_clip():
    """The mesh preset's threshold is 0.8 x the clip's median EAR: independent of the open-eye level."""
    ear = np.full(40, 0.3)
    ear[20:23] = 0.22  # 0.73 x the median: a blink for the mesh preset, not for EAR < 0.2
    mesh = _put_eyes(np.zeros((40, 478, 2)), B.EYES_MESH, upper=ear * 10 * 2 / 3, lower=ear * 10 / 3)
    out = B.blinks(mesh, "mesh", fps=FPS)
    assert out["runs"] == [(20, 23)] and out["threshold"] == pytest.approx(0.8 * 0.3)
    assert B.blinks(_face68(ear), "ear68")["blinks"] == 0
    wide = _put_eyes(np.zeros((40, 478, 2)), B.EYES_MESH, upper=ear * 20 * 2 / 3, lower=ear * 20 / 3)  # EAR doubled
    assert B.blinks(wide, "mesh")["runs"] == [(20, 23)]


# -- the sample ------------------------------------------------------------------------------------------------


def test_mediapipe_blinks_match_the_sample_ground_truth(sample):
    truth, meshes = sample
    true_runs = B.find_blinks(-truth["blink"], -0.5, 1)  # ground truth: lids more than half closed
    assert len(true_runs) == 2
    out = B.blinks(meshes, "mesh", fps=FPS)
    assert out["blinks"] == len(true_runs), (out["runs"], true_runs)
    for (start, stop), (t_start, t_stop) in zip(out["runs"], true_runs):
        assert start < t_stop and t_start < stop  # each detected blink overlaps its true one
        assert abs(start - t_start) <= 1 and abs(stop - t_stop) <= 1
    assert 0.25 < out["open_ear"] < 0.4  # the mesh's open-eye EAR is in the usual 68-point range
    with pytest.raises(ValueError, match="preset 'mesh'"):
        B.blinks(meshes, "ear68")


def test_edited_blinks_move_the_rate_and_duration(sample):
    _, meshes = sample
    base = B.blinks(meshes, "mesh", fps=FPS)
    (s1, e1), (s2, e2) = base["runs"]
    # Remove the first blink: hold the open frame before it over the blink.
    no_blink = meshes.copy()
    no_blink[s1 - 2 : e1 + 2] = meshes[s1 - 3]
    edited = B.blinks(no_blink, "mesh", fps=FPS)
    assert edited["blinks"] == 1 and edited["blink_rate"] < base["blink_rate"]
    # Slow the second blink down: every closed frame shown twice.
    slow = np.concatenate([meshes[:s2], np.repeat(meshes[s2:e2], 2, axis=0), meshes[e2:]])
    slowed = B.blinks(slow, "mesh", fps=FPS)
    assert slowed["blinks"] == 2 and slowed["mean_duration_s"] > base["mean_duration_s"]
    assert slowed["runs"][1][1] - slowed["runs"][1][0] == 2 * (e2 - s2)


# -- bad input -----------------------------------------------------------------------------------------------


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="68 .* or 478/468"):
        B.eye_aspect_ratio(np.zeros((3, 100, 2)))
    with pytest.raises(ValueError, match="empty"):
        B.blinks(np.zeros((0, 68, 2)), "ear68")
    with pytest.raises(ValueError, match=r"\(T, P, 2\|3\)"):
        B.eye_aspect_ratio(np.zeros((68, 2)))
    with pytest.raises(ValueError, match="numeric"):
        B.eye_aspect_ratio(np.zeros((2, 68, 2)).astype(str))
    with pytest.raises(ValueError, match="preset 'ear68'"):
        B.blinks(np.zeros((3, 68, 2)), "mesh")
    with pytest.raises(ValueError, match="unknown blink preset"):
        B.BlinkRate("dlib")
    with pytest.raises(ValueError, match="min_frames"):
        B.find_blinks(np.zeros(3), 0.2, 0)
    with pytest.raises(ValueError, match="1-D"):
        B.find_blinks(np.zeros((3, 2)), 0.2)
    with pytest.raises(ValueError, match="eye must be"):
        B.eye_aspect_ratio(np.zeros((2, 68, 2)), "middle")
    with pytest.raises(ValueError, match="fps"):
        B.BlinkRate("mesh", fps=0)

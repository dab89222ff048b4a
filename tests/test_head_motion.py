"""talking_head.metrics.head_motion (pose diversity, cross-sample diversity) and metrics.beat_align (Beat Align).

Hand-computed values on small pose arrays, Beat Align against a literal port of Bailando's formula,
audio beats on a click track, and pose diversity recovered by MediaPipe on the rendered sample.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.signal import argrelextrema

from talking_head.metrics import beat_align as B
from talking_head.metrics import head_motion as H
from talking_head.toolkit import pose
from talking_head.toolkit import media

FPS = 25
SR = 16000


@pytest.fixture
def sample(meshed_sample):
    return meshed_sample


# -- pose diversity ----------------------------------------------------------------------------------------


def test_pose_diversity_hand_computed():
    a = np.zeros((4, 7))  # fit_pose layout: yaw, pitch, roll, tx, ty, tz, scale
    a[:, 0] = [0, 2, 0, 2]  # std 1
    a[:, 2] = [1, -1, 1, -1]  # std 1
    a[:, 3] = [0, 500, 0, 500]  # translation is not an angle: ignored
    b = np.zeros((5, 3))
    b[:, 0] = [3, -3, 3, -3, np.nan]  # std 3 over the 4 frames with a pose
    b[:, 1] = [1, 1, 1, 1, np.nan]
    out = H.pose_diversity([a, b])
    assert out["yaw_std"] == pytest.approx(2.0) and out["pitch_std"] == 0.0 and out["roll_std"] == pytest.approx(0.5)
    assert out["mean_std"] == pytest.approx(2.5 / 3)
    assert (out["videos"], out["frames_used"], out["frames_excluded"], out["videos_excluded"]) == (2, 8, 1, 0)
    metric = H.PoseDiversity()
    assert metric.update(a) is None and metric.per_video()[0]["yaw_std"] == pytest.approx(1.0)
    metric.update(np.full((3, 3), np.nan))  # no pose at all: excluded, counted
    assert metric.compute()["yaw_std"] == pytest.approx(1.0) and metric.compute()["videos_excluded"] == 1
    assert metric.config()["std_ddof"] == 0 and metric.weights_provenance() == {}
    metric.reset()
    assert metric.compute()["videos"] == 0


def test_pose_diversity_of_meshes_is_that_of_their_poses():
    rng = np.random.default_rng(0)
    poses = np.column_stack([rng.normal(0, 8, 30), rng.normal(0, 5, 30), rng.normal(0, 3, 30),
                             rng.uniform(200, 300, 30), rng.uniform(200, 300, 30), np.zeros(30), np.ones(30)])
    meshes = pose.to_frame(np.broadcast_to(pose.load_canonical_face(), (30, 478, 3)), poses)
    from_mesh, from_pose = H.pose_diversity(meshes), H.pose_diversity(poses)
    for angle in H.ANGLES:
        assert from_mesh[f"{angle}_std"] == pytest.approx(from_pose[f"{angle}_std"], abs=1e-6)


def test_sample_pose_diversity_is_recovered_and_moves_with_the_motion(sample):
    """MediaPipe + fit_pose on the rendered video against the generator's true head motion."""
    _, truth, meshes = sample
    detected, true = H.pose_diversity(meshes), H.pose_diversity(truth["pose"])
    # Measured: yaw 4.09 vs 5.04, pitch 2.66 vs 3.59, roll 2.36 vs 2.39 degrees. MediaPipe's inferred depth
    # underestimates out-of-plane rotation by ~20%; the in-plane roll is exact.
    for angle in H.ANGLES:
        assert abs(detected[f"{angle}_std"] - true[f"{angle}_std"]) < 1.25, (angle, detected, true)
    assert abs(detected["roll_std"] - true["roll_std"]) < 0.25
    # Half the head rotation, same expression and framing: about half the diversity (not exactly: the
    # detected rigid points are not the template's, and the depth-weighted refit is not rotation-equivariant).
    fit = pose.fit_pose(meshes)
    damped = fit.pose.copy()
    damped[:, :3] *= 0.5
    half = H.pose_diversity(pose.to_frame(fit.canonical, damped))
    for angle in H.ANGLES:
        assert 0.45 < half[f"{angle}_std"] / detected[f"{angle}_std"] < 0.55, angle


# -- cross-sample diversity --------------------------------------------------------------------------------


def test_cross_sample_diversity_hand_computed():
    base = np.zeros((6, 3))
    samples = [base, base + (3.0, 4.0, 0.0), base + (0.0, 0.0, 12.0)]  # pair distances 5, 12, 13
    out = H.cross_sample_diversity(samples)
    assert out["diversity"] == pytest.approx(10.0) and out["pairs"] == 3 and out["frames_used"] == 18
    assert H.cross_sample_diversity(np.stack(samples))["diversity"] == pytest.approx(10.0)  # (K, T, 3)
    assert H.cross_sample_diversity([base, base.copy()])["diversity"] == 0.0
    with_gap = [s.copy() for s in samples]
    with_gap[0][2] = np.nan  # frame 2 of sample 0: left out of its two pairs
    gap = H.cross_sample_diversity(with_gap)
    assert gap["diversity"] == pytest.approx(10.0) and gap["frames_excluded"] == 2
    # Streaming over audios; a larger spread between seeds is more diverse.
    rng = np.random.default_rng(1)
    metric = H.CrossSampleDiversity()
    values = []
    for spread in (0.5, 1.0, 2.0):
        metric.update([base + spread * rng.normal(0, 1, base.shape) for _ in range(4)])
        values.append(metric.per_video(-1)[0]["diversity"])
    assert values[0] < values[1] < values[2]
    out = metric.compute()
    assert out["diversity"] == pytest.approx(np.mean(values)) and out["audios"] == 3 and out["pairs"] == 18


# -- Beat Align --------------------------------------------------------------------------------------------


def _bailando_motion_beats(keypoints: np.ndarray):
    """Literal port of Bailando's calc_db (utils/beat_align_score.py) for (T, 24, 3) joints."""
    keypoints = np.array(keypoints).reshape(-1, 24, 3)
    kinetic_vel = np.mean(np.sqrt(np.sum((keypoints[1:] - keypoints[:-1]) ** 2, axis=2)), axis=1)
    kinetic_vel = gaussian_filter(kinetic_vel, 5)
    motion_beats = argrelextrema(kinetic_vel, np.less)
    return motion_beats, len(kinetic_vel)


def _bailando_ba(music_beats, motion_beats) -> float:
    """Literal port of Bailando's BA (utils/beat_align_score.py)."""
    ba = 0
    for bb in music_beats:
        ba += np.exp(-np.min((motion_beats[0] - bb) ** 2) / 2 / 9)
    return ba / len(music_beats)


def test_beat_align_matches_bailando_port():
    rng = np.random.default_rng(2)
    for trial in range(5):
        T = int(rng.integers(60, 200))
        joints = np.cumsum(rng.normal(0, 1, (T, 24, 3)), axis=0)  # a random walk: many velocity minima
        one_hot = rng.random(T + 20) < 0.08  # music beats, like Bailando's music_array[:, 53]
        beats_all = np.flatnonzero(one_hot)
        motion, length = _bailando_motion_beats(joints)
        music = np.flatnonzero(one_hot[:length])  # Bailando: music_array[:length]
        if len(music) == 0:
            continue
        expected = _bailando_ba(music, motion)
        out = B.beat_align(joints, audio_beats=beats_all, source="points")
        assert out["beat_align"] == pytest.approx(expected, rel=1e-12), trial
        assert out["motion_beats"] == len(motion[0]) and out["audio_beats"] == len(music)
        np.testing.assert_array_equal(B.motion_beats(B.motion_velocity(joints, "points")[0]), motion[0])


def _periodic_pose(period: int = 20, phase: int = 7, frames: int = 201) -> np.ndarray:
    """Yaw whose speed 1.05 - cos(2 pi (t - phase) / period) is slowest at t = phase + k period."""
    t = np.arange(frames - 1)
    speed = 1.05 - np.cos(2 * np.pi * (t - phase) / period)
    out = np.zeros((frames, 3))
    out[1:, 0] = np.cumsum(speed)
    return out


def test_beat_align_is_one_on_matching_beats_and_falls_with_the_shift():
    motion = _periodic_pose()
    velocity, _ = B.motion_velocity(motion)
    beats = B.motion_beats(velocity)
    assert list(beats[1:]) == list(range(27, 200, 20))  # the first minimum is pulled by the border
    assert B.beat_align(motion, audio_beats=beats)["beat_align"] == 1.0
    interior = np.arange(27, 180, 20)
    scores = [B.beat_align(motion, audio_beats=interior + shift)["beat_align"] for shift in range(11)]
    assert scores[0] == 1.0
    np.testing.assert_allclose(scores, np.exp(-np.arange(11) ** 2 / 18.0), rtol=1e-12)  # 3-frame Gaussian
    assert np.all(np.diff(scores) < 0)
    # No motion beat at all (constant speed): nothing is matched.
    still = np.zeros((50, 3))
    still[:, 0] = np.arange(50)
    metric = B.BeatAlign()
    metric.update(still, audio_beats=[10, 20])
    assert metric.per_video()[0]["beat_align"] == 0.0
    metric.update(motion, audio_beats=[500])  # no audio beat inside the motion: undefined, excluded
    metric.update(motion, audio_beats=beats)
    out = metric.compute()
    assert out["beat_align"] == pytest.approx(0.5) and out["videos"] == 3
    assert out["videos_excluded"] == 1 and out["videos_without_motion_beats"] == 1


def test_missing_frames_are_interpolated_and_counted():
    motion = _periodic_pose()
    gappy = motion.copy()
    gappy[50] = np.nan
    out = B.beat_align(gappy, audio_beats=np.arange(27, 180, 20))
    assert out["frames_interpolated"] == 1 and np.isfinite(out["beat_align"])


def _click_track(click_frames: np.ndarray, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(3)
    audio = np.zeros(int(seconds * SR), np.float32)
    decay = np.exp(-np.arange(160) / 30.0)
    for frame in click_frames:
        start = int(frame * SR / FPS)
        audio[start : start + 160] += (0.5 * rng.normal(0, 1, 160) * decay).astype(np.float32)
    return audio


@pytest.mark.slow  # ~28 CPU s: beat tracking of 8 s of audio, twice
def test_audio_beats_are_video_frames():
    """A click every 15 frames (100 bpm): beat_track with hop = sr / fps puts beats on the click frames."""
    clicks = np.arange(10, 200, 15)
    audio = _click_track(clicks, 8.0)
    found = {}
    for percussive in (True, False):
        found[percussive] = beats = B.audio_beats(audio, SR, FPS, percussive=percussive)
        assert len(beats) >= 10
        nearest = np.abs(beats[:, None] - clicks[None]).min(axis=1)
        assert nearest.max() <= 2 and (nearest == 0).sum() >= 9, (percussive, beats)
    # int16 samples are accepted and scaled like float ones.
    as_int16 = B.audio_beats((audio * 32767).astype(np.int16), SR, FPS, percussive=False)
    np.testing.assert_array_equal(as_int16, found[False])
    # A motion slowing down on every click scores ~1 against them.
    motion = _periodic_pose(period=15, phase=10)
    assert B.beat_align(motion, audio_beats=found[True])["beat_align"] > 0.9
    with pytest.raises(ValueError, match="whole number"):
        B.audio_beats(audio, SR, 30.0)  # 533.3 samples per frame


def test_the_first_beat_tracking_of_a_process_holds_the_compile_lock(monkeypatch):
    """librosa's numba beat tracker is compiled into an on-disk cache that two processes compiling at once can
    corrupt (numba issue 10128): a process's first beat tracking runs under a machine-wide lock, later ones not."""
    import librosa
    from filelock import FileLock, Timeout

    held = []

    def beat_track(**kwargs):  # librosa's call, replaced to look at the lock while it would run
        try:
            with FileLock(B.COMPILE_LOCK, timeout=0):
                held.append(False)
        except Timeout:
            held.append(True)
        return 120.0, np.array([3, 9])

    monkeypatch.setattr(librosa.beat, "beat_track", beat_track)
    monkeypatch.setattr(B, "_compiled", False)
    audio = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)
    for _ in range(2):
        np.testing.assert_array_equal(B.audio_beats(audio, SR, FPS, percussive=False), [3, 9])
    assert held == [True, False]


def test_beat_align_on_the_sample(sample):
    clip, truth, meshes = sample
    audio = media.read_audio(clip.audio, sample_rate=SR)
    from_file = B.audio_beats(clip.audio, SR, FPS)
    np.testing.assert_array_equal(from_file, B.audio_beats(audio, SR, FPS))
    assert len(from_file) >= 5 and from_file.max() < clip.num_frames
    metric = B.BeatAlign(FPS)
    metric.update(meshes, audio, sample_rate=SR)  # meshes -> fit_pose -> angles
    metric.update(truth["pose"], audio_beats=from_file)
    detected, true = metric.per_video()
    for row in (detected, true):
        assert 0.0 <= row["beat_align"] <= 1.0 and row["audio_beats"] == len(from_file) and row["motion_beats"] > 0
    assert metric.compute()["beat_align"] == pytest.approx((detected["beat_align"] + true["beat_align"]) / 2)
    config = metric.config()
    assert config["hpss_percussive"] is True and config["audio_hop"] == "sample_rate / fps" and config["fps"] == 25.0


# -- bad input -----------------------------------------------------------------------------------------------


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="pose array"):
        H.pose_diversity([np.zeros((5, 2))])
    with pytest.raises(ValueError, match="empty"):
        H.pose_diversity([np.zeros((0, 3))])
    with pytest.raises(ValueError, match="numeric"):
        H.pose_diversity([np.array([["a", "b", "c"]])])
    with pytest.raises(ValueError, match="K >= 2"):
        H.cross_sample_diversity([np.zeros((5, 3))])
    with pytest.raises(ValueError, match="same length"):
        H.cross_sample_diversity([np.zeros((5, 3)), np.zeros((6, 3))])
    with pytest.raises(ValueError, match="exactly one"):
        B.beat_align(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="at least 2 frames"):
        B.beat_align(np.zeros((1, 3)), audio_beats=[0])
    with pytest.raises(ValueError, match="'pose' or 'points'"):
        B.BeatAlign(source="joints")
    with pytest.raises(ValueError, match=r"\(T, J, D\)"):
        B.beat_align(np.zeros((10, 3)), audio_beats=[1], source="points")
    with pytest.raises(ValueError, match="mono"):
        B.audio_beats(np.zeros((2, 100), np.float32))
    with pytest.raises(ValueError, match="empty"):
        B.audio_beats(np.zeros(0, np.float32))

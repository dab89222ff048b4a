"""talking_head.metrics.lmd: hand-computed values per preset, exclusions, pooling, and the detectors on the built-in sample.

FAN runs with random weights that have the real key names and shapes (no download is possible);
MediaPipe runs for real on a rendered sample video.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from talking_head.metrics import lmd as L
from talking_head.toolkit import pose
from talking_head.toolkit import face_mesh as fm
from talking_head.toolkit import media
from talking_head.toolkit import weights as w


@pytest.fixture(scope="module")
def sample(shared_sample):
    """The built-in sample (8 s, seed 0), shared with the motion-metric test files (tests/conftest.py)."""
    return shared_sample(speakers=1, clips=1, seconds=8.0, seed=0)[0]


def _faces68(num_frames: int, seed: int = 0, dims: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).uniform(50, 450, (num_frames, 68, dims))


# -- hand-computed values ---------------------------------------------------------------------------------


def test_atvgnet_hand_computed():
    """Centred, per-frame SUM of L2 over points, mean over frames; translation is removed by centring."""
    ref = _faces68(2)
    gen = ref.copy()
    gen[0, 48] += (3.0, 4.0)  # one mouth point 5 px off: the mouth centroid moves by (3, 4) / 20
    gen[1] += (10.0, -7.0)  # the whole face moved: centring removes it
    # Frame 0, mouth: the moved point is 5 * 19/20 from its place, the other 19 are 5/20 each.
    mouth0 = 5 * 19 / 20 + 19 * 5 / 20
    face0 = 5 * 67 / 68 + 67 * 5 / 68
    m = L.lmd(gen, ref, "atvgnet", "mouth")
    f = L.lmd(gen, ref, "atvgnet", "face")
    assert m["lmd"] == pytest.approx(mouth0 / 2, rel=1e-10, abs=1e-12)  # = 4.75
    assert f["lmd"] == pytest.approx(face0 / 2, rel=1e-10, abs=1e-12)
    # Velocities: the offset appears in frame 0 and vanishes in frame 1, the same distance again.
    assert m["lmd_v"] == pytest.approx(mouth0, rel=1e-10, abs=1e-12)
    assert f["lmd_v"] == pytest.approx(face0, rel=1e-10, abs=1e-12)
    assert (m["frames_used"], m["frames_excluded"], m["velocity_pairs_used"]) == (2, 0, 1)
    assert m["detector"] == "fan" and m["unit"] == "px"
    assert L.lmd(gen, ref, "atvgnet", detector="dlib")["detector"] == "dlib"  # bring-your-own dlib points


def test_vico_hand_computed():
    """No centring, mean |difference| over points and coordinates, mean over frames; z is ignored."""
    ref = _faces68(2, dims=3)
    gen = ref.copy()
    gen[:, :, 2] += 100.0  # z is not compared
    gen[0, 48, :2] += (3.0, 4.0)
    gen[1, 48:68, :2] += (1.0, -2.0)
    m = L.lmd(gen, ref, "vico", "mouth")
    f = L.lmd(gen, ref, "vico", "face")
    assert m["lmd"] == pytest.approx((7 / 40 + 60 / 40) / 2, rel=1e-10, abs=1e-12)  # 0.8375
    assert f["lmd"] == pytest.approx((7 / 136 + 60 / 136) / 2, rel=1e-10, abs=1e-12)
    # Velocity difference: point 48 (1, -2) - (3, 4) = (-2, -6) -> 8; the other 19 lips (1, -2) -> 3 each.
    assert m["lmd_v"] == pytest.approx((8 + 19 * 3) / 40, rel=1e-10, abs=1e-12)
    assert f["lmd_v"] == pytest.approx((8 + 19 * 3) / 136, rel=1e-10, abs=1e-12)


def test_dense_hand_computed_and_resolution_independent():
    """Centred mean per-point L2 in % of the reference IOD: the same face at twice the size scores the same."""
    face = np.array(pose.load_canonical_face())  # IOD (33-263) is exactly 160 canonical px
    assert fm.interocular(face) == pytest.approx(160.0)
    ref = np.stack([face, 2.0 * face + (30.0, -5.0, 0.0)])
    gen = ref.copy()
    gen[0, 13, :2] += (3.0, 4.0)  # inner upper lip: in LIPS, and one of the 468 face points
    gen[1, 13, :2] += (6.0, 8.0)  # twice the offset on the twice-as-large face
    n_mouth, n_face = len(fm.LIPS), 468
    mouth_px = 2 * 5 * (n_mouth - 1) / n_mouth**2  # mean per-point L2 after centring, 5 px offset
    face_px = 2 * 5 * (n_face - 1) / n_face**2
    m = L.lmd(gen, ref, "dense", "mouth")
    f = L.lmd(gen, ref, "dense", "face")
    assert m["lmd"] == pytest.approx(100 * mouth_px / 160, rel=1e-10, abs=1e-12)  # 0.15234375 %
    assert f["lmd"] == pytest.approx(100 * face_px / 160, rel=1e-10, abs=1e-12)
    per_frame = L.frame_distances(gen, ref, "dense", "mouth")
    assert per_frame[0] == pytest.approx(per_frame[1], rel=1e-10, abs=1e-12)  # resolution-independent
    # Velocity: the offset grows from e to 2e, so the difference of velocities is e; unit = mean IOD 240.
    assert m["lmd_v"] == pytest.approx(100 * mouth_px / 240, rel=1e-10, abs=1e-12)
    assert m["unit"] == "% of inter-ocular distance" and m["detector"] == "mediapipe"
    # 468-point meshes (no iris) are accepted and give the same numbers.
    assert L.lmd(gen[:, :468], ref[:, :468], "dense", "face")["lmd"] == pytest.approx(f["lmd"], rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("preset", sorted(L.PRESETS))
def test_identical_inputs_give_zero(preset):
    rng = np.random.default_rng(1)
    if preset == "dense":
        points = np.array(pose.load_canonical_face()) + rng.normal(0, 2, (5, 478, 3))
    else:
        points = _faces68(5, seed=2)
    for region in ("mouth", "face"):
        out = L.lmd(points, points.copy(), preset, region)
        assert out["lmd"] == 0.0 and out["lmd_v"] == 0.0
        assert out["frames_used"] == 5 and out["velocity_pairs_used"] == 4


def _atvgnet_port(real_videos, fake_videos) -> float:
    """ATVGnet code/evaluation_matrix.py's LMD (docs/metrics-reference.md#lmd-variants), loop for loop: per image
    the 20 mouth points minus their centroid (sum / 20), per frame pair the sum over points of the L2
    distance, then sum(dis) / N over all frame pairs."""
    dis = []
    for real_video, fake_video in zip(real_videos, fake_videos):
        for real, fake in zip(real_video, fake_video):
            r = real[48:68] - real[48:68].sum(0) / 20
            f = fake[48:68] - fake[48:68].sum(0) / 20
            dis.append(sum(np.sqrt(((r[k] - f[k]) ** 2).sum()) for k in range(20)))
    return sum(dis) / len(dis)


def _vico_port(gt_videos, pd_videos) -> float:
    """vico_challenge_baseline evaluations/compute_lmd.py with the detector's output given: lips 48:68,
    np.abs(pd - gt) appended per frame over all videos, np.array(...).mean()."""
    lmd_values = []
    for gt_video, pd_video in zip(gt_videos, pd_videos):
        for gt, pd in zip(gt_video, pd_video):
            lmd_values.append(np.abs(pd[48:68] - gt[48:68]))
    return np.array(lmd_values).mean()


def test_pooled_mouth_lmd_matches_ports_of_the_reference_scripts():
    rng = np.random.default_rng(11)
    refs = [_faces68(n, seed=20 + n) for n in (3, 7, 12)]
    gens = [r + rng.normal(0, 2.0, r.shape) + rng.normal(0, 5.0, (1, 1, 2)) for r in refs]
    for preset, port in (("atvgnet", _atvgnet_port), ("vico", _vico_port)):
        metric = L.LandmarkDistance(preset)
        for g, r in zip(gens, refs):
            metric.update(g, r)
        assert metric.compute()["mouth_lmd"] == pytest.approx(port(refs, gens), rel=1e-12), preset


# -- exclusions and pooling -------------------------------------------------------------------------------


def test_nan_frames_are_excluded_and_counted():
    ref = _faces68(5, seed=3)
    gen = ref + np.random.default_rng(4).normal(0, 1.5, ref.shape)
    gen_nan, ref_nan = gen.copy(), ref.copy()
    gen_nan[2] = np.nan  # no face in the generated frame 2
    ref_nan[4, 60, 1] = np.nan  # a broken reference detection in frame 4
    out = L.lmd(gen_nan, ref_nan, "vico", "mouth")
    keep = [0, 1, 3]
    assert out["lmd"] == pytest.approx(L.lmd(gen[keep], ref[keep], "vico", "mouth")["lmd"], rel=1e-10, abs=1e-12)
    assert (out["frames_used"], out["frames_excluded"]) == (3, 2)
    # Velocity pairs (0,1) only: (1,2), (2,3), (3,4) each touch an excluded frame.
    assert (out["velocity_pairs_used"], out["velocity_pairs_excluded"]) == (1, 3)
    assert out["lmd_v"] == pytest.approx(L.lmd(gen[:2], ref[:2], "vico", "mouth")["lmd_v"], rel=1e-10, abs=1e-12)
    # A point outside the mouth still excludes the frame (frames are shared by both regions).
    gen_jaw = gen.copy()
    gen_jaw[0, 5] = np.nan
    assert L.lmd(gen_jaw, ref, "vico", "mouth")["frames_excluded"] == 1
    # Nothing valid: NaN, with the counts saying why.
    empty = L.lmd(np.full_like(gen, np.nan), ref, "vico", "mouth")
    assert np.isnan(empty["lmd"]) and empty["frames_used"] == 0 and empty["frames_excluded"] == 5


def test_chunked_video_distances_equal_whole_arrays():
    """What `toolkit evaluate` does on long videos: landmarks fed in chunks, four numbers kept per frame."""
    ref = _faces68(23, seed=11)
    gen = ref + np.random.default_rng(12).normal(0, 1.5, ref.shape)
    gen[6] = np.nan  # excluded frames on a chunk boundary and inside one
    ref[15, 50] = np.nan
    whole = L.LandmarkDistance("vico")
    whole.update(gen, ref)
    (expected,) = whole.per_video()
    chunked = L.LandmarkDistance("vico")
    video = L.VideoDistances("vico")
    for start in range(0, len(gen), 7):
        video.add(gen[start : start + 7], ref[start : start + 7])
    chunked.add_video(video)
    (got,) = chunked.per_video()
    assert got == pytest.approx(expected, nan_ok=True)
    assert chunked.compute() == pytest.approx(whole.compute(), nan_ok=True)
    for (region, velocity), per_frame in video.per_frame().items():
        assert len(per_frame) == len(gen) - velocity
        np.testing.assert_array_equal(per_frame, L.frame_distances(gen, ref, "vico", region, velocity))
    with pytest.raises(ValueError, match="preset"):
        L.LandmarkDistance("atvgnet").add_video(video)


def test_dense_ignores_missing_iris_but_not_missing_face_points():
    face = np.array(pose.load_canonical_face())
    ref = np.stack([face] * 3)
    gen = ref + np.random.default_rng(5).normal(0, 1.0, ref.shape)
    gen[0, 470] = np.nan  # iris: not part of any dense region
    gen[1, 100] = np.nan  # a face point
    out = L.lmd(gen, ref, "dense", "mouth")
    assert (out["frames_used"], out["frames_excluded"]) == (2, 1)


def test_streaming_pools_frames_and_averages_videos():
    """``lmd`` = mean over all frames of all videos; ``lmd_video_mean`` = mean of per-video means."""
    ref_a, ref_b = _faces68(2, seed=7), _faces68(4, seed=8)
    gen_a, gen_b = ref_a.copy(), ref_b.copy()
    gen_a[:, 48:68] += (1.0, 1.0)  # vico mouth: 1 px per frame
    gen_b[:, 48:68] += (4.0, 0.0)  # vico mouth: 2 px per frame
    gen_b[3] = np.nan  # excluded
    metric = L.LandmarkDistance("vico")
    metric.update(gen_a, ref_a)
    row = metric.per_video()[0]
    assert row["mouth_lmd"] == pytest.approx(1.0) and row["frames_used"] == 2
    metric.update(gen_b, ref_b)
    metric.update(np.full((3, 68, 2), np.nan), _faces68(3))  # a video without any valid frame
    out = metric.compute()
    assert out["mouth_lmd"] == pytest.approx((2 * 1.0 + 3 * 2.0) / 5)  # pooled over 5 frames = 1.6
    assert out["mouth_lmd_video_mean"] == pytest.approx((1.0 + 2.0) / 2)
    assert out["face_lmd"] == pytest.approx((2 * 40 / 136 + 3 * 80 / 136) / 5)
    assert out["mouth_lmd_v"] == pytest.approx(0.0)  # constant offsets have no velocity error
    assert (out["videos"], out["videos_without_frames"], out["frames_used"], out["frames_excluded"]) == (3, 1, 5, 4)
    for region in ("mouth", "face"):  # the functional twin agrees per video
        assert L.lmd(gen_a, ref_a, "vico", region)["lmd"] == pytest.approx(row[f"{region}_lmd"])
    config = metric.config()
    assert config["name"] == "vico" and config["mouth"] == "48-67" and config["distance"] == "mean_abs"
    assert config["detector"] == "fan" and metric.weights_provenance() == {}
    metric.reset()
    assert metric.compute()["videos"] == 0 and np.isnan(metric.compute()["mouth_lmd"])
    # Different lengths raise, unless truncation is asked for (and counted).
    with pytest.raises(ValueError, match="trim"):
        L.LandmarkDistance("vico").update(gen_a, ref_b)
    truncating = L.LandmarkDistance("vico", truncate=True)
    truncating.update(ref_b[:3], ref_b)
    assert truncating.compute()["frames_truncated"] == 1 and truncating.compute()["frames_used"] == 3


def test_shifted_and_noisy_copies_score_worse(sample):
    """On the sample's true meshes: lagging the video by more frames, or adding more noise, raises LMD."""
    truth = sample.load_ground_truth()["landmarks"].astype(np.float64)
    for region in ("mouth", "face"):
        values = []
        for lag in (0, 1, 2, 4):
            out = L.lmd(truth[lag:], truth[: len(truth) - lag], "dense", region)
            values.append(out["lmd"])
            assert (out["lmd_v"] == 0.0) == (lag == 0)
        assert values[0] == 0.0 and np.all(np.diff(values) > 0), (region, values)
    rng = np.random.default_rng(9)
    for preset, points in (("dense", truth), ("vico", _faces68(50)), ("atvgnet", _faces68(50))):
        noise = rng.normal(0, 1.0, points.shape)
        scores = [L.lmd(points + s * noise, points, preset, "mouth") for s in (0.0, 0.5, 1.0, 2.0)]
        assert np.all(np.diff([s["lmd"] for s in scores]) > 0), preset
        assert np.all(np.diff([s["lmd_v"] for s in scores]) > 0), preset


# -- bad input -----------------------------------------------------------------------------------------------


def test_bad_input_raises_clear_errors():
    face68 = _faces68(3)
    mesh = np.broadcast_to(pose.load_canonical_face(), (3, 478, 3))
    with pytest.raises(ValueError, match="68 points"):
        L.lmd(mesh, mesh, "atvgnet")
    with pytest.raises(ValueError, match="478 or 468 points"):
        L.lmd(face68, face68, "dense")
    with pytest.raises(ValueError, match="differ"):
        L.lmd(face68, face68[:2], "vico")
    with pytest.raises(ValueError, match="empty"):
        L.lmd(face68[:0], face68[:0], "vico")
    with pytest.raises(ValueError, match=r"\(T, P, 2\|3\)"):
        L.lmd(face68[0], face68[0], "vico")
    with pytest.raises(ValueError, match="numeric"):
        L.lmd(face68.astype(str), face68, "vico")
    with pytest.raises(ValueError, match="unknown LMD preset"):
        L.lmd(face68, face68, "dlib68")
    with pytest.raises(ValueError, match="region"):
        L.lmd(face68, face68, "vico", "eyes")
    with pytest.raises(ValueError, match="detector='fan'"):
        L.lmd(face68, face68, "atvgnet", detector="mediapipe")
    with pytest.raises(ValueError, match="dlib is not available"):
        L.LandmarkExtractor("dlib")
    with pytest.raises(ValueError, match="dlib is not available"):
        L.LandmarkDistance("atvgnet", detector="dlib").update_frames(np.zeros((1, 8, 8, 3), np.uint8),
                                                                     np.zeros((1, 8, 8, 3), np.uint8))


# -- detectors -----------------------------------------------------------------------------------------------


def test_mediapipe_landmarks_on_the_sample(sample):
    frames = media.read_video(sample.video)[:40]
    truth = sample.load_ground_truth()["landmarks"][:40]
    detected = L.extract_landmarks(sample.video, "mediapipe")  # from the file
    assert detected.shape == (sample.num_frames, 478, 3) and np.isfinite(detected).all()
    close = L.lmd(detected[:40], truth, "dense", "mouth")["lmd"]
    lagged = L.lmd(detected[4:40], truth[:36], "dense", "mouth")["lmd"]
    assert close < 4.0 < lagged, (close, lagged)  # % IOD: MediaPipe follows the true lips
    # From frames, through the streaming class; a frame without a face is excluded and counted.
    generated = frames.copy()
    generated[10] = 0
    metric = L.LandmarkDistance("dense")
    metric.update_frames(generated, frames)
    (row,) = metric.per_video()
    assert row["frames_excluded"] == 1 and row["frames_used"] == 39
    assert metric.compute()["mouth_lmd"] < 1.0  # the same frames: only the tracker's jitter
    assert metric.config()["extractor"]["detector"] == "mediapipe" and metric.weights_provenance() == {}


def _unpin(monkeypatch: pytest.MonkeyPatch, name: str) -> w.WeightFile:
    entry = dataclasses.replace(w.REGISTRY[name], sha256=None, size=None)
    monkeypatch.setitem(w.REGISTRY, name, entry)
    return entry


@pytest.mark.usefixtures("isolated_caches")
@pytest.mark.slow  # ~35 CPU s: FAN and S3FD on the 8 s sample
def test_fan_landmarks_with_registry_weights(sample, monkeypatch: pytest.MonkeyPatch):
    """FAN on BlazeFace boxes with test weights where the registry (and face-alignment) look for them."""
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    torch.manual_seed(0)
    for name, network in (("fan-2d", FAN(4)), ("fan-s3fd", s3fd())):
        target = w.destination(_unpin(monkeypatch, name))
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save(network.state_dict(), target)

    frames = media.read_video(sample.video)[:1]  # FAN on CPU is slow (~0.5 s a frame, plus numba's compile)
    blank = np.zeros_like(frames)
    with L.LandmarkExtractor("fan") as blazeface_boxes:  # the fast default: BlazeFace boxes
        points = blazeface_boxes(np.concatenate([frames, blank]))
        assert points.shape == (2, 68, 2) and points.dtype == np.float32
        assert np.isfinite(points[0]).all() and np.isnan(points[1]).all()  # BlazeFace finds no face in black

        metric = L.LandmarkDistance("vico", detector=blazeface_boxes)
        metric.update_frames(frames, frames)
        out = metric.compute()
        assert out["mouth_lmd"] == 0.0 and out["frames_used"] == 1  # FAN is deterministic
        assert metric.weights_provenance() == {"fan-2d": w.verify("fan-2d").actual_sha256,
                                               "fan-s3fd": w.verify("fan-s3fd").actual_sha256}
        config = metric.config()["extractor"]
        assert config["detector"] == "fan" and config["box_source"] == "blazeface" and config["flip_input"] is False

    # box_source="s3fd" is face-alignment's own pipeline: the ViCo script's fa.get_landmarks(frame)[0]. That
    # call runs FAN on every S3FD face (hundreds, with random weights), each independently, so the first
    # face alone is the reference here.
    small = np.ascontiguousarray(frames[:, ::2, ::2])  # S3FD runs at full resolution: a quarter of the cost
    with L.LandmarkExtractor("fan", box_source="s3fd") as s3fd_boxes:
        ours = s3fd_boxes(small)[0]
        fa = s3fd_boxes._fan._fa
        faces = fa.face_detector.detect_from_image(small[0].copy())
        reference = fa.get_landmarks_from_image(small[0], detected_faces=faces[:1])[0]
        np.testing.assert_array_equal(ours, reference)
    # The presets that LandmarkDistance.update_frames runs FAN for: the reference scripts' settings.
    assert (L.PRESETS["vico"].fan_box_source, L.PRESETS["vico"].fan_flip_input) == ("s3fd", True)
    assert L.LandmarkDistance("vico").config()["fan_flip_input"] is True

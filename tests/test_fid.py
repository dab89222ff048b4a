"""FID: the plain-torch Inception port, the Fréchet distance and the video pipeline against pytorch-fid 0.3.0.

The real FID weights cannot be downloaded here, so a random checkpoint is built on pytorch-fid's own
skeleton (its internal builders; ``fid_inception_v3()`` itself would download) with BatchNorm
statistics set from one forward pass so activations have a sensible scale. The same file serves
both sides: it sits at torch hub's checkpoint path under the real file name, which is where
pytorch-fid looks and where the (unpinned) registry entry points.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import weights_factory as factory
from talking_head.metrics import fid as fidlib
from talking_head.metrics.fid import FID, RunningStatistics, SmallSampleWarning, Statistics, VideoProtocol
from talking_head.metrics.inception import FEATURE_DIM, WEIGHTS_NAME, FIDInceptionV3
from talking_head.toolkit import media
from talking_head.toolkit import weights as w

STEP = 10  # frames 0, 10, 20 of a 1 s clip: Inception costs ~0.5-1 s a frame on 2 CPU cores


# ----------------------------------------------------------------------------------------- fixtures
_pytorch_fid_skeleton = factory.pytorch_fid_skeleton
_calibrated_state_dict = factory.fid_inception  # the benchmark module imports it from here


def _save_weights(dest: Path, state: dict) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)  # never write through a hard link into the shared module file
    torch.save(state, dest)


@pytest.fixture(scope="module")
def assets(tmp_path_factory, shared_sample):
    root = tmp_path_factory.mktemp("fid")
    clip = shared_sample(speakers=1, clips=1, seconds=1.0, seed=0)[0]  # tests/conftest.py
    frames = media.read_video(clip.video)
    # A "generated" copy: blurred, brighter and noisy, so the two sets differ clearly.
    rng = np.random.default_rng(1)
    fake = np.stack([cv2.GaussianBlur(f, (7, 7), 2.0) for f in frames]).astype(np.int16) + 12
    fake = np.clip(fake + rng.integers(-6, 7, fake.shape), 0, 255).astype(np.uint8)
    fake_path = media.write_video(root / "fake.mp4", fake, fps=25)
    weights_file = root / "weights.pth"
    torch.save(_calibrated_state_dict(frames[::6]), weights_file)
    return SimpleNamespace(root=root, real=Path(clip.video), fake=Path(fake_path), frames=frames, weights=weights_file)


@pytest.fixture
def fid_weights(isolated_caches, monkeypatch, assets) -> Path:
    """The random checkpoint where pytorch-fid and the (unpinned) registry entry both look."""
    entry = dataclasses.replace(w.REGISTRY[WEIGHTS_NAME], sha256=None, size=None)
    monkeypatch.setitem(w.REGISTRY, WEIGHTS_NAME, entry)
    dest = w.destination(entry)
    assert dest == Path(torch.hub.get_dir()) / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth"
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(assets.weights, dest)
    except OSError:
        dest.write_bytes(assets.weights.read_bytes())
    return dest


@pytest.fixture(scope="module")
def model(assets) -> FIDInceptionV3:
    """One model for the tests that are not about loading (loading is tested through the registry below)."""
    net = FIDInceptionV3()
    net.load_checkpoint(torch.load(assets.weights, weights_only=True))
    net.weights_sha256 = w.file_sha256(assets.weights)
    return net


def _numpy_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(0), np.cov(features, rowvar=False)  # pytorch-fid's calculate_activation_statistics


# ------------------------------------------------------------------------------------ Inception port
def test_checkpoint_loads_strictly_and_features_equal_pytorch_fid(fid_weights, assets):
    from pytorch_fid.inception import InceptionV3
    from torchvision.transforms import ToTensor

    exact = FIDInceptionV3.from_pretrained("cpu", memory_format="contiguous")  # through the registry, strict
    model = FIDInceptionV3.from_pretrained("cpu")  # the CPU default: channels-last
    reference = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()  # reads the file from TORCH_HOME
    frames = [assets.frames[0], np.ascontiguousarray(assets.frames[3][90:330, 120:300])]
    ours = exact.extract(frames).numpy()  # a list: the crop has another size
    fast = model.extract(frames).numpy()
    with torch.no_grad():
        theirs = torch.cat([reference(ToTensor()(f)[None])[0] for f in frames]).squeeze(3).squeeze(2).numpy()

    assert ours.shape == fast.shape == (2, FEATURE_DIM) and ours.dtype == fast.dtype == np.float32
    assert theirs.std() > 1e-2  # calibrated random weights: activations are not degenerate
    np.testing.assert_array_equal(ours, theirs)  # pytorch-fid's layout: its bits
    # Channels-last only reorders the convolutions' sums (docs/metrics-reference.md, "FID on the CPU").
    assert 0 < np.abs(fast - theirs).max() < 2e-4 * np.abs(theirs).max()
    assert exact.config()["memory_format"] == "contiguous" and model.config()["memory_format"] == "channels_last"
    assert model.weights_provenance() == {WEIGHTS_NAME: w.file_sha256(fid_weights)}
    assert set(model.state_dict()) == set(torch.load(fid_weights, weights_only=True))  # fc included


def test_wrong_checkpoint_fails_loudly(fid_weights):
    state = torch.load(fid_weights, weights_only=True)
    state["AuxLogits.fc.weight"] = state.pop("fc.weight")  # torchvision's ImageNet Inception has AuxLogits
    _save_weights(fid_weights, state)
    with pytest.raises(w.WeightsCorruptError, match=r"missing 1 keys \(e\.g\. fc\.weight\).*unexpected 1 keys"):
        FIDInceptionV3.from_pretrained("cpu")

    state["fc.weight"] = torch.zeros(1000, FEATURE_DIM)  # 1000 classes, not the TF graph's 1008
    del state["AuxLogits.fc.weight"]
    _save_weights(fid_weights, state)
    with pytest.raises(w.WeightsCorruptError, match=r"fc\.weight.*1000"):
        FIDInceptionV3.from_pretrained("cpu")


def test_channels_last_moves_fid_by_round_off_only(assets):
    """The CPU default layout against pytorch-fid's, on the same frames: the FID agrees to float round-off."""
    state = torch.load(assets.weights, weights_only=True)
    fake = media.read_video(assets.fake)
    results = {}
    for layout in ("contiguous", "channels_last"):
        net = FIDInceptionV3(memory_format=layout)
        net.load_checkpoint(state)
        feats = [net.extract(frames[::2]).double().numpy() for frames in (fake, assets.frames)]
        results[layout] = fidlib.frechet_distance(*_numpy_statistics(feats[0]), *_numpy_statistics(feats[1])).fid
    assert results["contiguous"] > 1.0  # the sets differ clearly
    assert results["channels_last"] != results["contiguous"]  # another summation order, really taken
    assert results["channels_last"] == pytest.approx(results["contiguous"], rel=1e-5)
    with pytest.raises(ValueError, match="memory_format must be one of"):
        FIDInceptionV3(memory_format="nhwc")


def test_tf32_is_off_while_extracting_and_restored(model):
    seen = []
    handle = model.register_forward_hook(
        lambda *_: seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
    )
    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        model.extract(np.zeros((1, 64, 64, 3), np.uint8))
        assert seen == [(False, False)]
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (True, True)
    finally:
        handle.remove()
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


# ------------------------------------------------------------------------------- end-to-end exactness
@pytest.mark.slow  # pytorch-fid's SciPy sqrtm of the 2048x2048 product alone takes ~50 s on 2 cores
def test_fid_from_videos_equals_pytorch_fid_cli_on_png_dumps(fid_weights, assets, tmp_path):
    dirs = []
    for name, video in (("fake", assets.fake), ("real", assets.real)):
        folder = tmp_path / name
        folder.mkdir()
        for k, frame in enumerate(media.read_video(video)[::STEP]):
            Image.fromarray(frame).save(folder / f"{k:04d}.png")  # lossless dump, as Wav2Lip's recipe
        dirs.append(str(folder))
    env = {**os.environ, "TORCH_HOME": os.environ["TORCH_HOME"]}
    cli = subprocess.Popen(  # runs while we compute ours: the two share the 2 cores
        [sys.executable, "-m", "pytorch_fid", *dirs, "--device", "cpu", "--batch-size", "3"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        with pytest.warns(SmallSampleWarning):
            ours = fidlib.fid_from_videos(assets.fake, assets.real, frame_step=STEP, batch_size=2, device="cpu")
        out, err = cli.communicate(timeout=600)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 0, err[-2000:]
    theirs = float(re.search(r"FID:\s+(\S+)", out).group(1))

    assert ours["num_frames_generated"] == ours["num_frames_reference"] == len(os.listdir(dirs[0])) == 3
    assert theirs > 0.1  # a real difference between the sets, not 0 - 0
    assert abs(ours["fid"] - theirs) < 1e-3, (ours["fid"], theirs)
    assert len(ours["warnings"]) == 2 and all("2048" in m for m in ours["warnings"])
    assert ours["config"]["protocol"]["frame_step"] == STEP
    assert ours["weights"] == {WEIGHTS_NAME: w.file_sha256(fid_weights)}


# ------------------------------------------------------------------------------------ Fréchet distance
def _gaussian_sets(rng, n1, n2, d, shift=0.3):
    mix1, mix2 = rng.standard_normal((d, d)) / np.sqrt(d), rng.standard_normal((d, d)) / np.sqrt(d)
    x1 = rng.standard_normal((n1, d)) @ mix1 + 1.0
    x2 = rng.standard_normal((n2, d)) @ (mix1 + 0.5 * mix2) + 1.0 + shift
    return x1, x2


def _nuclear_truth(x1, x2):
    """Exact FID of two sample sets: tr sqrtm(S1 S2) = ||X1c X2c^T||_* / sqrt((n1-1)(n2-1)) (small SVD)."""
    c1, c2 = x1 - x1.mean(0), x2 - x2.mean(0)
    covmean = np.linalg.svd(c1 @ c2.T, compute_uv=False).sum() / np.sqrt((len(x1) - 1) * (len(x2) - 1))
    diff = x1.mean(0) - x2.mean(0)
    return diff @ diff + np.trace(np.cov(x1, rowvar=False)) + np.trace(np.cov(x2, rowvar=False)) - 2 * covmean


@pytest.mark.parametrize("d", [64, 256])
def test_frechet_distance_equals_pytorch_fid_when_well_conditioned(d):
    from pytorch_fid.fid_score import calculate_frechet_distance

    x1, x2 = _gaussian_sets(np.random.default_rng(d), 4 * d, 5 * d, d)
    (m1, s1), (m2, s2) = _numpy_statistics(x1), _numpy_statistics(x2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # SciPy 1.17: sqrtm's `disp` is deprecated
        theirs = calculate_frechet_distance(m1, s1, m2, s2)
    for backend in ("numpy", "torch"):
        ours = fidlib.frechet_distance(m1, s1, m2, s2, backend=backend)
        assert abs(ours.fid - theirs) / theirs < 1e-6, (backend, ours.fid, theirs)
        assert ours.eigenvalues_zeroed == 0 and ours.rank_sigma1 == d
        assert ours.fid == pytest.approx(ours.mean_term + ours.trace_sigma1 + ours.trace_sigma2 - 2 * ours.trace_covmean)


def test_frechet_distance_stays_finite_where_sqrtm_fails_rank_deficient():
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(0)
    d, n = 256, 10  # N < d: both covariances have rank 9
    x1 = np.maximum(rng.standard_normal((n, d)), 0) * 1e3  # ReLU-like features at a large scale
    x2 = np.maximum(rng.standard_normal((n, d)) + 0.1, 0) * 1e3
    near = x1 + rng.standard_normal(x1.shape)  # almost the same set: FID is a small difference of big terms
    for a, b in ((x1, x2), (x1, near)):
        (m1, s1), (m2, s2) = _numpy_statistics(a), _numpy_statistics(b)
        truth = _nuclear_truth(a, b)
        scale = np.trace(s1) + np.trace(s2)
        for backend in ("numpy", "torch"):
            ours = fidlib.frechet_distance(m1, s1, m2, s2, backend=backend)
            assert np.isfinite(ours.fid) and ours.rank_sigma1 == n - 1
            assert abs(ours.fid - truth) < 1e-9 * scale, (backend, ours.fid, truth)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                theirs = calculate_frechet_distance(m1, s1, m2, s2)
            except ValueError as err:  # "Imaginary component ..." from the complex sqrtm
                assert "Imaginary component" in str(err)
            else:
                assert abs(theirs - truth) > abs(ours.fid - truth)  # scipy's sqrtm is further off


def test_frechet_distance_rejects_bad_input():
    mu, sigma = np.zeros(4), np.eye(4)
    with pytest.raises(ValueError, match="shapes do not match"):
        fidlib.frechet_distance(mu, sigma, np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="NaN"):
        fidlib.frechet_distance(mu, sigma * np.nan, mu, sigma)
    with pytest.raises(ValueError, match="sigma1 must be 2-D"):
        fidlib.frechet_distance(mu, mu, mu, sigma)


def test_running_statistics_equal_np_cov_and_merge(tmp_path):
    from pytorch_fid.fid_score import compute_statistics_of_path

    rng = np.random.default_rng(3)
    x = rng.standard_normal((301, 32)) * rng.uniform(0.1, 3, 32) + 1e4  # a large mean: no cancellation allowed
    running = RunningStatistics(32)
    for part in np.array_split(x, 7):
        running.update(part)
    stats = running.statistics()
    mu, sigma = _numpy_statistics(x)
    np.testing.assert_allclose(stats.mu, mu, rtol=1e-14)
    np.testing.assert_allclose(stats.sigma, sigma, rtol=1e-9, atol=1e-9)
    assert stats.count == 301

    merged = RunningStatistics(32)
    merged.update(x[:100])
    half = RunningStatistics(32)
    half.update(x[100:])
    merged.add_statistics(half.statistics())  # e.g. cached reference statistics
    np.testing.assert_allclose(merged.statistics().sigma, sigma, rtol=1e-9, atol=1e-9)

    file = stats.save(tmp_path / "stats.npz")  # pytorch-fid's --save-stats layout: it reads our file
    m, s = compute_statistics_of_path(str(file), None, 50, 32, "cpu")
    np.testing.assert_array_equal(m, stats.mu)
    np.testing.assert_array_equal(Statistics.load(file).sigma, stats.sigma)


# -------------------------------------------------------------------------------------- streaming class
@pytest.mark.slow  # ~13 CPU s: Inception on several sets
def test_streaming_fid_class_batches_copies_and_warns(model, assets):
    frames = assets.frames[::STEP]  # 3 frames
    reference = assets.frames[5::STEP][:2]
    features = model.extract(np.concatenate([frames, reference])).double().numpy()  # one batch, for comparison

    metric = FID(batch_size=2, model=model)
    buffer = frames.copy()
    metric.update(buffer[:1])  # stays pending (batch 2): must be copied, the caller reuses its buffer
    buffer[:1] = 0
    metric.update(torch.from_numpy(frames[1:]))  # torch input too
    metric.update_reference(reference)
    with pytest.warns(SmallSampleWarning, match="fewer than the 2048"):
        result = metric.compute()

    for real, rows in ((False, features[:3]), (True, features[3:])):
        stats, (mu, sigma) = metric.statistics(real), _numpy_statistics(rows)
        np.testing.assert_allclose(stats.mu, mu, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(stats.sigma, sigma, rtol=1e-5, atol=1e-9)
    frechet = result["frechet"]
    assert result["fid"] > 0.1 and frechet["rank_sigma1"] == 2  # 3 frames: rank 2
    assert result["fid"] == pytest.approx(frechet["mean_term"] + frechet["trace_sigma1"] + frechet["trace_sigma2"]
                                          - 2 * frechet["trace_covmean"])
    assert (result["num_frames_generated"], result["num_frames_reference"]) == (3, 2)
    assert len(result["warnings"]) == 2 and "generated set has 3 frames" in result["warnings"][0]
    assert metric.config()["extractor"]["feature_dim"] == 2048 and metric.config()["batch_size"] == 2
    assert metric.weights_provenance() == model.weights_provenance()

    metric.reset()
    with pytest.raises(ValueError, match="generated side has 0 frames"):
        metric.compute()


def test_kept_features_are_the_rows_the_statistics_sum(model, assets):
    """keep_features (KID's input and the bootstrap's) keeps each frame's row, in order, beside the same sums."""
    frames, reference = assets.frames[::STEP], assets.frames[5::STEP][:2]
    metric = FID(batch_size=2, model=model, keep_features=True)
    metric.update(frames)
    metric.update_reference(reference)
    assert metric.counts() == (3, 2)  # one generated frame still waits for a batch
    for real, count in ((False, 3), (True, 2)):
        rows = metric.features(real)
        assert rows.shape == (count, FEATURE_DIM) and rows.dtype == np.float32
        stats, (mu, sigma) = metric.statistics(real), _numpy_statistics(rows.astype(np.float64))
        np.testing.assert_allclose(stats.mu, mu, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(stats.sigma, sigma, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="keep_features=True"):
        FID(model=model).features()


def test_bad_input_raises_clear_errors(model, assets):
    metric = FID(model=model)
    frames = assets.frames[:2]
    with pytest.raises(ValueError, match="dtype float32"):
        metric.update(frames.astype(np.float32) / 255)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\).*shape \(2, 3, 512, 512\)"):
        metric.update(frames.transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match="no frames"):
        metric.update(frames[:0])
    with pytest.raises(ValueError, match="no frames"):
        metric.update([])
    with pytest.raises(ValueError, match="frame 1 must be"):
        metric.update([frames[0], frames[1][..., 0]])
    with pytest.raises(ValueError, match="batch_size"):
        FID(batch_size=0, model=model)
    with pytest.raises(ValueError, match="frame_step"):
        VideoProtocol(frame_step=0)
    with pytest.raises(ValueError, match="crop box"):
        VideoProtocol(crop=(10, 10, 5, 20))
    with pytest.raises(ValueError, match="resize_interpolation"):
        VideoProtocol(resize=64, resize_interpolation="cubic-ish")
    with pytest.raises(ValueError, match=r"unknown protocol parameter.*'frames_step'"):
        fidlib.fid_from_videos(assets.fake, assets.real, model=model, frames_step=2)
    with pytest.raises(ValueError, match="outside the 512x512 frame"):
        fidlib.video_statistics(assets.real, max_frames=2, crop=(600, 600, 700, 700), model=model)
    with pytest.raises(ValueError, match="pairs videos one to one"):
        fidlib.fid_from_videos([assets.fake, assets.fake], assets.real, pooled=False, model=model)


# ------------------------------------------------------------------------------------ video protocol
def test_protocol_crop_resize_and_frame_selection(model, assets):
    box = (100, 120, 400, 440)
    stats = fidlib.video_statistics(assets.real, frame_step=STEP, max_frames=3, crop=box, resize=128, model=model)
    chosen = assets.frames[[0, STEP, 2 * STEP]]
    crops = [cv2.resize(f[120:440, 100:400], (128, 128), interpolation=cv2.INTER_LINEAR) for f in chosen]
    features = model.extract(np.stack(crops)).double().numpy()
    mu, sigma = _numpy_statistics(features)
    assert stats.count == 3
    np.testing.assert_allclose(stats.mu, mu, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(stats.sigma, sigma, rtol=1e-5, atol=1e-9)
    assert stats.meta["protocol"]["crop"] == {"box": [100.0, 120.0, 400.0, 440.0]}
    assert stats.meta["protocol"]["pre_resize"] == [128, 128]

    # Per-frame boxes (NaN = no face) and a callable crop (None = skip) drop the same frame.
    boxes = np.tile(np.array(box, float), (len(assets.frames), 1))
    boxes[STEP] = np.nan
    by_boxes = fidlib.video_statistics(assets.real, frame_step=STEP, max_frames=3, crop={str(assets.real): boxes},
                                       resize=128, model=model)
    assert by_boxes.count == 2 and by_boxes.meta["videos"][0]["skipped"] == 1
    mu2, _ = _numpy_statistics(features[[0, 2]])
    np.testing.assert_allclose(by_boxes.mu, mu2, rtol=1e-6, atol=1e-7)

    def face_box(path, index, frame):
        return None if index == STEP else box

    by_callable = fidlib.video_statistics(assets.real, frame_step=STEP, max_frames=3, crop=face_box,
                                          crop_id="fixed-box-v1", resize=128, model=model)
    np.testing.assert_allclose(by_callable.mu, by_boxes.mu, rtol=1e-6, atol=1e-7)
    assert by_callable.meta["protocol"]["crop"]["crop_id"] == "fixed-box-v1"


@pytest.mark.slow  # ~15 CPU s: Inception per video
def test_per_video_mode_pairs_videos_and_flags_small_sets(model, assets):
    with pytest.warns(SmallSampleWarning, match="2 of 2 video pairs"):
        result = fidlib.fid_from_videos([assets.fake, assets.real], [assets.real, assets.real], pooled=False,
                                        frame_step=STEP, max_frames=2, model=model)
    rows = result["per_video"]
    assert [r["num_frames_generated"] for r in rows] == [2, 2]
    assert rows[1]["fid"] == pytest.approx(0.0, abs=1e-6)  # the same frames on both sides
    assert rows[0]["fid"] > 0.1
    assert result["fid"] == pytest.approx((rows[0]["fid"] + rows[1]["fid"]) / 2)
    assert result["config"]["protocol"]["pooled"] is False


# ------------------------------------------------------------------------------------ statistics cache
@pytest.mark.slow  # ~15 CPU s: Inception on several sets
def test_cached_statistics_hit_and_invalidation(fid_weights, assets, tmp_path):
    video = tmp_path / "ref.mp4"
    video.write_bytes(assets.real.read_bytes())
    model = FIDInceptionV3.from_pretrained("cpu")
    calls = []
    model.register_forward_hook(lambda module, args, out: calls.append(len(out)))
    params = {"frame_step": STEP, "max_frames": 2}

    first = fidlib.cached_statistics([video], None, params, model=model)
    cache_root = Path(os.environ["TOOLKIT_CACHE_DIR"]) / "fid-stats"
    assert first.meta["cache"]["status"] == "miss" and Path(first.meta["cache"]["file"]).parent == cache_root
    assert sum(calls) == 2 and len(list(cache_root.glob("fid-*.npz"))) == 1

    second = fidlib.cached_statistics([video], None, params, model=model)
    assert second.meta["cache"]["status"] == "hit" and sum(calls) == 2  # nothing was extracted
    np.testing.assert_array_equal(second.mu, first.mu)
    np.testing.assert_array_equal(second.sigma, first.sigma)
    assert second.count == 2

    changed = fidlib.cached_statistics([video], None, {**params, "frame_step": STEP + 1}, model=model)
    assert changed.meta["cache"]["status"] == "miss" and sum(calls) == 4
    assert changed.meta["cache"]["key"] != first.meta["cache"]["key"]

    stat = video.stat()
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a re-encoded / replaced file
    touched = fidlib.cached_statistics([video], None, params, model=model)
    assert touched.meta["cache"]["status"] == "miss" and sum(calls) == 6

    state = torch.load(fid_weights, weights_only=True)
    state["fc.bias"] = state["fc.bias"] + 1  # other weights file, other sha256 (features unchanged)
    _save_weights(fid_weights, state)
    other = FIDInceptionV3.from_pretrained("cpu")
    assert other.weights_sha256 != model.weights_sha256
    reweighted = fidlib.cached_statistics([video], None, params, model=other)
    assert reweighted.meta["cache"]["status"] == "miss"
    assert len(list(cache_root.glob("fid-*.npz"))) == 4 and not list(cache_root.glob(".*tmp*"))

    with pytest.raises(ValueError, match="crop_id"):
        fidlib.cached_statistics([video], None, {"crop": lambda p, i, f: (0, 0, 10, 10)}, model=model)

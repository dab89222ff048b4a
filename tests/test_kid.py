"""metrics.kid against torch-fidelity 0.4.0 (``torch_fidelity.metric_kid.kid_features_to_metric``) on the same
features, and the streaming class on FID's Inception with a created, BatchNorm-calibrated weight file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch_fidelity.defaults import DEFAULTS
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

import weights_factory as factory
from talking_head.metrics import kid as K
from talking_head.metrics.base import Chunk, VideoInfo, VideoPair
from talking_head.metrics.fid import FIDVideos, InceptionVideos
from talking_head.metrics.inception import FIDInceptionV3
from talking_head.toolkit import media


def _features(rows: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Non-negative 2048-d rows shaped like pool3 activations (ReLU'd, mean around 0.4)."""
    rng = np.random.default_rng(seed)
    return np.maximum(rng.normal(0.2 + shift, 0.5, (rows, 2048)), 0).astype(np.float32)


def test_defaults_are_torch_fidelitys():
    assert (K.SUBSETS, K.SUBSET_SIZE, K.DEGREE, K.COEF0, K.SEED) == (
        DEFAULTS["kid_subsets"], DEFAULTS["kid_subset_size"], DEFAULTS["kid_kernel_poly_degree"],
        DEFAULTS["kid_kernel_poly_coef0"], DEFAULTS["rng_seed"])
    assert DEFAULTS["kid_kernel"] == "poly" and DEFAULTS["kid_kernel_poly_gamma"] is None


@pytest.mark.parametrize("shift", [0.0, 0.05])
def test_equals_torch_fidelity_on_the_same_features(shift):
    gen, ref = _features(260, 1, shift), _features(230, 2)
    ours = K.kid_from_features(gen, ref, subsets=20, subset_size=200, seed=7)
    theirs = kid_features_to_metric(torch.from_numpy(gen), torch.from_numpy(ref), kid_subsets=20,
                                    kid_subset_size=200, kid_kernel="poly", kid_kernel_poly_degree=3,
                                    kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1, rng_seed=7, verbose=False)
    assert ours["kid"] == pytest.approx(theirs[KEY_METRIC_KID_MEAN], rel=1e-6, abs=1e-12)
    assert ours["kid_std"] == pytest.approx(theirs[KEY_METRIC_KID_STD], rel=1e-6, abs=1e-12)
    assert ours["subset_size"] == 200 and ours["warnings"] == []
    if shift:
        assert ours["kid"] > 10 * abs(K.kid_from_features(_features(260, 3), ref, subsets=20, subset_size=200)["kid"])


def test_small_sets_shrink_the_subsets_and_say_so():
    result = K.kid_from_features(_features(40, 1), _features(30, 2), subsets=5)
    assert result["subset_size"] == 30 and "instead of 1000" in result["warnings"][0]
    with pytest.raises(ValueError, match="at least 2 frames"):
        K.kid_from_features(_features(1, 1), _features(30, 2))
    with pytest.raises(ValueError, match="one width"):
        K.kid_from_features(_features(5, 1), _features(5, 2)[:, :100])


def test_unbiased_mmd_of_a_hand_sized_case():
    x, y = np.array([[0.0], [1.0]], np.float32), np.array([[1.0], [2.0]], np.float32)
    k = lambda a, b: K.polynomial_kernel(a, b, degree=1, gamma=1.0, coef0=0.0)  # noqa: E731  (x . y)
    # within x: off-diagonal 0*1 twice -> 0; within y: 1*2 twice -> 4 / 2 = 2; across: (0+0+1+2) / 4 = 0.75
    assert K.unbiased_mmd2(k(x, x), k(x, y), k(y, y)) == pytest.approx(0 + 2 - 2 * 0.75)


@pytest.fixture(scope="module")
def frames(shared_sample):
    clip = shared_sample(speakers=1, clips=1, seconds=1.0, seed=0)[0]  # tests/conftest.py
    return media.read_video(clip.video)[::3]  # (9, 512, 512, 3)


def test_streaming_kid_uses_fids_inception_features(frames, isolated_caches, monkeypatch):
    factory.place(monkeypatch, "fid-inception", factory.fid_inception(frames[::2]))
    model = FIDInceptionV3.from_pretrained()
    metric = K.KID(device="cpu", subsets=10, batch_size=4, model=model)
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 4) for f in frames])
    metric.update(blurred)
    metric.update(frames, real=True)
    result = metric.compute()
    gen, ref = model.extract(blurred), model.extract(frames)  # in one batch each: the numbers do not depend on it
    assert result["kid"] == pytest.approx(K.kid_from_features(gen, ref, subsets=10)["kid"], rel=1e-5)
    assert result["num_frames_generated"] == len(frames) and result["subset_size"] == len(frames)
    assert abs(K.kid_from_features(ref, ref, subsets=10)["kid"]) < result["kid"]  # a set against itself
    metric.truncate(len(frames) - 2, len(frames))  # a video taken back out
    assert metric.counts() == (len(frames) - 2, len(frames))
    assert set(metric.weights_provenance()) == {"fid-inception"} and metric.config()["subsets"] == 10


def test_runner_kid_reads_the_inception_pass_it_shares_with_fid(frames, isolated_caches, monkeypatch):
    """FIDVideos and KIDVideos on one InceptionVideos: the features are FID's batches, a video taken back out
    half-way leaves nothing behind, and KID equals kid_from_features of the network's features."""
    factory.place(monkeypatch, "fid-inception", factory.fid_inception(frames[::4]))
    shared = InceptionVideos(device="cpu")
    fid, kid = FIDVideos(shared=shared), K.KIDVideos(shared=shared, subsets=10)
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 4) for f in frames[:2]])
    videos = [(VideoInfo(VideoPair("a", Path("a.mp4"), Path("a.mp4")), fps=25.0, frames_used=2),
               [Chunk(blurred[:1], frames[:1], blurred[:1]), Chunk(blurred[1:], frames[1:2], blurred[1:])], True),
              (VideoInfo(VideoPair("b", Path("b.mp4"), Path("b.mp4")), fps=25.0, frames_used=2),
               [Chunk(frames[3:5], frames[5:7], frames[3:5])], False)]  # fails after its first chunk
    for video, chunks, keep in videos:
        for metric in (fid, kid):
            metric.start_video(video)
        for chunk in chunks:
            for metric in (fid, kid):
                metric.update(chunk)
        for metric in (fid, kid):
            metric.end_video() if keep else metric.discard_video()
    assert shared.videos == [(2, 2)] and shared.fid.counts() == (2, 2)
    gen, ref = shared.fid.features(False), shared.fid.features(True)
    expected = shared.model.extract(np.concatenate([blurred, frames[:2]])).numpy()  # one batch: the same features
    np.testing.assert_allclose(np.concatenate([gen, ref]), expected, rtol=1e-5, atol=1e-6)
    assert kid.compute()["kid"] == K.kid_from_features(gen, ref, subsets=10)["kid"]
    assert kid.resample(np.array([0]))["kid"] == pytest.approx(kid.compute()["kid"], rel=1e-4, abs=1e-7)
    assert kid.weights_provenance() == fid.weights_provenance() and kid.config()["subsets"] == 10

"""talking_head.metrics.niqe: the MATLAB imresize port against hand-computed values, the AGGD fit against known
distributions, and NIQE behaviour with a pristine model fitted here.

These tests write a parameter file with the real keys and shapes (mu (1, 36), cov (36, 36),
gaussian_window (7, 7)) fitted on clean frames of the synthetic talking-head sample, at the registry's
destination ("niqe-pristine", unpinned for it). Agreement with BasicSR's own ``calculate_niqe`` on
BasicSR's real parameter file is tests/test_niqe_basicsr.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

import cv2
import numpy as np
import pytest

import weights_factory as factory
from talking_head.metrics.niqe import (
    NIQE, WEIGHTS_NAME, _aggd, fit_mvg, gaussian_window, matlab_imresize, niqe, niqe_features, to_y,
)
from talking_head.toolkit import weights as w
from talking_head.toolkit.media import read_video

pytestmark = pytest.mark.usefixtures("isolated_caches")


@pytest.fixture(scope="module")
def frames(shared_sample) -> np.ndarray:
    clip = shared_sample(speakers=1, clips=1, seconds=1.0, seed=0)[0]  # tests/conftest.py
    return read_video(clip.video, 25.0)  # (25, 512, 512, 3) uint8 RGB


@pytest.fixture(scope="module")
def pristine(frames) -> dict[str, np.ndarray]:
    """A pristine model (real keys and shapes) fitted on the block features of four clean frames."""
    window = gaussian_window()
    feats = np.concatenate([niqe_features(to_y(f).round(), window) for f in frames[[0, 8, 16, 24]]])
    mu, cov = fit_mvg(feats)
    assert mu.shape == (1, 36) and cov.shape == (36, 36) and window.shape == (7, 7)
    return {"mu_pris_param": mu, "cov_pris_param": cov, "gaussian_window": window}


@pytest.fixture
def params(pristine, monkeypatch) -> dict[str, np.ndarray]:
    """The model written where weights.load_numpy('niqe-pristine') reads (an isolated cache per test), with
    the registry entry unpinned for it (the pin is BasicSR's file: tests/test_niqe_basicsr.py)."""
    factory.place(monkeypatch, WEIGHTS_NAME, arrays=pristine)
    return pristine


# ------------------------------------------------------------------------------- MATLAB imresize
def test_imresize_half_of_a_ramp_matches_hand_computation():
    # scale 0.5 with antialiasing: kernel h(d) = 0.5*cubic(0.5*d) at d = +-0.5, 1.5, 2.5, 3.5 gives
    # weights 0.43359375, 0.11328125, -0.03515625, -0.01171875 (sum 1, all exact in binary).
    # Output 1 of x = 1..8 sits at u = 1.5 and reads x(-2..5), mirrored to x(3,2,1,1,2,3,4,5):
    # -0.01171875*3 - 0.03515625*2 + 0.11328125 + 0.43359375 + 0.43359375*2 + 0.11328125*3
    # - 0.03515625*4 - 0.01171875*5 = 1.44921875. Inside, a ramp is kept (u = 3.5, 5.5) except for the
    # mirrored end samples: 3.5 - 0.01171875*(1 - 0) and 5.5 - 0.01171875*(8 - 9); output 4 mirrors output 1.
    row = np.arange(1, 9, dtype=np.float32)[None, :]
    expected = np.array([[1.44921875, 3.48828125, 5.51171875, 7.55078125]])
    np.testing.assert_allclose(matlab_imresize(row, 0.5), expected, rtol=0, atol=1e-6)


def test_imresize_double_matches_hand_computation():
    # scale 2 (no antialiasing kernel): output 1 at u = 0.75 reads x(-1..2) -> x(2,1,1,2) with cubic
    # weights at d = 1.75, 0.75, -0.25, -1.25: -0.0234375, 0.2265625, 0.8671875, -0.0703125 -> 0.90625.
    # (MATLAB's imresize([1 2 3 4], 2) is commonly quoted as 0.9062 1.1797 1.7266 2.2500 ...)
    out = matlab_imresize(np.array([[1.0, 2.0, 3.0, 4.0]]), 2)
    expected = [0.90625, 1.1796875, 1.7265625, 2.25, 2.75, 3.2734375, 3.8203125, 4.09375]
    assert out.shape == (2, 8)
    np.testing.assert_allclose(out, np.array([expected, expected]), rtol=0, atol=1e-6)


def test_imresize_is_separable_keeps_constants_and_rounds_sizes_up():
    image = (10 * np.arange(1, 9)[:, None] + np.arange(1, 9)[None, :]).astype(np.float32)
    half = np.array([1.44921875, 3.48828125, 5.51171875, 7.55078125])
    np.testing.assert_allclose(matlab_imresize(image, 0.5), 10 * half[:, None] + half[None, :], atol=1e-5)
    constant = matlab_imresize(np.full((5, 7), 3.0), 0.5)
    assert constant.shape == (3, 4) and constant.dtype == np.float32  # ceil(5/2) x ceil(7/2), float32 like BasicSR
    np.testing.assert_allclose(constant, 3.0, atol=1e-6)
    colour = np.stack([image, 2 * image, image + 1], axis=-1)
    np.testing.assert_allclose(matlab_imresize(colour, 0.5)[..., 1], 2 * matlab_imresize(image, 0.5), atol=1e-5)


# ----------------------------------------------------------------------------------- AGGD fit
def test_aggd_fit_recovers_known_distributions():
    rng = np.random.default_rng(0)
    gauss = rng.normal(0, 2.0, 200_000).astype(np.float32)
    alpha, beta_l, beta_r = _aggd(gauss)
    # N(0, s^2) is a GGD with shape 2 and scale s*sqrt(2)
    assert abs(alpha - 2.0) < 0.05 and abs(beta_l - 2.0 * math.sqrt(2)) < 0.05 and abs(beta_r - beta_l) < 0.05
    alpha, beta_l, _ = _aggd(rng.laplace(0, 1.0, 200_000).astype(np.float32))
    assert abs(alpha - 1.0) < 0.05 and abs(beta_l - 1.0) < 0.05  # Laplace(b): shape 1, scale b


# ---------------------------------------------------------------------------------------- NIQE
def test_clean_frame_scores_better_than_degraded_copies(params, frames):
    clean = frames[12]  # not one of the four frames the model was fitted on
    blurred = cv2.GaussianBlur(clean, (0, 0), 3.0)
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    metric = NIQE()
    scores = metric.scores(np.stack([clean, blurred, noisy]))
    assert np.isfinite(scores).all()
    assert scores[0] < scores[1] and scores[0] < scores[2]
    assert scores[1] - scores[0] > 1.0 and scores[2] - scores[0] > 1.0  # heavy degradations, clear margins


def test_deterministic_and_streaming(params, frames):
    clip = frames[10:13]
    first = NIQE()
    first.update(clip[:2], reference=frames[20:22])
    first.update(clip[2])  # one (H, W, 3) frame, no reference
    second = NIQE()
    second.update(clip)
    assert np.array_equal(first.per_frame(), second.per_frame())  # bit-identical on recomputation
    result = first.compute()
    assert result["num_frames"] == 3 and result["num_nan_frames"] == 0
    assert result["niqe"] == pytest.approx(float(np.mean(second.per_frame())), abs=1e-12)
    assert result["niqe"] == pytest.approx(niqe(clip)["niqe"], abs=1e-12)
    assert "niqe_reference" in result and "niqe_reference" not in second.compute()
    first.reset()
    with pytest.raises(ValueError, match="before any update"):
        first.compute()


def test_block_grid_crop_border_and_luma(params, frames):
    y = to_y(frames[5])
    assert y.dtype == np.float32 and y.shape == (512, 512) and 16 <= y.min() and y.max() <= 235
    feats = niqe_features(y.round(), params["gaussian_window"])
    assert feats.shape == (25, 36)  # floor(512/96)^2 blocks, 18 features per scale
    cropped = niqe_features(y[16:-16, 16:-16].round(), params["gaussian_window"])
    assert cropped.shape == (25, 36) and not np.array_equal(cropped, feats)
    assert NIQE(crop_border=16).scores(frames[5])[0] != NIQE().scores(frames[5])[0]
    assert np.isfinite(NIQE(convert_to="gray").scores(frames[5])).all()


def test_flat_frame_is_nan_not_an_error(params):
    metric = NIQE()
    metric.update(np.full((2, 200, 200, 3), 128, np.uint8))  # every block flat: AGGD fits are undefined
    result = metric.compute()
    assert math.isnan(result["niqe"]) and result["num_nan_frames"] == 2


def test_provenance_and_config(params):
    metric = NIQE(crop_border=4)
    digest = hashlib.sha256(w.destination(WEIGHTS_NAME).read_bytes()).hexdigest()
    assert metric.weights_provenance() == {WEIGHTS_NAME: digest}
    cfg = metric.config()
    assert cfg["crop_border"] == 4 and cfg["convert_to"] == "y" and cfg["block_size"] == 96


def test_parameter_file_is_checked(monkeypatch):
    target = w.destination(WEIGHTS_NAME)
    with pytest.raises(w.WeightsMissingError, match="niqe_pris_params.npz"):
        NIQE()
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez(target, mu_pris_param=np.zeros((1, 36)), cov_pris_param=np.eye(36), gaussian_window=gaussian_window())
    with pytest.raises(w.WeightsCorruptError, match="wrong sha256"):  # not BasicSR's file
        NIQE()
    monkeypatch.setitem(w.REGISTRY, WEIGHTS_NAME, dataclasses.replace(w.REGISTRY[WEIGHTS_NAME], sha256=None, size=None))
    np.savez(target, mu_pris_param=np.zeros((1, 36)), cov_pris_param=np.eye(36))
    with pytest.raises(w.WeightsCorruptError, match="gaussian_window"):
        NIQE()
    np.savez(target, mu_pris_param=np.zeros((1, 18)), cov_pris_param=np.eye(36), gaussian_window=gaussian_window())
    with pytest.raises(w.WeightsCorruptError, match="shapes"):
        NIQE()


@pytest.mark.parametrize(
    "frames_in, message",
    [
        (np.zeros((1, 64, 300, 3), np.uint8), "smaller than one 96x96"),
        (np.zeros((1, 128, 128), np.uint8), r"\(T, H, W, 3\)"),
        (np.zeros((0, 128, 128, 3), np.uint8), "empty"),
        (np.zeros((1, 128, 128, 3), np.int64), "dtype"),
    ],
)
def test_bad_input_raises_value_error(params, frames_in, message):
    with pytest.raises(ValueError, match=message):
        NIQE().update(frames_in)


def test_bad_options_raise_value_error(params):
    with pytest.raises(ValueError, match="crop_border"):
        NIQE(crop_border=-1)
    with pytest.raises(ValueError, match="convert_to"):
        NIQE(convert_to="lab")
    with pytest.raises(ValueError, match="removes the whole"):
        NIQE(crop_border=100).update(np.zeros((1, 150, 150, 3), np.uint8))

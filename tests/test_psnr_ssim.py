"""talking_head.metrics.psnr_ssim against skimage (the reference implementation) and ATVGnet's evaluation code.

Inputs are crops of a real photo (skimage's astronaut) with realistic degradations (blur, noise,
JPEG, a brightness shift), so the SSIM maps are far from trivial.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from skimage import data
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from talking_head.metrics.psnr_ssim import PRESETS, PSNRSSIM, psnr, psnr_ssim, ssim, to_luma

TOL = 1e-6  # the brief's bound; observed differences are ~1e-15


def _clip(frames: int = 5, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """(reference, generated) RGB uint8 clips: sliding crops of a photo and degraded copies."""
    photo = data.astronaut()
    rng = np.random.default_rng(7)
    ref, gen = [], []
    for t in range(frames):
        crop = np.ascontiguousarray(photo[60 + 7 * t:60 + 7 * t + size, 150 + 5 * t:150 + 5 * t + size + 16])
        kind = t % 4
        if kind == 0:
            out = cv2.GaussianBlur(crop, (0, 0), 1.2)
        elif kind == 1:
            out = np.clip(crop + rng.normal(0, 12, crop.shape), 0, 255).astype(np.uint8)
        elif kind == 2:
            out = cv2.imdecode(cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 20])[1], cv2.IMREAD_UNCHANGED)
        else:
            out = np.clip(crop.astype(int) + 9, 0, 255).astype(np.uint8)
        ref.append(crop)
        gen.append(out)
    return np.stack(ref), np.stack(gen)


def _sk_ssim(g: np.ndarray, r: np.ndarray, **kw) -> float:
    return structural_similarity(g, r, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, **kw)


def test_default_equals_skimage_wang2004_per_frame_and_mean():
    ref, gen = _clip(frames=9)  # more than one internal chunk of 8 frames
    metric = PSNRSSIM()
    metric.update(gen, ref)
    frames = metric.per_frame()
    sk_ssim = np.array([_sk_ssim(g, r, channel_axis=-1) for g, r in zip(gen, ref)])
    sk_psnr = np.array([peak_signal_noise_ratio(r, g, data_range=255) for g, r in zip(gen, ref)])
    assert np.abs(frames["ssim"] - sk_ssim).max() < TOL
    assert np.abs(frames["psnr"] - sk_psnr).max() < TOL
    result = metric.compute()
    assert result["num_frames"] == 9
    assert abs(result["ssim"] - sk_ssim.mean()) < TOL
    assert abs(result["psnr"] - sk_psnr.mean()) < TOL
    pooled_mse = np.mean([mean_squared_error(r, g) for g, r in zip(gen, ref)])
    assert abs(result["psnr_pooled_mse"] - 10 * math.log10(255 ** 2 / pooled_mse)) < TOL
    assert result["psnr_pooled_mse"] != pytest.approx(result["psnr"], abs=1e-3)  # the two poolings differ
    assert 0.3 < result["ssim"] < 0.99 and 15 < result["psnr"] < 45  # a meaningful, non-trivial pair


@pytest.mark.parametrize("color", ["y", "gray"])
def test_luma_options_equal_skimage_on_the_converted_channel(color):
    ref, gen = _clip(frames=3)
    if color == "gray":
        conv = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in np.concatenate([ref, gen])]
    else:  # MATLAB rgb2ycbcr luma, written out independently of the module
        conv = [16 + (65.481 * f[..., 0] + 128.553 * f[..., 1] + 24.966 * f[..., 2]) / 255 for f in
                np.concatenate([ref, gen]).astype(np.float64)]
    ref_l, gen_l = conv[:3], conv[3:]
    result = psnr_ssim(gen, ref, psnr_color=color, ssim_color=color)
    expected_ssim = np.mean([_sk_ssim(g, r) for g, r in zip(gen_l, ref_l)])
    expected_psnr = np.mean([peak_signal_noise_ratio(r, g, data_range=255) for g, r in zip(gen_l, ref_l)])
    assert abs(result["ssim"] - expected_ssim) < TOL
    assert abs(result["psnr"] - expected_psnr) < TOL
    assert to_luma(gen, color).shape == gen.shape[:3]


def test_uniform_window_and_sample_covariance_equal_skimage_defaults():
    ref, gen = _clip(frames=2)
    value = ssim(gen, ref, ssim_window="uniform", ssim_sample_covariance=True)
    expected = np.mean([structural_similarity(g, r, channel_axis=-1) for g, r in zip(gen, ref)])  # 7x7, N-1, 255
    assert abs(value - expected) < TOL


def test_float_frames_with_their_data_range():
    ref, gen = _clip(frames=2)
    ref_f, gen_f = ref / 255.0, gen / 255.0
    result = psnr_ssim(gen_f, ref_f, data_range=1.0)
    assert abs(result["ssim"] - np.mean([structural_similarity(g, r, gaussian_weights=True, sigma=1.5,
                                                               use_sample_covariance=False, data_range=1.0,
                                                               channel_axis=-1) for g, r in zip(gen_f, ref_f)])) < TOL
    assert abs(result["psnr"] - psnr_ssim(gen, ref)["psnr"]) < TOL


def _atvgnet_reference(gen_rgb: np.ndarray, ref_rgb: np.ndarray) -> tuple[float, float]:
    """ATVGnet evaluation_matrix.py compare_ssim / psnr_f, step by step on cv2-style BGR frames."""
    ssims, psnrs = [], []
    for g, r in zip(gen_rgb, ref_rgb):
        f_i = cv2.resize(g[..., ::-1].copy(), (256, 256), interpolation=cv2.INTER_AREA)
        r_i = cv2.resize(r[..., ::-1].copy(), (256, 256), interpolation=cv2.INTER_AREA)
        ssims.append(structural_similarity(f_i, r_i, channel_axis=2))  # old compare_ssim(multichannel=True)
        f_g, r_g = cv2.cvtColor(f_i, cv2.COLOR_BGR2GRAY), cv2.cvtColor(r_i, cv2.COLOR_BGR2GRAY)
        mse = np.mean((f_g - r_g) ** 2)  # uint8 arithmetic, as in the original
        psnrs.append(100 if mse == 0 else 20 * math.log10(255.0 / math.sqrt(mse)))
    return float(np.mean(ssims)), float(np.mean(psnrs))


def test_atvgnet_preset_reproduces_the_reference_script():
    ref, gen = _clip(frames=4)
    expected_ssim, expected_psnr = _atvgnet_reference(gen, ref)
    result = psnr_ssim(gen, ref, "atvgnet")
    assert abs(result["ssim"] - expected_ssim) < TOL
    assert abs(result["psnr"] - expected_psnr) < TOL
    assert psnr(ref, ref, "atvgnet") == 100.0  # identical frames


def test_atvgnet_uint8_wraparound_is_reproduced_and_can_be_switched_off():
    # A uniform error of 16 grey levels: 16**2 = 256 wraps to 0 in uint8, so ATVGnet reports 100 dB.
    ref = np.full((1, 64, 64, 3), 100, np.uint8)
    gen = ref + np.uint8(16)
    assert _atvgnet_reference(gen, ref)[1] == 100
    assert psnr(gen, ref, "atvgnet") == 100.0
    honest = psnr(gen, ref, "atvgnet", psnr_uint8_wraparound=False)
    assert abs(honest - 10 * math.log10(255 ** 2 / 256)) < TOL


def test_identical_frames():
    ref, _ = _clip(frames=2)
    result = psnr_ssim(ref, ref)
    assert result["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert result["psnr"] == math.inf and result["psnr_pooled_mse"] == math.inf  # as skimage
    assert psnr(ref, ref, psnr_identical=100.0) == 100.0


def test_streaming_equals_one_shot_and_reset():
    ref, gen = _clip(frames=6)
    metric = PSNRSSIM()
    metric.update(gen[:2], ref[:2])
    metric.update(gen[2], ref[2])  # a single (H, W, 3) frame
    metric.update(gen[3:], ref[3:])
    streamed = metric.compute()
    one_shot = psnr_ssim(gen, ref)
    assert streamed["num_frames"] == 6
    for key in ("psnr", "psnr_pooled_mse", "ssim"):
        assert abs(streamed[key] - one_shot[key]) < 1e-12
    assert abs(ssim(gen, ref) - one_shot["ssim"]) < 1e-12
    assert abs(psnr(gen, ref, pooled=True) - one_shot["psnr_pooled_mse"]) < 1e-12
    metric.reset()
    with pytest.raises(ValueError, match="before any update"):
        metric.compute()


def test_config_names_every_knob():
    metric = PSNRSSIM("atvgnet", resize=128)
    cfg = metric.config()
    assert cfg["preset"] == "atvgnet" and cfg["resize"] == 128 and cfg["psnr_color"] == "gray"
    assert cfg["ssim_window"] == "uniform" and cfg["ssim_window_size"] == 7 and cfg["psnr_uint8_wraparound"] is True
    assert PSNRSSIM().config()["ssim_window_size"] == 11
    assert metric.weights_provenance() == {}
    assert set(PRESETS) >= {"wang2004", "atvgnet"}


@pytest.mark.parametrize(
    "gen, ref, message",
    [
        (np.zeros((2, 32, 32, 3), np.uint8), np.zeros((2, 32, 30, 3), np.uint8), "same shape"),
        (np.zeros((2, 32, 32), np.uint8), np.zeros((2, 32, 32), np.uint8), r"\(T, H, W, 3\)"),
        (np.zeros((0, 32, 32, 3), np.uint8), np.zeros((0, 32, 32, 3), np.uint8), "empty"),
        (np.zeros((1, 32, 32, 3), np.int32), np.zeros((1, 32, 32, 3), np.int32), "dtype"),
        (np.zeros((1, 32, 32, 3), np.uint8), np.zeros((1, 32, 32, 3), np.float32), "same dtype"),
        (np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 8, 3), np.uint8), "smaller than the 11x11"),
    ],
)
def test_bad_input_raises_value_error(gen, ref, message):
    with pytest.raises(ValueError, match=message):
        PSNRSSIM().update(gen, ref)


def test_bad_options_raise_value_error():
    with pytest.raises(ValueError, match="unknown preset"):
        PSNRSSIM("nope")
    with pytest.raises(ValueError, match="unknown PSNR/SSIM option"):
        PSNRSSIM(sigma=2.0)
    with pytest.raises(ValueError, match="psnr_color"):
        PSNRSSIM(psnr_color="lab")
    with pytest.raises(ValueError, match="needs uint8"):
        psnr(np.zeros((1, 16, 16, 3), np.float32), np.ones((1, 16, 16, 3), np.float32), "atvgnet", resize=None)

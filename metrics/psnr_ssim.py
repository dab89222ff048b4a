"""PSNR and SSIM between paired generated and reference frames, with every convention explicit.

One obvious entry point::

    from talking_head.metrics.psnr_ssim import PSNRSSIM, psnr_ssim
    metric = PSNRSSIM()                      # preset "wang2004" (the defaults below)
    for gen, ref in pairs:                   # (T, H, W, 3) uint8 RGB each, same shape
        metric.update(gen, ref)
    metric.compute()   # {"psnr": ..., "psnr_pooled_mse": ..., "ssim": ..., "num_frames": ...}

    psnr_ssim(gen, ref)                      # the same for one pair of clips

Conventions of the default preset ``"wang2004"`` (each one is a knob of :class:`PSNRSSIMConfig`):

* Input: RGB frames, ``(T, H, W, 3)`` or one ``(H, W, 3)`` frame, uint8 in [0, 255]
  (``data_range=255``). Float frames are accepted when ``data_range`` matches their scale.
* PSNR: ``10 log10(data_range^2 / MSE)`` per frame, MSE over all pixels and channels
  (``skimage.metrics.peak_signal_noise_ratio``), then the **mean over frames** (``"psnr"``).
  ``"psnr_pooled_mse"`` is the PSNR of the MSE averaged over all frames instead. An identical
  frame has PSNR ``+inf`` (as skimage), so one identical frame makes the mean ``inf``;
  ``psnr_identical`` replaces it (ATVGnet uses 100).
* SSIM: Wang et al. 2004 as skimage's ``structural_similarity(..., gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1)`` computes it:
  gaussian window sigma 1.5 truncated at 3.5 sigma (11x11), scipy ``reflect`` borders, K1 0.01,
  K2 0.03, population covariances, map cropped by the window radius, mean per channel, then the
  mean over channels; then the mean over frames. Computed in float64.
* ``color``: ``"rgb"`` (each channel), ``"y"`` (MATLAB ``rgb2ycbcr`` luma, BT.601 studio swing
  16-235, unrounded float as BasicSR's ``to_y_channel``) or ``"gray"`` (OpenCV ``RGB2GRAY``,
  0.299/0.587/0.114 with OpenCV's fixed-point rounding for uint8).

Preset ``"atvgnet"`` reproduces ``compare_ssim`` / ``psnr_f`` of ATVGnet's
``evaluation_matrix.py`` (Chen et al., CVPR 2019): both frames ``cv2.resize`` to 256x256 with
``INTER_AREA``; SSIM on the colour frames with skimage's old defaults (7x7 uniform window, sample
covariance); PSNR on ``cv2.cvtColor(..., BGR2GRAY)`` uint8 frames as ``20 log10(255/sqrt(mse))``,
100 when ``mse == 0``. Its MSE is computed **on uint8 arrays**, so the difference and its square
wrap modulo 256 (``np.mean((img1 - img2) ** 2)`` on uint8); the preset keeps that
(``psnr_uint8_wraparound=True``) because the published numbers were produced that way.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from scipy import ndimage

from talking_head.metrics.base import PerFrameMeans
from talking_head.toolkit.frames import as_frames

__all__ = [
    "DATA_RANGE_UINT8", "SSIM_K1", "SSIM_K2", "SSIM_SIGMA", "SSIM_TRUNCATE", "SSIM_UNIFORM_WIN_SIZE",
    "MATLAB_Y_WEIGHTS", "MATLAB_Y_OFFSET", "PRESETS", "PSNRSSIMConfig", "PSNRSSIM", "psnr", "ssim", "psnr_ssim",
    "to_luma",
]

Color = Literal["rgb", "y", "gray"]

# ---------------------------------------------------------------------------------------- constants
DATA_RANGE_UINT8 = 255.0  # peak value of 8-bit frames
SSIM_K1 = 0.01  # Wang et al. 2004 (and skimage / torchmetrics defaults)
SSIM_K2 = 0.03  # Wang et al. 2004
SSIM_SIGMA = 1.5  # Wang et al. 2004 gaussian window
SSIM_TRUNCATE = 3.5  # skimage structural_similarity: radius int(3.5 * 1.5 + 0.5) = 5 -> 11x11 window
SSIM_UNIFORM_WIN_SIZE = 7  # skimage default window when gaussian_weights=False (old compare_ssim too)
MATLAB_Y_WEIGHTS = (65.481, 128.553, 24.966)  # MATLAB rgb2ycbcr Y row (BT.601, studio swing), as BasicSR
MATLAB_Y_OFFSET = 16.0  # rgb2ycbcr: Y in [16, 235] for inputs in [0, 255]
ATVGNET_PSNR_IDENTICAL = 100.0  # ATVGnet psnr_f returns 100 when mse == 0
ATVGNET_SIZE = 256  # ATVGnet resizes both frames to 256x256 (cv2.INTER_AREA) before SSIM / PSNR

_CHUNK = 8  # frames per vectorised SSIM pass: bounds the float64 temporaries (~10 arrays per frame)


@dataclass(frozen=True)
class PSNRSSIMConfig:
    """Every knob that changes a PSNR / SSIM number. See the module docstring for the meaning."""

    psnr_color: Color = "rgb"
    ssim_color: Color = "rgb"
    data_range: float = DATA_RANGE_UINT8
    psnr_identical: float = math.inf  # PSNR reported for a frame (or pool) with MSE == 0
    psnr_uint8_wraparound: bool = False  # MSE on uint8 arrays with modulo-256 wraparound (ATVGnet)
    ssim_window: Literal["gaussian", "uniform"] = "gaussian"
    ssim_sigma: float = SSIM_SIGMA  # gaussian window only
    ssim_win_size: int | None = None  # None: 2*int(3.5*sigma+0.5)+1 (gaussian) or 7 (uniform)
    ssim_k1: float = SSIM_K1
    ssim_k2: float = SSIM_K2
    ssim_sample_covariance: bool = False  # True: covariances normalised by N-1 (skimage's default)
    resize: int | None = None  # square side both frames are resized to first (cv2.INTER_AREA); None: no resize

    def __post_init__(self) -> None:
        for name in ("psnr_color", "ssim_color"):
            if getattr(self, name) not in ("rgb", "y", "gray"):
                raise ValueError(f"{name} must be 'rgb', 'y' or 'gray', not {getattr(self, name)!r}")
        if self.ssim_window not in ("gaussian", "uniform"):
            raise ValueError(f"ssim_window must be 'gaussian' or 'uniform', not {self.ssim_window!r}")
        if not self.data_range > 0:
            raise ValueError(f"data_range must be positive, got {self.data_range}")
        if self.ssim_sigma <= 0 or self.ssim_k1 < 0 or self.ssim_k2 < 0:
            raise ValueError("ssim_sigma must be positive and ssim_k1 / ssim_k2 non-negative")
        if self.ssim_win_size is not None and (self.ssim_win_size < 1 or self.ssim_win_size % 2 == 0):
            raise ValueError(f"ssim_win_size must be a positive odd number, got {self.ssim_win_size}")
        if self.resize is not None and self.resize < 1:
            raise ValueError(f"resize must be a positive size or None, got {self.resize}")

    @property
    def window_size(self) -> int:
        """The SSIM window side actually used (skimage's rule when ``ssim_win_size`` is None)."""
        if self.ssim_win_size is not None:
            return self.ssim_win_size
        if self.ssim_window == "gaussian":
            return 2 * int(SSIM_TRUNCATE * self.ssim_sigma + 0.5) + 1
        return SSIM_UNIFORM_WIN_SIZE


PRESETS: dict[str, PSNRSSIMConfig] = {
    "wang2004": PSNRSSIMConfig(),
    "atvgnet": PSNRSSIMConfig(
        psnr_color="gray", ssim_color="rgb", psnr_identical=ATVGNET_PSNR_IDENTICAL, psnr_uint8_wraparound=True,
        ssim_window="uniform", ssim_sample_covariance=True, resize=ATVGNET_SIZE,
    ),
}


def _config(preset: str | PSNRSSIMConfig, overrides: dict[str, Any]) -> PSNRSSIMConfig:
    if isinstance(preset, PSNRSSIMConfig):
        base = preset
    elif preset in PRESETS:
        base = PRESETS[preset]
    else:
        raise ValueError(f"unknown preset {preset!r}; known presets: {', '.join(PRESETS)}")
    unknown = set(overrides) - {f.name for f in dataclasses.fields(PSNRSSIMConfig)}
    if unknown:
        raise ValueError(f"unknown PSNR/SSIM option(s): {', '.join(sorted(unknown))}")
    return dataclasses.replace(base, **overrides)


# ------------------------------------------------------------------------------------------- input
def _pair(generated: Any, reference: Any) -> tuple[np.ndarray, np.ndarray]:
    gen, ref = as_frames(generated, "generated"), as_frames(reference, "reference")
    if gen.shape != ref.shape:
        raise ValueError(f"generated and reference must have the same shape, got {gen.shape} and {ref.shape}")
    if gen.dtype != ref.dtype:
        raise ValueError(f"generated and reference must have the same dtype, got {gen.dtype} and {ref.dtype}")
    return gen, ref


def _resize(frames: np.ndarray, size: int) -> np.ndarray:
    # ATVGnet: cv2.resize(img, (256, 256), interpolation=cv2.INTER_AREA), frame by frame
    if frames.shape[1:3] == (size, size):
        return frames
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])


def to_luma(frames: np.ndarray, color: Color, data_range: float = DATA_RANGE_UINT8) -> np.ndarray:
    """Channel selection for the metrics: (T, H, W, 3) RGB -> (T, H, W, 3) or (T, H, W).

    ``"rgb"`` returns the frames unchanged. ``"y"``: MATLAB ``rgb2ycbcr`` Y,
    ``16 + x/R . (65.481, 128.553, 24.966)`` rescaled to the input range R (float64, not rounded).
    ``"gray"``: OpenCV ``cvtColor(RGB2GRAY)`` (uint8 stays uint8 with OpenCV's rounding; floats in float32).
    """
    if color == "rgb":
        return frames
    if color == "y":
        scaled = frames.astype(np.float64) / data_range
        return (scaled @ np.asarray(MATLAB_Y_WEIGHTS) + MATLAB_Y_OFFSET) * (data_range / DATA_RANGE_UINT8)
    if color == "gray":
        src = frames if frames.dtype == np.uint8 else frames.astype(np.float32)
        t, h, w, _ = src.shape
        # cvtColor is per pixel, so all frames go through in one call as a (T*H, W, 3) image
        return cv2.cvtColor(np.ascontiguousarray(src).reshape(t * h, w, 3), cv2.COLOR_RGB2GRAY).reshape(t, h, w)
    raise ValueError(f"color must be 'rgb', 'y' or 'gray', not {color!r}")


# ------------------------------------------------------------------------------------------ kernels
def _frame_mse(gen: np.ndarray, ref: np.ndarray, wraparound: bool) -> np.ndarray:
    """MSE per frame over all remaining axes (pixels, channels), float64."""
    axes = tuple(range(1, gen.ndim))
    if wraparound:
        if gen.dtype != np.uint8:
            raise ValueError("psnr_uint8_wraparound needs uint8 frames (it reproduces uint8 arithmetic)")
        diff = gen - ref  # uint8: wraps modulo 256, as the reference's np.mean((img1 - img2) ** 2)
        return np.mean(diff * diff, axis=axes, dtype=np.float64)  # the square wraps too (uint8 * uint8)
    diff = gen.astype(np.float64) - ref.astype(np.float64)
    return np.mean(diff * diff, axis=axes)


def _psnr_from_mse(mse: np.ndarray, data_range: float, identical: float) -> np.ndarray:
    mse = np.asarray(mse, dtype=np.float64)
    with np.errstate(divide="ignore"):
        value = 10.0 * np.log10((data_range * data_range) / mse)
    return np.where(mse == 0, identical, value)


def _ssim_frames(gen: np.ndarray, ref: np.ndarray, cfg: PSNRSSIMConfig) -> np.ndarray:
    """SSIM per frame for (T, H, W) or (T, H, W, C) arrays, vectorised over frames (and channels).

    The window only runs over the two spatial axes (sigma / size 0 or 1 on the others, which scipy
    skips), so each frame and channel is filtered exactly as skimage filters a single 2-D image.
    """
    win = cfg.window_size
    h, w = gen.shape[1:3]
    if h < win or w < win:
        raise ValueError(f"frames of {h}x{w} are smaller than the {win}x{win} SSIM window")
    spatial = [0.0] * gen.ndim
    spatial[1] = spatial[2] = 1.0
    if cfg.ssim_window == "gaussian":
        sigma = [s * cfg.ssim_sigma for s in spatial]

        # skimage always truncates at 3.5 sigma; an explicit win_size only sets the crop and N
        def smooth(a: np.ndarray) -> np.ndarray:
            return ndimage.gaussian_filter(a, sigma=sigma, mode="reflect", truncate=SSIM_TRUNCATE)
    else:
        size = [int(s * (win - 1)) + 1 for s in spatial]  # win on H, W; 1 (skipped) elsewhere

        def smooth(a: np.ndarray) -> np.ndarray:
            return ndimage.uniform_filter(a, size=size, mode="reflect")

    x = gen.astype(np.float64)
    y = ref.astype(np.float64)
    n = win ** 2
    cov_norm = n / (n - 1) if cfg.ssim_sample_covariance else 1.0
    ux, uy = smooth(x), smooth(y)
    vx = cov_norm * (smooth(x * x) - ux * ux)
    vy = cov_norm * (smooth(y * y) - uy * uy)
    vxy = cov_norm * (smooth(x * y) - ux * uy)
    c1 = (cfg.ssim_k1 * cfg.data_range) ** 2
    c2 = (cfg.ssim_k2 * cfg.data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    s = s[:, pad:h - pad, pad:w - pad]  # skimage crops the window radius (border values are biased)
    per_channel = s.mean(axis=(1, 2), dtype=np.float64)  # (T,) or (T, C)
    return per_channel if per_channel.ndim == 1 else per_channel.mean(axis=1)


# ------------------------------------------------------------------------------------------ metric
class PSNRSSIM:
    """Streaming PSNR and SSIM over paired frames (mean over all frames of all updates).

    ``update(generated, reference)`` takes two clips of the same shape, RGB, (T, H, W, 3) or
    (H, W, 3), uint8 [0, 255] by default. ``compute()`` returns ``psnr`` (mean per-frame PSNR, dB),
    ``psnr_pooled_mse`` (PSNR of the mean MSE over all frames), ``ssim`` (mean per-frame SSIM) and
    ``num_frames``.
    """

    def __init__(self, preset: str | PSNRSSIMConfig = "wang2004", **overrides: Any) -> None:
        self.preset = preset if isinstance(preset, str) else "custom"
        self.cfg = _config(preset, overrides)
        self.reset()

    def reset(self) -> None:
        """Forget every frame seen so far."""
        self._mse: list[np.ndarray] = []
        self._ssim: list[np.ndarray] = []

    def update(self, generated: Any, reference: Any) -> None:
        """Add a batch of paired frames (same shape and dtype)."""
        gen, ref = _pair(generated, reference)
        cfg = self.cfg
        if cfg.resize is not None:
            gen, ref = _resize(gen, cfg.resize), _resize(ref, cfg.resize)
        for start in range(0, len(gen), _CHUNK):
            g, r = gen[start:start + _CHUNK], ref[start:start + _CHUNK]
            self._mse.append(_frame_mse(to_luma(g, cfg.psnr_color, cfg.data_range),
                                        to_luma(r, cfg.psnr_color, cfg.data_range), cfg.psnr_uint8_wraparound))
            self._ssim.append(_ssim_frames(to_luma(g, cfg.ssim_color, cfg.data_range),
                                           to_luma(r, cfg.ssim_color, cfg.data_range), cfg))

    def per_frame(self) -> dict[str, np.ndarray]:
        """Per-frame ``psnr``, ``mse`` and ``ssim`` (float64 arrays, in update order)."""
        mse = np.concatenate(self._mse) if self._mse else np.zeros(0)
        return {
            "psnr": _psnr_from_mse(mse, self.cfg.data_range, self.cfg.psnr_identical),
            "mse": mse,
            "ssim": np.concatenate(self._ssim) if self._ssim else np.zeros(0),
        }

    def compute(self) -> dict[str, float]:
        """Aggregate over every frame so far; raises ValueError before the first update."""
        if not self._mse:
            raise ValueError("PSNRSSIM.compute() called before any update()")
        frames = self.per_frame()
        pooled = _psnr_from_mse(frames["mse"].mean(), self.cfg.data_range, self.cfg.psnr_identical)
        return {
            "psnr": float(frames["psnr"].mean()),
            "psnr_pooled_mse": float(pooled),
            "ssim": float(frames["ssim"].mean()),
            "num_frames": int(frames["mse"].size),
        }

    def config(self) -> dict[str, Any]:
        """Every setting that changes the numbers (for result provenance)."""
        return {
            "metric": "psnr_ssim",
            "preset": self.preset,
            **dataclasses.asdict(self.cfg),
            "ssim_window_size": self.cfg.window_size,
            "input": "RGB frames (T, H, W, 3); uint8 [0, 255] or float in [0, data_range]",
            "psnr_aggregation": "mean over frames of per-frame PSNR (psnr); PSNR of mean MSE (psnr_pooled_mse)",
            "ssim_aggregation": "per frame: mean over channels of the cropped SSIM map mean; then mean over frames",
        }

    def weights_provenance(self) -> dict[str, str]:
        """No pretrained weights are involved."""
        return {}


# -------------------------------------------------------------------------------------- functional
def psnr_ssim(generated: Any, reference: Any, preset: str | PSNRSSIMConfig = "wang2004", **overrides: Any) -> dict[str, float]:
    """One-off :class:`PSNRSSIM` on a single pair of clips (or frames)."""
    metric = PSNRSSIM(preset, **overrides)
    metric.update(generated, reference)
    return metric.compute()


def psnr(generated: Any, reference: Any, preset: str | PSNRSSIMConfig = "wang2004", pooled: bool = False,
         **overrides: Any) -> float:
    """Mean per-frame PSNR in dB (``pooled=True``: PSNR of the mean MSE), without computing SSIM."""
    cfg = _config(preset, overrides)
    gen, ref = _pair(generated, reference)
    if cfg.resize is not None:
        gen, ref = _resize(gen, cfg.resize), _resize(ref, cfg.resize)
    mse = _frame_mse(to_luma(gen, cfg.psnr_color, cfg.data_range), to_luma(ref, cfg.psnr_color, cfg.data_range),
                     cfg.psnr_uint8_wraparound)
    if pooled:
        return float(_psnr_from_mse(mse.mean(), cfg.data_range, cfg.psnr_identical))
    return float(_psnr_from_mse(mse, cfg.data_range, cfg.psnr_identical).mean())


def ssim(generated: Any, reference: Any, preset: str | PSNRSSIMConfig = "wang2004", **overrides: Any) -> float:
    """Mean per-frame SSIM, without computing PSNR."""
    cfg = _config(preset, overrides)
    gen, ref = _pair(generated, reference)
    if cfg.resize is not None:
        gen, ref = _resize(gen, cfg.resize), _resize(ref, cfg.resize)
    values = [
        _ssim_frames(to_luma(gen[s:s + _CHUNK], cfg.ssim_color, cfg.data_range),
                     to_luma(ref[s:s + _CHUNK], cfg.ssim_color, cfg.data_range), cfg)
        for s in range(0, len(gen), _CHUNK)
    ]
    return float(np.concatenate(values).mean())


class PSNRSSIMVideos(PerFrameMeans):
    """PSNR and SSIM for the runner: per video the mean over its frames (and its mean MSE), overall
    :meth:`PSNRSSIM.compute` over every frame of every video."""

    name, direction = "psnr_ssim", "higher"
    accumulators = ("_mse", "_ssim")

    def __init__(self, device: str = "cpu", preset: str | PSNRSSIMConfig = "wang2004") -> None:
        super().__init__(PSNRSSIM(preset))

    def per_frame(self) -> dict[str, Any]:
        return self.metric.per_frame()

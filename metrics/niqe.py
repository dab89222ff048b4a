"""NIQE (Mittal et al. 2013, "Making a completely blind image quality analyzer") as BasicSR computes it.

No reference is needed; lower is better (more natural). One obvious entry point::

    from talking_head.metrics.niqe import NIQE, niqe
    metric = NIQE()                       # pristine model from the registry ("niqe-pristine")
    for gen in clips:                     # (T, H, W, 3) uint8 RGB
        metric.update(gen)                # update(gen, ref) also scores the reference frames
    metric.compute()                      # {"niqe": mean over frames, "num_frames": ...}

    niqe(frames)                          # the same for one clip

Per frame, following BasicSR ``basicsr/metrics/niqe.py::calculate_niqe`` (its docstring:
"could produce almost the same results as the official MATLAB codes" of niqe_release.zip),
including its float32 arithmetic:

1. ``convert_to="y"``: luma of MATLAB ``rgb2ycbcr`` (BT.601 studio swing:
   ``16 + (65.481 R + 128.553 G + 24.966 B) / 255``) computed like BasicSR's ``to_y_channel``
   (float32 in, float64 dot, back to float32). ``"gray"``: OpenCV ``BGR2GRAY`` of ``x / 255``
   times 255, also as BasicSR.
2. Remove ``crop_border`` pixels on each side, then **round** to integers (BasicSR: "round is
   necessary for being consistent with MATLAB's result").
3. Keep the top-left ``floor(H/96)*96 x floor(W/96)*96`` region (``computequality.m``).
4. For each of two scales: MSCN coefficients ``(I - mu) / (sigma + 1)`` with ``mu``, ``sigma``
   from the 7x7 gaussian window of the parameter file (MATLAB ``fspecial('gaussian', 7, 7/6)``),
   borders replicated (``imfilter(..., 'replicate')`` = scipy ``mode='nearest'``); split into
   non-overlapping blocks (96x96 at scale 1, 48x48 at scale 2), column by column; per block
   18 features: the AGGD fit (moment matching over the shape grid ``0.2:0.001:10``) of the
   coefficients -> (alpha, mean of the two betas), and for each of the four neighbour products
   (shifts (0,1), (1,0), (1,1), (1,-1), circular) -> (alpha, AGGD mean, beta_left, beta_right).
   Between scales the image is halved by MATLAB's ``imresize(I, 0.5)`` (bicubic with
   antialiasing), ported below as :func:`matlab_imresize` and applied to ``I / 255`` as BasicSR does,
   in the same float32 torch operations (a sum in another order can flip an AGGD grid choice).
5. Fit a Gaussian to the 36-d block features (``nanmean``, covariance of the NaN-free rows) and
   return ``sqrt((mu_p - mu_d) pinv((S_p + S_d) / 2) (mu_p - mu_d)^T)`` against the pristine
   model ``mu_pris_param`` (1, 36), ``cov_pris_param`` (36, 36).

A clip's NIQE is the mean of its frames' NIQE. Blocks without negative or positive
coefficients (flat areas) give NaN features, dropped as in BasicSR; a frame whose blocks are all
flat scores NaN.

The pristine parameters are BasicSR's ``niqe_pris_params.npz`` (registry ``niqe-pristine``, pinned to
the file of the basicsr 1.4.2 source distribution, loaded with ``weights.load_numpy``), converted by
BasicSR from the MATLAB release's ``modelparameters.mat``. With that file, per-frame NIQE equals
BasicSR's own ``calculate_niqe`` (tests/test_niqe_basicsr.py runs both on the sample's frames). MATLAB's newer built-in ``niqe()`` (Image Processing Toolbox) uses a
different model and is not what is reproduced here.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal, Optional

import cv2
import numpy as np
import torch
from scipy import ndimage
from scipy.special import gamma

from talking_head.metrics.base import GENERATED_FRAMES, Chunk, PerFrameMeans, VideoInfo, finite_mean
from talking_head.metrics.reference_cache import ReferenceCache
from talking_head.toolkit.frames import as_frames
from talking_head.toolkit import weights

__all__ = [
    "BLOCK_SIZE", "NUM_SCALES", "SHIFTS", "GAMMA_GRID", "WINDOW_SIZE", "WINDOW_SIGMA", "PARAM_KEYS", "FEATURE_DIM",
    "WEIGHTS_NAME", "matlab_imresize", "gaussian_window", "to_y", "niqe_features", "fit_mvg", "niqe_score",
    "NIQE", "niqe",
]

# ---------------------------------------------------------------------------------------- constants
BLOCK_SIZE = 96  # computequality.m: blocksizerow = blocksizecol = 96, no overlap
NUM_SCALES = 2  # computequality.m: scalenum = 2
SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # computefeature.m: circshift offsets of the neighbour products
GAMMA_GRID = np.arange(0.2, 10.001, 0.001)  # estimateaggdparam.m: gam = 0.2:0.001:10 (9801 values)
WINDOW_SIZE = 7  # fspecial('gaussian', 7, 7/6)
WINDOW_SIGMA = 7 / 6
FEATURE_DIM = 36  # 18 features per scale
PARAM_KEYS = ("mu_pris_param", "cov_pris_param", "gaussian_window")  # keys of niqe_pris_params.npz
Y_WEIGHTS_BGR = (24.966, 128.553, 65.481)  # MATLAB rgb2ycbcr Y row in BasicSR's BGR order
Y_OFFSET = 16.0
CUBIC_KERNEL_WIDTH = 4.0  # MATLAB imresize 'bicubic'
WEIGHTS_NAME = "niqe-pristine"

# r(alpha) = Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)) on the grid, the moment ratio matched by the AGGD fit
_RECIPROCAL = np.reciprocal(GAMMA_GRID)
_R_GAMMA = np.square(gamma(_RECIPROCAL * 2)) / (gamma(_RECIPROCAL) * gamma(_RECIPROCAL * 3))


# ------------------------------------------------------------------------------ MATLAB imresize port
# MATLAB's imresize as BasicSR ports it (basicsr/utils/matlab_functions.py), down to the float32 arithmetic:
# the weights come from float32 torch tensors and each output line is one torch ``mv`` over the same
# slices of a symmetrically padded image, so the sums round as BasicSR's do (a sum in another order can
# flip a choice of the AGGD grid search, which moves NIQE).
def _cubic(x: torch.Tensor) -> torch.Tensor:
    """MATLAB's bicubic kernel (Keys, a = -0.5)."""
    ax = torch.abs(x)
    ax2, ax3 = ax ** 2, ax ** 3
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1).type_as(ax)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) * (ax <= 2)).type_as(ax)
    return near + far


def _contributions(in_len: int, out_len: int, scale: float, antialiasing: bool) -> tuple[torch.Tensor, list[int], int, int]:
    """Along one axis: float32 weights (out_len, K), each output's first source index in the padded
    line, and how many samples are mirrored before and after the line."""
    width = CUBIC_KERNEL_WIDTH
    shrink = scale < 1 and antialiasing
    if shrink:
        width /= scale  # a stretched kernel interpolates and low-pass filters at once
    u = torch.linspace(1, out_len, out_len) / scale + 0.5 * (1 - 1 / scale)  # output centres, 1-based input coordinates
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2
    index = left.view(-1, 1) + torch.linspace(0, taps - 1, taps).view(1, -1)  # 1-based
    distance = u.view(-1, 1) - index
    w = scale * _cubic(distance * scale) if shrink else _cubic(distance)
    w = w / torch.sum(w, 1).view(-1, 1)
    # MATLAB drops all-zero columns. BasicSR only tests the first and last column (dropping one that has
    # any zero); for NIQE's 0.5 both rules drop exactly the two outer, all-zero columns.
    keep = torch.any(w != 0, dim=0)
    w, index = w[:, keep].contiguous(), index[:, keep]
    before = int(-index.min()) + 1
    after = max(int(index.max()) - in_len, 0)
    return w, [int(i) for i in index[:, 0] + before - 1], before, after


def _mirrored(planes: torch.Tensor, dim: int, before: int, after: int) -> torch.Tensor:
    """`planes` with `before` / `after` samples mirrored at the ends of `dim`: MATLAB's symmetric border,
    ``[1:n, n:-1:1]`` indexed modulo 2n (so it also covers pads longer than the line)."""
    n = planes.shape[dim]
    m = torch.remainder(torch.arange(-before, n + after), 2 * n)
    return planes.index_select(dim, torch.where(m < n, m, 2 * n - 1 - m))


@torch.no_grad()
def matlab_imresize(image: np.ndarray, scale: float, antialiasing: bool = True) -> np.ndarray:
    """MATLAB ``imresize(image, scale)`` with the default bicubic kernel, for (H, W) or (H, W, C).

    Output size ``ceil(H * scale) x ceil(W * scale)``; rows are resized first, then columns (MATLAB's
    order for equal scales); borders are symmetric. Like BasicSR's ``imresize`` the arithmetic is
    float32 and the output is not rounded or clipped.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim not in (2, 3) or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"matlab_imresize expects a non-empty (H, W) or (H, W, C) array, got shape {img.shape}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    planes = torch.from_numpy(np.ascontiguousarray(np.moveaxis(img.reshape(img.shape[:2] + (-1,)), -1, 0)))
    for dim in (1, 2):  # (C, H, W): rows, then columns
        n_in = planes.shape[dim]
        n_out = int(math.ceil(n_in * scale))
        w, first, before, after = _contributions(n_in, n_out, scale, antialiasing)
        padded = _mirrored(planes, dim, before, after)
        shape = list(planes.shape)
        shape[dim] = n_out
        out = torch.empty(shape, dtype=torch.float32)
        taps = w.shape[1]
        for i in range(n_out):
            for c in range(planes.shape[0]):
                if dim == 1:
                    out[c, i, :] = padded[c, first[i]:first[i] + taps, :].transpose(0, 1).mv(w[i])
                else:
                    out[c, :, i] = padded[c, :, first[i]:first[i] + taps].mv(w[i])
        planes = out
    out = np.moveaxis(planes.numpy(), 0, -1)
    return out[..., 0] if img.ndim == 2 else out


# ------------------------------------------------------------------------------------------ model
def gaussian_window(size: int = WINDOW_SIZE, sigma: float = WINDOW_SIGMA) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)`` (normalised to sum 1), float64."""
    r = (size - 1) / 2
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    g = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    g[g < np.finfo(np.float64).eps * g.max()] = 0  # fspecial zeroes negligible tails
    return g / g.sum()


def _load_params() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = weights.load_numpy(WEIGHTS_NAME)
    missing = [k for k in PARAM_KEYS if k not in data]
    if missing:
        raise weights.WeightsCorruptError(f"NIQE parameter file lacks {', '.join(missing)} (needs {PARAM_KEYS})")
    mu = np.asarray(data["mu_pris_param"], dtype=np.float64).reshape(1, -1)
    cov = np.asarray(data["cov_pris_param"], dtype=np.float64)
    window = np.asarray(data["gaussian_window"], dtype=np.float64)
    if mu.shape != (1, FEATURE_DIM) or cov.shape != (FEATURE_DIM, FEATURE_DIM) or window.ndim != 2:
        raise weights.WeightsCorruptError(
            f"NIQE parameters have shapes mu {mu.shape}, cov {cov.shape}, window {window.shape}; "
            f"expected (1, {FEATURE_DIM}), ({FEATURE_DIM}, {FEATURE_DIM}) and a 2-D window"
        )
    return mu, cov, window


# ------------------------------------------------------------------------------------------ input
def to_y(frame: np.ndarray, convert_to: Literal["y", "gray"] = "y") -> np.ndarray:
    """(H, W, 3) RGB in [0, 255] -> (H, W) float32 luma, as BasicSR's calculate_niqe (before cropping/rounding)."""
    bgr = np.ascontiguousarray(np.asarray(frame)[..., ::-1], dtype=np.float32)  # BasicSR works on BGR
    if convert_to == "y":
        scaled = bgr / np.float32(255.0)
        y = (np.dot(scaled, Y_WEIGHTS_BGR) + Y_OFFSET) / 255.0  # float64, like bgr2ycbcr(y_only=True)
        return y.astype(np.float32) * np.float32(255.0)
    if convert_to == "gray":
        return cv2.cvtColor(bgr / np.float32(255.0), cv2.COLOR_BGR2GRAY) * np.float32(255.0)
    raise ValueError(f"convert_to must be 'y' or 'gray', not {convert_to!r}")


# --------------------------------------------------------------------------------------- features
def _aggd(values: np.ndarray) -> tuple[float, float, float]:
    """Asymmetric generalised gaussian fit by moment matching: (alpha, beta_left, beta_right).

    The sample arithmetic stays in the input's dtype (float32 in NIQE), as in BasicSR.
    """
    left = np.sqrt(np.mean(values[values < 0] ** 2))
    right = np.sqrt(np.mean(values[values > 0] ** 2))
    g = left / right
    r_hat = np.mean(np.abs(values)) ** 2 / np.mean(values ** 2)
    r_norm = r_hat * (g ** 3 + 1) * (g + 1) / (g ** 2 + 1) ** 2
    alpha = GAMMA_GRID[np.argmin((_R_GAMMA - r_norm) ** 2)]
    spread = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left * spread, right * spread


def _block_features(block: np.ndarray) -> list[float]:
    alpha, beta_l, beta_r = _aggd(block.ravel())
    feats = [alpha, (beta_l + beta_r) / 2]
    for shift in SHIFTS:
        alpha, beta_l, beta_r = _aggd((block * np.roll(block, shift, axis=(0, 1))).ravel())
        mean = (beta_r - beta_l) * (gamma(2 / alpha) / gamma(1 / alpha))  # AGGD mean (eq. 8)
        feats += [alpha, mean, beta_l, beta_r]
    return feats


def niqe_features(y: np.ndarray, window: np.ndarray, block_size: int = BLOCK_SIZE) -> np.ndarray:
    """(n_blocks, 36) float64 NIQE block features of a rounded (H, W) luma image in [0, 255].

    ``y`` is used as float32 (BasicSR's dtype); only the top-left whole blocks are kept.
    """
    img = np.asarray(y, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"niqe_features expects a (H, W) luma image, got shape {img.shape}")
    rows, cols = img.shape[0] // block_size, img.shape[1] // block_size
    if rows == 0 or cols == 0:
        raise ValueError(f"image of {img.shape[0]}x{img.shape[1]} is smaller than one {block_size}x{block_size} NIQE block")
    img = img[:rows * block_size, :cols * block_size]
    per_scale = []
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # empty means in flat blocks -> NaN, as in the reference
        for scale in range(1, NUM_SCALES + 1):
            mu = ndimage.convolve(img, window, mode="nearest")  # float32 out, like the reference
            sigma = np.sqrt(np.abs(ndimage.convolve(np.square(img), window, mode="nearest") - np.square(mu)))
            mscn = (img - mu) / (sigma + 1)
            size = block_size // scale
            feats = [_block_features(mscn[r * size:(r + 1) * size, c * size:(c + 1) * size])
                     for c in range(cols) for r in range(rows)]  # column-major, as MATLAB's blkproc
            per_scale.append(np.array(feats, dtype=np.float64))
            if scale < NUM_SCALES:
                img = matlab_imresize(img / np.float32(255.0), 0.5) * np.float32(255.0)
    return np.concatenate(per_scale, axis=1)


def fit_mvg(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (1, D) and covariance (D, D) of block features as NIQE fits them (nanmean; cov of NaN-free rows)."""
    features = np.asarray(features, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mu = np.nanmean(features, axis=0)
        cov = np.cov(features[~np.isnan(features).any(axis=1)], rowvar=False)
    return mu.reshape(1, -1), np.atleast_2d(cov)


def niqe_score(features: np.ndarray, mu_pris: np.ndarray, cov_pris: np.ndarray) -> float:
    """NIQE distance between the block features of one image and the pristine Gaussian."""
    mu, cov = fit_mvg(features)
    diff = np.asarray(mu_pris, dtype=np.float64).reshape(1, -1) - mu
    if not np.isfinite(diff).all() or not np.isfinite(cov).all():
        return math.nan  # every block flat: nothing to fit
    quality = diff @ np.linalg.pinv((cov_pris + cov) / 2) @ diff.T
    return float(np.sqrt(quality).squeeze())


# ----------------------------------------------------------------------------------------- metric
class NIQE:
    """Streaming NIQE over frames (no reference needed). See the module docstring for the algorithm.

    ``update(generated, reference=None)``: RGB (T, H, W, 3) or (H, W, 3), uint8 or float in
    [0, 255]. ``compute()`` gives ``niqe`` (mean over generated frames, NaN frames ignored),
    ``num_frames``, ``num_nan_frames`` and, when references were given, ``niqe_reference``.
    """

    def __init__(self, crop_border: int = 0, convert_to: Literal["y", "gray"] = "y") -> None:
        if crop_border < 0:
            raise ValueError(f"crop_border must be >= 0, got {crop_border}")
        if convert_to not in ("y", "gray"):
            raise ValueError(f"convert_to must be 'y' or 'gray', not {convert_to!r}")
        self.crop_border = crop_border
        self.convert_to = convert_to
        self.mu_pris, self.cov_pris, self.window = _load_params()
        self._sha256 = weights.verify(WEIGHTS_NAME).actual_sha256
        self.reset()

    def reset(self) -> None:
        """Forget every frame seen so far."""
        self._gen: list[float] = []
        self._ref: list[float] = []

    def score_frame(self, frame: np.ndarray) -> float:
        """NIQE of one (H, W, 3) RGB frame."""
        y = to_y(frame, self.convert_to)
        c = self.crop_border
        if c:
            if y.shape[0] <= 2 * c or y.shape[1] <= 2 * c:
                raise ValueError(f"crop_border {c} removes the whole {y.shape[0]}x{y.shape[1]} frame")
            y = y[c:-c, c:-c]
        return niqe_score(niqe_features(y.round(), self.window), self.mu_pris, self.cov_pris)

    def scores(self, frames: Any, name: str = "frames") -> np.ndarray:
        """Per-frame NIQE of a clip, without accumulating."""
        return np.array([self.score_frame(f) for f in as_frames(frames, name)])

    def update(self, generated: Any, reference: Any | None = None) -> None:
        """Add generated frames (and optionally reference frames, scored separately)."""
        gen = self.scores(generated, "generated")
        ref = self.scores(reference, "reference") if reference is not None else None
        self._gen.extend(gen.tolist())
        if ref is not None:
            self._ref.extend(ref.tolist())

    def compute(self) -> dict[str, float]:
        """Mean NIQE over every frame so far; raises ValueError before the first update."""
        if not self._gen:
            raise ValueError("NIQE.compute() called before any update()")
        gen = np.array(self._gen)
        result: dict[str, float] = {
            "niqe": float(np.nanmean(gen)) if np.isfinite(gen).any() else math.nan,
            "num_frames": int(gen.size),
            "num_nan_frames": int(np.isnan(gen).sum()),
        }
        if self._ref:
            ref = np.array(self._ref)
            result["niqe_reference"] = float(np.nanmean(ref)) if np.isfinite(ref).any() else math.nan
        return result

    def per_frame(self) -> np.ndarray:
        """Per-frame NIQE of the generated frames so far."""
        return np.array(self._gen)

    def config(self) -> dict[str, Any]:
        """Every setting that changes the number (for result provenance)."""
        return {
            "metric": "niqe",
            "reference": "BasicSR basicsr/metrics/niqe.py calculate_niqe (MATLAB niqe_release computequality.m)",
            "convert_to": self.convert_to,
            "crop_border": self.crop_border,
            "block_size": BLOCK_SIZE,
            "scales": NUM_SCALES,
            "downscale": "MATLAB imresize 0.5, bicubic, antialiasing (float32 port)",
            "rounding": "luma rounded to integers after cropping",
            "aggregation": "mean over frames (NaN frames ignored)",
        }

    def weights_provenance(self) -> dict[str, str]:
        """sha256 of the pristine-model parameter file used."""
        return {WEIGHTS_NAME: str(self._sha256)}


def niqe(frames: Any, crop_border: int = 0, convert_to: Literal["y", "gray"] = "y") -> dict[str, float]:
    """One-off :class:`NIQE` of one clip (or one frame): ``compute()``'s dict (``niqe``, ``num_frames``, ...)."""
    metric = NIQE(crop_border=crop_border, convert_to=convert_to)
    metric.update(frames)
    return metric.compute()


class NIQEVideos(PerFrameMeans):
    """NIQE of the generated frames as stored (no reference, no resizing): per video and overall means; and,
    as the ground-truth anchor (``niqe_reference``), of the same frames of the reference videos, each
    reference video's scores cached by content (:mod:`metrics.reference_cache`)."""

    name, direction = "niqe", "lower"
    consumes = frozenset({GENERATED_FRAMES})
    accumulators = ("_gen", "_ref")

    def __init__(self, device: str = "cpu", reference_cache: bool = True) -> None:
        super().__init__(NIQE())
        self.cache = ReferenceCache("niqe-reference", enabled=reference_cache)
        self._reference: Optional[list[float]] = None  # the current reference video's scores, when cached
        self._scoring: list[float] = []

    def _facts(self, video: VideoInfo) -> dict[str, Any]:
        return {"frames": video.frames_used, "fps": video.fps, "config": self.metric.config(),
                "weights": self.metric.weights_provenance(), "numpy": np.__version__}

    def start_video(self, video: VideoInfo) -> None:
        super().start_video(video)
        self._video = video
        self._reference = self.cache.get(video.pair.reference, self._facts(video))
        self._scoring = []

    def update(self, chunk: Chunk) -> None:
        self.metric.update(chunk.generated)
        if self._reference is None:
            self._scoring.extend(self.metric.scores(chunk.reference, "reference").tolist())

    def end_video(self) -> dict[str, Any]:
        if self._reference is None:
            self._reference = self._scoring
            self.cache.put(self._video.pair.reference, self._facts(self._video), self._scoring)
        self.metric._ref.extend(self._reference)
        row = super().end_video()
        row["niqe_reference"] = finite_mean(np.asarray(self._reference, dtype=np.float64))
        return row

    def state(self) -> dict[str, Any]:
        return {**super().state(), "cache_hits": self.cache.hits}  # the hits for config()

    def merge(self, state: dict[str, Any]) -> None:
        super().merge(state)
        self.cache.hits += state["cache_hits"]

    def config(self) -> dict[str, Any]:
        return {**self.metric.config(), "reference_cache": self.cache.enabled, "reference_cache_hits": self.cache.hits}

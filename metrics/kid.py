"""Kernel Inception Distance as torch-fidelity computes it, on FID's Inception features.

Usage::

    from talking_head.metrics.kid import KID, kid_from_features

    metric = KID(device="cuda")                  # FID's Inception (pool3, 2048-d), features kept in memory
    metric.update(generated_frames)              # (N, H, W, 3) uint8 RGB
    metric.update(reference_frames, real=True)
    metric.compute()                             # {"kid": ..., "kid_std": ..., "subset_size": ..., ...}

    kid_from_features(gen_features, ref_features)   # (N, D) arrays: the same numbers from features

The estimator (torch-fidelity 0.4.0 ``metric_kid.py``, from MMD-GAN's ``compute_scores.py``, Binkowski et
al. 2018): ``subsets`` times, draw ``subset_size`` rows of each side without replacement
(``numpy.random.RandomState(seed).choice``: generated side first, then reference), compute the cubic
polynomial kernel ``k(x, y) = (x . y / D + 1)^3`` and the unbiased MMD^2 estimate

    sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1)) - 2 sum_{i, j} k(x_i, y_j) / m^2;

KID is the mean over subsets (``kid_std`` their standard deviation). The kernels are computed in float32
as torch-fidelity does, so its numbers are reproduced to the last digits. Values slightly below 0 are
valid: the two sets are then indistinguishable at this sample size.

In ``toolkit evaluate`` (:class:`KIDVideos`) the features are those of the run's one Inception pass,
shared with FID (:class:`metrics.fid.InceptionVideos`): asking for both costs one network pass per frame.

Defaults are torch-fidelity's: 100 subsets of 1000, seed 2020. With fewer frames than ``subset_size``
on a side, torch-fidelity refuses; here the subset shrinks to the smaller side (as clean-fid does), and
the result says so in ``warnings`` and ``subset_size``.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from talking_head.metrics.base import batch_size_for
from talking_head.metrics.fid import BATCH_SIZE, InceptionFeatureMetric, InceptionVideos
from talking_head.metrics.inception import FEATURE_DIM, FIDInceptionV3

__all__ = ["SUBSETS", "SUBSET_SIZE", "DEGREE", "COEF0", "SEED", "KID", "KIDVideos", "kid_from_features",
           "polynomial_kernel", "unbiased_mmd2"]

# torch-fidelity 0.4.0 defaults.py
SUBSETS = 100  # kid_subsets
SUBSET_SIZE = 1000  # kid_subset_size
DEGREE = 3  # kid_kernel_poly_degree
COEF0 = 1.0  # kid_kernel_poly_coef0; gamma None: 1 / feature dimension
SEED = 2020  # rng_seed


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = DEGREE, gamma: Optional[float] = None,
                      coef0: float = COEF0) -> np.ndarray:
    """``(x y^T * gamma + coef0) ** degree``; gamma defaults to ``1 / x.shape[1]``."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (np.matmul(x, y.T) * gamma + coef0) ** degree


def unbiased_mmd2(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    """Unbiased MMD^2 from the three kernel matrices of two equal-size samples (diagonals of k_xx, k_yy left out)."""
    m = k_xx.shape[0]
    within = (k_xx.sum(axis=1) - np.diagonal(k_xx)).sum() + (k_yy.sum(axis=1) - np.diagonal(k_yy)).sum()
    return within / (m * (m - 1)) - 2 * k_xy.sum(axis=0).sum() / (m * m)


def kid_from_features(generated: Any, reference: Any, *, subsets: int = SUBSETS, subset_size: int = SUBSET_SIZE,
                      degree: int = DEGREE, gamma: Optional[float] = None, coef0: float = COEF0,
                      seed: int = SEED) -> dict[str, Any]:
    """KID between two feature sets, (N, D) and (M, D), as float32 (torch-fidelity's dtype)."""
    gen = np.asarray(generated.cpu() if isinstance(generated, torch.Tensor) else generated, dtype=np.float32)
    ref = np.asarray(reference.cpu() if isinstance(reference, torch.Tensor) else reference, dtype=np.float32)
    if gen.ndim != 2 or ref.ndim != 2 or gen.shape[1] != ref.shape[1]:
        raise ValueError(f"KID needs two (N, D) feature arrays of one width, got {gen.shape} and {ref.shape}")
    if len(gen) < 2 or len(ref) < 2:
        raise ValueError(f"KID needs at least 2 frames a side, got {len(gen)} generated and {len(ref)} reference")
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"subsets must be >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
    size = min(subset_size, len(gen), len(ref))
    warnings = []
    if size < subset_size:
        warnings.append(f"subsets of {size} frames instead of {subset_size}: only {len(gen)} generated and "
                        f"{len(ref)} reference frames (torch-fidelity would refuse; KIDs of other subset sizes "
                        "are not comparable)")
    rng = np.random.RandomState(seed)
    mmds = np.zeros(subsets)
    for i in range(subsets):
        x = gen[rng.choice(len(gen), size, replace=False)]
        y = ref[rng.choice(len(ref), size, replace=False)]
        kernel = dict(degree=degree, gamma=gamma, coef0=coef0)
        mmds[i] = unbiased_mmd2(polynomial_kernel(x, x, **kernel), polynomial_kernel(x, y, **kernel),
                                polynomial_kernel(y, y, **kernel))
    return {"kid": float(np.mean(mmds)), "kid_std": float(np.std(mmds)), "subsets": subsets, "subset_size": size,
            "num_frames_generated": len(gen), "num_frames_reference": len(ref), "warnings": warnings}


def _config(subsets: int, subset_size: int, seed: int, device: Any) -> dict[str, Any]:
    return {"features": "FID Inception pool3 (2048-d), as FID", "kernel": f"polynomial, degree {DEGREE}, "
            f"gamma 1/d, coef0 {COEF0:g}", "estimator": "unbiased MMD^2, mean over subsets (torch-fidelity 0.4.0)",
            "subsets": subsets, "subset_size": subset_size, "seed": seed, "device": str(device)}


class KID:
    """Streaming KID over frames: Inception features of each side are kept (2048 float32 a frame)."""

    name, direction = "kid", "lower"

    def __init__(self, device: str | torch.device | None = None, *, subsets: int = SUBSETS,
                 subset_size: int = SUBSET_SIZE, seed: int = SEED, batch_size: int | None = None,
                 model: FIDInceptionV3 | None = None) -> None:
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = (model if model is not None else FIDInceptionV3.from_pretrained(device=device)).eval()
        self.subsets, self.subset_size, self.seed = int(subsets), int(subset_size), int(seed)
        self.batch_size = batch_size_for(BATCH_SIZE, self.model.device, batch_size)  # FID's table
        self.reset()

    def reset(self) -> None:
        self._features: dict[bool, list[np.ndarray]] = {False: [], True: []}

    def update(self, frames: Any, real: bool = False) -> None:
        """Add (N, H, W, 3) uint8 RGB frames to the generated side (``real=True``: the reference side)."""
        frames = list(frames)
        for start in range(0, len(frames), self.batch_size):
            features = self.model.extract(frames[start:start + self.batch_size])
            self._features[real].append(features.float().cpu().numpy())

    def counts(self) -> tuple[int, int]:
        return tuple(sum(len(f) for f in self._features[side]) for side in (False, True))  # type: ignore[return-value]

    def truncate(self, generated: int, reference: int) -> None:
        """Keep only the first `generated` / `reference` feature rows (a video taken back out)."""
        for side, keep in ((False, generated), (True, reference)):
            self._features[side] = [self._rows(side)[:keep]]

    def _rows(self, real: bool) -> np.ndarray:
        return np.concatenate(self._features[real]) if self._features[real] else np.zeros((0, FEATURE_DIM), np.float32)

    def compute(self) -> dict[str, Any]:
        return kid_from_features(self._rows(False), self._rows(True), subsets=self.subsets,
                                 subset_size=self.subset_size, seed=self.seed)

    def config(self) -> dict[str, Any]:
        return _config(self.subsets, self.subset_size, self.seed, self.model.device)

    def weights_provenance(self) -> dict[str, str | None]:
        return self.model.weights_provenance()


class KIDVideos(InceptionFeatureMetric):
    """KID for the runner: all paired frames of all videos, pooled, as FID, on the features of the run's one
    Inception pass (:class:`metrics.fid.InceptionVideos`, shared with FID: with both requested, each frame
    goes through the network once). :meth:`resample` recomputes KID over a draw of videos from kernel
    matrices computed once (:class:`metrics.feature_resampling.KernelResampler`)."""

    name, direction = "kid", "lower"
    resample_note = ("each resample's KID draws its subsets from the drawn videos' frames exactly as "
                     "kid_from_features does (same seed), but takes the kernel values from matrices computed once "
                     "on all frames (float32) and sums them in float64, where torch-fidelity sums each subset's "
                     "kernels in float32: equal to ~1e-6 of the kernel scale")

    def __init__(self, device: str = "cpu", shared: InceptionVideos | None = None, *, subsets: int = SUBSETS,
                 subset_size: int = SUBSET_SIZE, seed: int = SEED) -> None:
        super().__init__(device, shared)
        self.subsets, self.subset_size, self.seed = int(subsets), int(subset_size), int(seed)

    def _kid(self, generated: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
        return kid_from_features(generated, reference, subsets=self.subsets, subset_size=self.subset_size,
                                 seed=self.seed)

    def compute(self) -> dict[str, Any]:
        fid = self.features.fid
        return self._kid(fid.features(False), fid.features(True))

    def resample(self, indices: np.ndarray) -> dict[str, float]:
        from talking_head.metrics.feature_resampling import KernelResampler

        videos = len(self.features.videos)
        if self._resampler is None or self._resampler[0] != videos:
            generated, reference, gen_counts, ref_counts = self.features.video_features()
            self._resampler = (videos, KernelResampler(
                generated, reference, gen_counts, ref_counts, subsets=self.subsets, subset_size=self.subset_size,
                seed=self.seed, kernel=polynomial_kernel, fallback=lambda g, r: self._kid(g, r)["kid"]))
        return {"kid": self._resampler[1](indices)}

    def config(self) -> dict[str, Any]:
        return {**_config(self.subsets, self.subset_size, self.seed, self.features.model.device),
                "protocol": "all paired frames of all videos, pooled; frames as stored",
                "inception_pass": "shared with FID (one pass per frame; batches of "
                                  f"{self.features.fid.batch_size} frames from each video's first frame)"}

    def weights_provenance(self) -> dict[str, Any]:
        return self.features.model.weights_provenance()

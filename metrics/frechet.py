"""The Fréchet distance between two Gaussians, and the feature statistics it is computed from.

Usage::

    from talking_head.metrics.frechet import RunningStatistics, frechet_distance

    stats = RunningStatistics(dim=2048)             # float64 running sums, constant memory
    stats.update(features)                          # (N, dim) torch tensor
    gen = stats.statistics()                        # Statistics(mu, sigma, count)
    frechet_distance(gen.mu, gen.sigma, ref.mu, ref.sigma).fid

``tr sqrtm(S1 S2)`` comes from the symmetric form ``eigvalsh(S1^1/2 S2 S1^1/2)``: why, and how it agrees
with pytorch-fid's ``scipy.linalg.sqrtm``, is in :mod:`metrics.fid`'s docstring.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from talking_head.metrics.inception import FEATURE_DIM
from talking_head.toolkit.fileio import atomic_path

PathLike = Union[str, "os.PathLike[str]"]


# ---------------------------------------------------------------------------------- Fréchet distance
@dataclass(frozen=True)
class FrechetResult:
    """``fid = mean_term + trace_sigma1 + trace_sigma2 - 2 * trace_covmean``, with diagnostics.

    ``rank_sigma1``: eigenvalues of sigma1 above the rank tolerance (the subspace the product is
    evaluated in). ``eigenvalues_zeroed``: how many of the ``dim`` eigenvalues of ``S1^1/2 S2 S1^1/2``
    were counted as 0 (S1's null space, plus round-off that came out negative or below tolerance);
    ``min_eigenvalue``: the most negative eigenvalue seen (its size shows the round-off level).
    """

    fid: float
    mean_term: float
    trace_sigma1: float
    trace_sigma2: float
    trace_covmean: float
    dim: int
    rank_sigma1: int
    eigenvalues_zeroed: int
    min_eigenvalue: float
    method: str = "eigvalsh(S1^1/2 S2 S1^1/2), float64"

    def __float__(self) -> float:
        return self.fid

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _as_float64(name: str, value: Any, ndim: int) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def frechet_distance(
    mu1: Any,
    sigma1: Any,
    mu2: Any,
    sigma2: Any,
    device: str | torch.device | None = None,
    backend: str = "auto",
) -> FrechetResult:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    ``tr sqrtm(S1 S2)`` equals the sum of the square roots of the eigenvalues of the symmetric PSD
    matrix ``S1^1/2 S2 S1^1/2`` (similar to ``S1 S2``). ``S1^1/2 = U diag(sqrt l) U^T`` from
    ``eigh(S1)``; the product is formed in S1's eigenbasis, restricted to eigenvalues above
    ``max(l) * d * eps`` (numpy's matrix-rank tolerance), so an exactly rank-deficient S1 contributes
    no round-off from its null space. ``backend="auto"``: NumPy's LAPACK on CPU (faster there than
    torch's), ``torch.linalg`` in float64 on a CUDA ``device``; "numpy" / "torch" force one.
    Raises ValueError on mismatched shapes or non-finite input.
    """
    if backend not in ("auto", "numpy", "torch"):
        raise ValueError(f"backend must be 'auto', 'numpy' or 'torch', got {backend!r}")
    m1, m2 = _as_float64("mu1", mu1, 1), _as_float64("mu2", mu2, 1)
    s1, s2 = _as_float64("sigma1", sigma1, 2), _as_float64("sigma2", sigma2, 2)
    d = m1.shape[0]
    if m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            f"shapes do not match: mu1 {m1.shape}, sigma1 {s1.shape}, mu2 {m2.shape}, sigma2 {s2.shape}"
        )
    diff = m1 - m2
    mean_term = float(diff @ diff)
    s1 = (s1 + s1.T) / 2  # covariances are symmetric; remove round-off asymmetry
    s2 = (s2 + s2.T) / 2
    on_gpu = device is not None and torch.device(device).type != "cpu"
    use_torch = backend == "torch" or (backend == "auto" and on_gpu)
    device = device if device is not None else "cpu"
    eps = np.finfo(np.float64).eps
    if use_torch:
        t1 = torch.as_tensor(s1, device=device)
        t2 = torch.as_tensor(s2, device=device)
        lam, vec = torch.linalg.eigh(t1)
        lam, vec = lam.cpu().numpy(), vec
    else:
        lam, vec = np.linalg.eigh(s1)
    tol1 = max(float(lam.max()), 0.0) * d * eps
    keep = np.flatnonzero(lam > tol1)
    if keep.size == 0:  # S1 == 0: the product is 0
        ev = np.zeros(0)
    elif use_torch:
        idx = torch.as_tensor(keep, device=vec.device)
        w = vec[:, idx] * torch.sqrt(torch.as_tensor(lam[keep], device=vec.device))
        m = w.T @ t2 @ w
        ev = torch.linalg.eigvalsh((m + m.T) / 2).cpu().numpy()
    else:
        w = vec[:, keep] * np.sqrt(lam[keep])
        m = w.T @ s2 @ w
        ev = np.linalg.eigvalsh((m + m.T) / 2)
    tol2 = (float(np.abs(ev).max()) * ev.size * eps) if ev.size else 0.0
    positive = ev > tol2
    trace_covmean = float(np.sqrt(ev[positive]).sum())
    tr1, tr2 = float(np.trace(s1)), float(np.trace(s2))
    return FrechetResult(
        fid=mean_term + tr1 + tr2 - 2.0 * trace_covmean,
        mean_term=mean_term,
        trace_sigma1=tr1,
        trace_sigma2=tr2,
        trace_covmean=trace_covmean,
        dim=d,
        rank_sigma1=int(keep.size),
        eigenvalues_zeroed=int(ev.size - positive.sum()) + int(d - keep.size),
        min_eigenvalue=float(min(ev.min(), 0.0)) if ev.size else 0.0,
    )


# --------------------------------------------------------------------------------------- statistics
@dataclass
class Statistics:
    """Mean (d,) and unbiased covariance (d, d) of ``count`` feature vectors, float64.

    ``save``/``load`` use ``.npz`` with keys ``mu`` and ``sigma`` (pytorch-fid's ``--save-stats``
    layout, so pytorch-fid can read the file) plus ``count`` and a JSON ``meta`` string. ``count`` is
    -1 for a file without one (pytorch-fid's own ``--save-stats`` files).
    """

    mu: np.ndarray
    sigma: np.ndarray
    count: int
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: PathLike) -> Path:
        """Write atomically (a reader sees the old file or the complete new one)."""
        dest = Path(path)
        with atomic_path(dest) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, mu=self.mu, sigma=self.sigma, count=np.int64(self.count),
                         meta=np.array(json.dumps(self.meta, sort_keys=True, default=str)))
        return dest

    @classmethod
    def load(cls, path: PathLike) -> "Statistics":
        with np.load(path, allow_pickle=False) as data:
            mu, sigma = np.asarray(data["mu"], np.float64), np.asarray(data["sigma"], np.float64)
            count = int(data["count"]) if "count" in data.files else -1  # pytorch-fid files carry no count
            meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
        if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
            raise ValueError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not fit together")
        return cls(mu=mu, sigma=sigma, count=count, meta=meta)


class RunningStatistics:
    """Streaming mean and covariance of feature vectors: float64 sums, constant memory.

    Keeps ``sum(x - c)`` and ``sum((x - c)(x - c)^T)`` with ``c`` the mean of the first batch: the
    same covariance as ``np.cov`` on all rows, without the cancellation of raw second moments.
    Sums live on ``device`` (where the features are produced).
    """

    def __init__(self, dim: int = FEATURE_DIM, device: str | torch.device = "cpu") -> None:
        self.dim = dim
        self.device = torch.device(device)
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self._shift: torch.Tensor | None = None
        self._sum = torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        self._outer = torch.zeros(self.dim, self.dim, dtype=torch.float64, device=self.device)

    def update(self, features: torch.Tensor | np.ndarray) -> None:
        """Add an (N, dim) batch of feature vectors."""
        x = torch.as_tensor(features).to(self.device, torch.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"features must be (N, {self.dim}), got shape {tuple(x.shape)}")
        if x.shape[0] == 0:
            return
        if self._shift is None:
            self._shift = x.mean(0)
        x = x - self._shift
        self._sum += x.sum(0)
        self._outer += x.T @ x
        self.count += x.shape[0]

    def add_statistics(self, stats: Statistics) -> None:
        """Merge precomputed statistics (e.g. cached reference statistics) as if their frames were added."""
        if stats.count < 2:
            raise ValueError(f"statistics need a frame count >= 2 to be merged, got {stats.count}")
        mu = torch.as_tensor(stats.mu, dtype=torch.float64, device=self.device)
        sigma = torch.as_tensor(stats.sigma, dtype=torch.float64, device=self.device)
        if mu.shape != (self.dim,) or sigma.shape != (self.dim, self.dim):
            raise ValueError(f"statistics are {tuple(mu.shape)}/{tuple(sigma.shape)}, expected dim {self.dim}")
        if self._shift is None:
            self._shift = mu.clone()
        n, delta = stats.count, mu - self._shift
        self._sum += n * delta
        self._outer += (n - 1) * sigma + n * torch.outer(delta, delta)
        self.count += n

    def statistics(self, meta: dict[str, Any] | None = None) -> Statistics:
        """Mean and unbiased covariance (N-1, as ``np.cov``) of everything added so far."""
        n = self.count
        if n < 2:
            raise ValueError(f"need at least 2 frames for a covariance, got {n}")
        assert self._shift is not None
        mean_shifted = self._sum / n
        sigma = (self._outer - n * torch.outer(mean_shifted, mean_shifted)) / (n - 1)
        sigma = (sigma + sigma.T) / 2
        mu = self._shift + mean_shifted
        return Statistics(mu=mu.cpu().numpy(), sigma=sigma.cpu().numpy(), count=n, meta=dict(meta or {}))


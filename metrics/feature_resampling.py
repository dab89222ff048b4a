"""FID and KID recomputed on bootstrap draws of videos, cheaply, from the features kept per video.

A draw takes whole videos with replacement, so each kept frame enters the resampled set as many times as
its video was drawn: the resampled statistics are weighted ones, with integer weights per frame. Both
classes give the number the metric's own code gives on the resampled rows (``frechet_distance`` of their
mean and covariance; ``kid_from_features`` of them), by another arithmetic route:

:class:`FrechetResampler` (FID): the mean term and the traces from the features directly, and
``tr sqrtm(S1 S2)`` as the sum of the singular values of ``A1 A2^T`` (``S_i = A_i^T A_i``, ``A_i`` the
weighted, centred rows over sqrt(n_i - 1)), so nothing 2048x2048 is decomposed:

* ``gram`` route (at most as many frames a side as feature dimensions): the three Gram matrices of the
  kept rows are computed once; a resample forms the centred, weighted cross-Gram of the frames drawn
  (at most frames_g x frames_r) and takes its singular values;
* ``covariance`` route (more frames than dimensions): each resample's covariances are weighted sums over
  the kept rows (frames x d^2), and the trace is ``sum sqrt eigvalsh(L1^T S2 L1)`` with ``S1 = L1 L1^T``
  (Cholesky: one symmetric eigenvalue problem without vectors instead of ``eigh`` + ``eigvalsh``;
  ``frechet_distance`` itself when S1 is not positive definite).

Singular values (eigenvalues) below ``frechet_distance``'s tolerance count as 0, as there. On the same rows
the result equals ``frechet_distance`` to ~1e-10 relative (float64 round-off in another order).

:class:`KernelResampler` (KID): the kernel matrices of all kept frames are computed once (float32, the
kernel of :mod:`metrics.kid`; kept as float64), when they fit in :data:`KERNEL_ENTRIES`; a subset is then a vector of
counts ``c`` over the kept frames and its sums are ``c^T K c - c . diag(K)`` (within) and ``c^T K d``
(across), summed in float64. The subsets are drawn exactly as ``kid_from_features`` draws them from the
resampled rows (``RandomState(seed).choice`` without replacement, generated side first), so the only
difference is round-off: torch-fidelity computes each subset's kernel and sums in float32 (agreement ~1e-6
relative to the kernel scale). Without room for the matrices each resample runs ``kid_from_features``.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from talking_head.metrics.frechet import frechet_distance

KERNEL_ENTRIES = 32 * 1024 * 1024  # kernel entries kept for KID (float64, 256 MiB): ~3300 frames a side
ROW_BLOCK = 4096  # rows converted to float64 at a time on the covariance route


def video_frames(counts: Sequence[int], indices: np.ndarray) -> np.ndarray:
    """Positions, in the concatenated rows of all videos (video k has counts[k] rows), of the rows of the
    videos at `indices`, in draw order (a video drawn twice appears twice)."""
    counts = np.asarray(counts, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    picked = np.asarray(indices, dtype=np.int64)
    if not len(picked):
        return np.zeros(0, np.int64)
    return np.concatenate([np.arange(starts[i], starts[i] + counts[i]) for i in picked])


def frame_weights(counts: Sequence[int], indices: np.ndarray) -> np.ndarray:
    """How often each kept row enters the resampled set: its video's multiplicity in `indices`."""
    counts = np.asarray(counts, dtype=np.int64)
    drawn = np.bincount(np.asarray(indices, dtype=np.int64), minlength=len(counts))
    return np.repeat(drawn, counts).astype(np.float64)


def _sum_sqrt(ev: np.ndarray) -> float:
    """sum sqrt of the eigenvalues above frechet_distance's tolerance (max * count * eps)."""
    if not ev.size:
        return 0.0
    tol = float(np.abs(ev).max()) * ev.size * np.finfo(np.float64).eps
    return float(np.sqrt(ev[ev > tol]).sum())


class FrechetResampler:
    """``resampler(indices)``: the Fréchet distance between the generated and reference rows of the videos at
    `indices` (paired: the same draw on both sides). `generated` (N1, d) and `reference` (N2, d) are the kept
    rows of every video in order; `*_counts` the rows per video."""

    def __init__(self, generated: np.ndarray, reference: np.ndarray, generated_counts: Sequence[int],
                 reference_counts: Sequence[int], route: Optional[str] = None, ddof: int = 1) -> None:
        self.x, self.y = np.asarray(generated), np.asarray(reference)
        self.ddof = ddof  # covariance divided by n - ddof: 1 as numpy and pytorch-fid, 0 as StyleGAN-V's FVD
        self.counts = (np.asarray(generated_counts, np.int64), np.asarray(reference_counts, np.int64))
        if self.counts[0].sum() != len(self.x) or self.counts[1].sum() != len(self.y):
            raise ValueError(f"row counts per video ({self.counts[0].sum()}, {self.counts[1].sum()}) do not match "
                             f"the rows ({len(self.x)}, {len(self.y)})")
        d = self.x.shape[1]
        self.route = route or ("gram" if len(self.x) <= d and len(self.y) <= d else "covariance")
        # One shift for both sides: every term is shift-invariant, and the sums do not cancel.
        self.shift = np.concatenate([self.x, self.y]).astype(np.float64).mean(0)
        if self.route == "gram":
            xc, yc = self.x.astype(np.float64) - self.shift, self.y.astype(np.float64) - self.shift
            self.gxx, self.gyy, self.gxy = xc @ xc.T, yc @ yc.T, xc @ yc.T
        elif self.route != "covariance":
            raise ValueError(f"route must be 'gram' or 'covariance', got {route!r}")

    def __call__(self, indices: np.ndarray) -> float:
        w1, w2 = frame_weights(self.counts[0], indices), frame_weights(self.counts[1], indices)
        n1, n2 = w1.sum(), w2.sum()
        if n1 < 2 or n2 < 2:
            return float("nan")
        return self._gram(w1, w2, n1, n2) if self.route == "gram" else self._covariance(w1, w2, n1, n2)

    def _gram(self, w1: np.ndarray, w2: np.ndarray, n1: float, n2: float) -> float:
        a1, a2 = w1 / n1, w2 / n2
        q11 = a1 @ self.gxx @ a1  # |mu1|^2 (shifted)
        q22 = a2 @ self.gyy @ a2
        x_mu2 = self.gxy @ a2  # x_f . mu2
        y_mu1 = self.gxy.T @ a1  # y_g . mu1
        q12 = a1 @ x_mu2  # mu1 . mu2
        mean_term = q11 + q22 - 2 * q12
        trace1 = (w1 @ np.diagonal(self.gxx) - n1 * q11) / (n1 - self.ddof)
        trace2 = (w2 @ np.diagonal(self.gyy) - n2 * q22) / (n2 - self.ddof)
        rows, cols = np.flatnonzero(w1), np.flatnonzero(w2)
        cross = self.gxy[np.ix_(rows, cols)] - x_mu2[rows, None] - y_mu1[None, cols] + q12
        cross *= np.sqrt(w1[rows])[:, None] * np.sqrt(w2[cols])[None, :] / np.sqrt((n1 - self.ddof) * (n2 - self.ddof))
        singular = np.linalg.svd(cross, compute_uv=False)
        trace_covmean = _sum_sqrt(singular ** 2)
        return float(mean_term + trace1 + trace2 - 2 * trace_covmean)

    def _moments(self, rows: np.ndarray, w: np.ndarray, n: float) -> tuple[np.ndarray, np.ndarray]:
        """Weighted mean (shifted) and unbiased covariance of the rows with weight > 0."""
        keep = np.flatnonzero(w)
        d = rows.shape[1]
        total, outer = np.zeros(d), np.zeros((d, d))
        for start in range(0, len(keep), ROW_BLOCK):
            block = keep[start:start + ROW_BLOCK]
            xc = rows[block].astype(np.float64) - self.shift
            weighted = xc * w[block, None]
            total += weighted.sum(0)
            outer += weighted.T @ xc
        mu = total / n
        sigma = (outer - n * np.outer(mu, mu)) / (n - self.ddof)
        return mu, (sigma + sigma.T) / 2

    def _covariance(self, w1: np.ndarray, w2: np.ndarray, n1: float, n2: float) -> float:
        mu1, s1 = self._moments(self.x, w1, n1)
        mu2, s2 = self._moments(self.y, w2, n2)
        try:
            chol = np.linalg.cholesky(s1)
        except np.linalg.LinAlgError:  # S1 not numerically positive definite: the eigh route
            return frechet_distance(mu1, s1, mu2, s2).fid
        m = chol.T @ s2 @ chol
        trace_covmean = _sum_sqrt(np.linalg.eigvalsh((m + m.T) / 2))
        diff = mu1 - mu2
        return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * trace_covmean)


class KernelResampler:
    """``resampler(indices)``: KID (the mean unbiased MMD^2 over `subsets` subsets of `subset_size`, as
    :func:`metrics.kid.kid_from_features` with `seed`) between the rows of the videos at `indices`.
    `kernel(a, b)` is the kernel matrix function; `fallback(gen_rows, ref_rows)` the direct computation,
    used when the kernel matrices of all rows would exceed `max_entries`."""

    def __init__(self, generated: np.ndarray, reference: np.ndarray, generated_counts: Sequence[int],
                 reference_counts: Sequence[int], *, subsets: int, subset_size: int, seed: int,
                 kernel: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 fallback: Callable[[np.ndarray, np.ndarray], float], max_entries: int = KERNEL_ENTRIES) -> None:
        self.x, self.y = np.asarray(generated, np.float32), np.asarray(reference, np.float32)
        self.counts = (np.asarray(generated_counts, np.int64), np.asarray(reference_counts, np.int64))
        self.subsets, self.subset_size, self.seed = subsets, subset_size, seed
        self.fallback = fallback
        n1, n2 = len(self.x), len(self.y)
        self.precomputed = n1 * n1 + n2 * n2 + n1 * n2 <= max_entries
        if self.precomputed:
            # Kernel values as the metric computes them (float32), kept as float64 for the sums.
            self.kxx = kernel(self.x, self.x).astype(np.float64)
            self.kyy = kernel(self.y, self.y).astype(np.float64)
            self.kxy = kernel(self.x, self.y).astype(np.float64)
            self.dxx, self.dyy = np.diagonal(self.kxx).copy(), np.diagonal(self.kyy).copy()

    def __call__(self, indices: np.ndarray) -> float:
        rows1, rows2 = video_frames(self.counts[0], indices), video_frames(self.counts[1], indices)
        if len(rows1) < 2 or len(rows2) < 2:
            return float("nan")
        if not self.precomputed:
            return self.fallback(self.x[rows1], self.y[rows2])
        size = min(self.subset_size, len(rows1), len(rows2))
        rng = np.random.RandomState(self.seed)
        c1 = np.zeros((self.subsets, len(self.x)))
        c2 = np.zeros((self.subsets, len(self.y)))
        for i in range(self.subsets):
            c1[i] = np.bincount(rows1[rng.choice(len(rows1), size, replace=False)], minlength=len(self.x))
            c2[i] = np.bincount(rows2[rng.choice(len(rows2), size, replace=False)], minlength=len(self.y))
        within_x = np.einsum("ij,ij->i", c1 @ self.kxx, c1) - c1 @ self.dxx
        within_y = np.einsum("ij,ij->i", c2 @ self.kyy, c2) - c2 @ self.dyy
        across = np.einsum("ij,ij->i", c1 @ self.kxy, c2)
        mmd = (within_x + within_y) / (size * (size - 1)) - 2 * across / (size * size)
        return float(mmd.mean())

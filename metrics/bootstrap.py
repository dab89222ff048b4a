"""Bootstrap confidence intervals over videos: the percentile bootstrap, seeded, and the runner's use of it.

A run's numbers are statistics of a sample of videos; the interval says how much they would move with
another sample of the same size. Each resample draws as many videos as were scored, uniformly with
replacement (``numpy.random.default_rng(seed).integers(0, n, n)``, one call per resample, in order), and
the statistic is recomputed on the drawn videos; the interval is the (1-level)/2 and (1+level)/2
percentiles of the resampled values (``numpy.percentile``, linear interpolation)::

    from talking_head.metrics.bootstrap import draw, bootstrap, video_mean

    draws = draw(videos=len(values), resamples=1000, seed=0)   # (1000, n) video indices
    bootstrap(video_mean(values), draws)                       # Interval(low, high, level=0.95, ...)

One draw serves every metric of a run (:func:`run_intervals`), so their intervals come from the same
resampled sets of videos and can be compared. What is recomputed per metric (:mod:`metrics.base`):

* means of per-video values (``Metric.video_means``): the mean of the drawn videos' values, NaN values
  left out, from ``per_video.csv``'s columns; cheap, so :data:`RESAMPLES` resamples;
* set-level statistics (``Metric.resample``: FID, KID, FVD, E-FID, frame-pooled means): the metric
  recomputes them on the drawn videos' kept data; dearer, so the first :data:`SET_LEVEL_RESAMPLES` draws.

Resamples whose value is undefined (NaN: e.g. a draw without any valid frame) are left out of the
percentiles and counted in ``undefined_resamples``; a number whose point estimate is not finite gets no
interval. With fewer than 2 scored videos there is no interval at all. This module imports no torch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from talking_head.metrics.base import Metric
from talking_head.metrics.results import lookup

METHOD = "percentile bootstrap over videos"
LEVEL = 0.95
RESAMPLES = 1000  # means of per-video values: a mean over n values per resample
SET_LEVEL_RESAMPLES = 100  # set-level statistics (Metric.resample): a Frechet distance or KID per resample
SEED = 0
CHECK_RTOL = 1e-9  # a mean of per-video values must give the point estimate back to this (else no interval)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float
    resamples: int  # drawn
    undefined: int = 0  # resamples whose value was NaN, left out of the percentiles

    def as_dict(self, seed: int, note: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {"low": self.low, "high": self.high, "level": self.level, "resamples": self.resamples,
                               "seed": seed, "method": METHOD}
        if self.undefined:
            out["undefined_resamples"] = self.undefined
        if note:
            out["note"] = note
        return out


def draw(videos: int, resamples: int, seed: int = SEED) -> np.ndarray:
    """(resamples, videos) int64 video indices, row r the r-th resample: ``integers(0, videos, videos)`` of
    ``numpy.random.default_rng(seed)``, called once per resample in order."""
    if videos < 1 or resamples < 0:
        raise ValueError(f"need videos >= 1 and resamples >= 0, got {videos} and {resamples}")
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, videos), dtype=np.int64)
    for r in range(resamples):
        out[r] = rng.integers(0, videos, size=videos)
    return out


def percentile_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """The (1-level)/2 and (1+level)/2 percentiles of the finite `values` (``numpy.percentile``, linear)."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    if not len(finite):
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(low), float(high)


def interval_of(values: Sequence[float], level: float = LEVEL) -> Interval:
    """The interval of already resampled `values` (one per resample; NaN: undefined)."""
    array = np.asarray(values, dtype=np.float64)
    low, high = percentile_interval(array, level)
    return Interval(low, high, level, len(array), int(np.isnan(array).sum()))


def bootstrap(statistic: Callable[[np.ndarray], float], draws: np.ndarray, level: float = LEVEL) -> Interval:
    """Percentile interval of `statistic` (video indices -> number) over the rows of `draws`."""
    return interval_of([statistic(indices) for indices in draws], level)


# ------------------------------------------------------------------------------ means of per-video values
def nan_mean(values: np.ndarray) -> float:
    """Mean with NaN values left out (videos without a value), NaN when none is left; no warning."""
    values = np.asarray(values, dtype=np.float64)
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if len(kept) else float("nan")


def mean(values: np.ndarray) -> float:
    """Plain mean (a NaN value makes it NaN)."""
    return float(np.mean(np.asarray(values, dtype=np.float64)))


def video_mean(values: Sequence[float], skip_nan: bool = True) -> Callable[[np.ndarray], float]:
    """Statistic: the mean of the per-video `values` of the drawn videos (NaN-aware unless `skip_nan` is False)."""
    array = np.asarray(values, dtype=np.float64)
    reduce = nan_mean if skip_nan else mean
    return lambda indices: reduce(array[indices])


def mean_of_video_means(columns: Sequence[Sequence[float]]) -> Callable[[np.ndarray], float]:
    """Statistic: the mean over `columns` of each column's NaN-aware mean over the drawn videos (e.g. the mean
    of three angles' stds, each a mean over videos)."""
    arrays = [np.asarray(c, dtype=np.float64) for c in columns]
    return lambda indices: float(np.mean([nan_mean(a[indices]) for a in arrays]))


# ------------------------------------------------------------------------------------------- the run
def _column(rows: Sequence[Mapping[str, Any]], name: str) -> np.ndarray:
    out = np.full(len(rows), np.nan)
    for i, row in enumerate(rows):
        value = row.get(name)
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            out[i] = float(value)
    return out


def _close(a: float, b: float) -> bool:
    return a == b or (math.isfinite(a) and math.isclose(a, b, rel_tol=CHECK_RTOL, abs_tol=1e-300))


def video_mean_intervals(metric: Metric, rows: Sequence[Mapping[str, Any]], results: Mapping[str, Any],
                         draws: np.ndarray, level: float, seed: int) -> tuple[dict[str, Any], dict[str, str]]:
    """Intervals of `metric`'s ``video_means`` from the per-video `rows` (scored videos, commit order);
    and, per key left without one, why."""
    out, why = {}, {}
    for key, columns in metric.video_means.items():
        point = lookup(results, key)
        if point is None or not math.isfinite(point):
            continue
        names = (columns,) if isinstance(columns, str) else tuple(columns)
        arrays = [_column(rows, name) for name in names]
        statistic = video_mean(arrays[0]) if len(arrays) == 1 else mean_of_video_means(arrays)
        everything = statistic(np.arange(len(rows)))
        if not _close(everything, point):
            why[key] = (f"the mean of per-video {', '.join(names)} over all videos ({everything!r}) is not the "
                        f"point estimate ({point!r})")
            continue
        out[key] = bootstrap(statistic, draws, level).as_dict(seed)
    return out, why


def set_level_intervals(metric: Metric, results: Mapping[str, Any], draws: np.ndarray, level: float,
                        seed: int) -> dict[str, Any]:
    """Intervals of the numbers `metric.resample` recomputes (those with a finite point estimate)."""
    values: dict[str, list[float]] = {}
    for r, indices in enumerate(draws):
        resampled = metric.resample(indices)
        if resampled is None:
            return {}
        for key, value in resampled.items():
            if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
                values.setdefault(key, [float("nan")] * r).append(float(value))
        for column in values.values():  # a key this resample did not give: undefined
            if len(column) == r:
                column.append(float("nan"))
    out = {}
    for key, column in values.items():
        point = lookup(results, key)
        if point is None or not math.isfinite(point):
            continue
        out[key] = interval_of(column, level).as_dict(seed, metric.resample_note)
    return out


def run_intervals(metrics: Iterable[Metric], rows: Sequence[Mapping[str, Any]], results: Mapping[str, Any],
                  resamples: int = RESAMPLES, set_level_resamples: int = SET_LEVEL_RESAMPLES, seed: int = SEED,
                  level: float = LEVEL) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every metric's intervals for a run: ``(intervals, record)``.

    `rows`: the per-video values of the scored videos, in the order they were committed; `results`:
    ``{metric name: compute()}``. ``intervals[metric][key] = {"low", "high", "level", "resamples", "seed",
    "method"[, "undefined_resamples", "note"]}`` (a dotted key for a nested number); ``record``: the
    settings, the number of videos, the seconds each metric took and the numbers left without an interval
    and why. `resamples` draws serve the means of per-video values; the first `set_level_resamples` of
    them (at most `resamples`) the set-level statistics. ``resamples=0``: no interval.
    """
    set_level_resamples = min(set_level_resamples, resamples)
    record: dict[str, Any] = {"method": METHOD, "level": level, "seed": seed, "resamples": resamples,
                              "set_level_resamples": set_level_resamples, "videos": len(rows),
                              "sampling": "videos with replacement, as many as were scored; "
                                          "numpy.random.default_rng(seed).integers(0, n, n) per resample; "
                                          "the same draws for every metric"}
    if resamples == 0:
        record["skipped"] = "bootstrap disabled (0 resamples)"
        return {}, record
    if len(rows) < 2:
        record["skipped"] = f"{len(rows)} scored video(s): an interval over videos needs at least 2"
        return {}, record
    draws = draw(len(rows), resamples, seed)
    intervals: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    without: dict[str, dict[str, str]] = {}
    for metric in metrics:
        point = results.get(metric.name)
        if not isinstance(point, Mapping) or "error" in point:
            continue
        started = time.perf_counter()
        found, why = video_mean_intervals(metric, rows, point, draws, level, seed)
        if set_level_resamples:
            found.update(set_level_intervals(metric, point, draws[:set_level_resamples], level, seed))
        seconds[metric.name] = round(time.perf_counter() - started, 3)
        if found:
            intervals[metric.name] = found
        if why:
            without[metric.name] = why
    record["seconds"] = seconds
    if without:
        record["without_interval"] = without
    return intervals, record

"""One run's metric states, exported by a worker and merged by the driver (distributed evaluation).

Usage (``toolkit evaluate --engine ray``)::

    exported = export_state(metrics)          # on a worker, after scoring one pair from reset metrics
    merge_state(driver_metrics, exported)     # on the driver, in pair order: as if it had scored the pair

Each :class:`metrics.base.SharedInput` the metrics forward to is exported and merged once (by class name),
whatever the number of metrics reading it (FID and KID share one Inception pass); each metric's own state
is keyed by its name. :mod:`metrics.base` states the contract of ``state()`` and ``merge()``.
"""

from __future__ import annotations

from typing import Any, Sequence

from talking_head.metrics.base import Metric, SharedInput


def _shared_inputs(metrics: Sequence[Metric]) -> dict[str, SharedInput]:
    """The distinct shared inputs of `metrics`, by class name (one instance of each per run)."""
    found: dict[str, SharedInput] = {}
    for metric in metrics:
        shared = metric.shared
        if shared is None:
            continue
        name = type(shared).__name__
        if found.setdefault(name, shared) is not shared:
            raise ValueError(f"two {name} instances among the metrics: a run shares one")
    return found


def _by_name(metrics: Sequence[Metric]) -> dict[str, Metric]:
    named = {metric.name: metric for metric in metrics}
    if len(named) != len(metrics):
        raise ValueError(f"metric names repeat: {[metric.name for metric in metrics]}")
    return named


def export_state(metrics: Sequence[Metric]) -> dict[str, Any]:
    """``{"shared": {class name: state}, "metrics": {metric name: state}}`` of `metrics`, picklable."""
    return {"shared": {name: shared.state() for name, shared in _shared_inputs(metrics).items()},
            "metrics": {name: metric.state() for name, metric in _by_name(metrics).items()}}


def merge_state(metrics: Sequence[Metric], exported: dict[str, Any]) -> None:
    """Add the videos of :func:`export_state`'s `exported` to `metrics` (built with the same options), each
    shared input once, then each metric. ValueError when the two sets of metrics differ, or a video is open."""
    shared, named = _shared_inputs(metrics), _by_name(metrics)
    for what, mine, theirs in (("shared inputs", shared, exported["shared"]), ("metrics", named, exported["metrics"])):
        if set(mine) != set(theirs):
            raise ValueError(f"the exported {what} ({', '.join(sorted(theirs))}) are not these "
                             f"({', '.join(sorted(mine))})")
    open_ = [metric.name for metric in metrics if metric._video_open]
    if open_:  # checked first, so that nothing is merged into some of them only
        raise ValueError(f"cannot merge while a video is open: {', '.join(open_)}")
    for name, instance in shared.items():
        instance.merge(exported["shared"][name])
    for name, metric in named.items():
        metric.merge(exported["metrics"][name])

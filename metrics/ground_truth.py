"""Every number next to the ground truth's: the value of the same metric on the real clips.

A number alone does not say whether it is good: ground-truth HDTF clips get LSE-C values from below 1 to
above 8 depending on the scoring chain, and a pose std or blink rate has no better direction at all. So
``summary.json`` holds, beside ``results``, the ground truth's value of every leaderboard number
(``ground_truth[metric][key] = {"value", "how"}``), where the registry says where to find it
(:class:`metrics.registry.ResultColumn`):

* ``measured``: the metric scored the reference videos too, with the same frames and settings (LSE, NIQE,
  pose std, blink rate; their reference-side work is cached by content where it costs a network pass);
* ``identity``: a metric that compares generated with reference gives the reference compared with itself
  by definition (FID 0, SSIM 1, LMD 0).

For statistics whose ideal is the ground truth's value rather than an extreme (pose std, blink rate, LSE-C
of real speech) the THEval score ``1 - |m - gt| / |gt|`` is added under ``ground_truth_normalised``:
1 is the ground truth's value, 0 is a value off by the ground truth's own magnitude. It is not clipped, so
a value off by more than that is negative, and it is undefined (absent) when the ground truth is 0.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from talking_head.metrics import registry
from talking_head.metrics.results import lookup

MEASURED, IDENTITY = "measured on the reference videos", "by definition: the reference against itself"


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def normalised_score(value: float, truth: float) -> Optional[float]:
    """THEval's ``1 - |m - gt| / |gt|`` (None when the ground truth is 0)."""
    if truth == 0:
        return None
    return 1.0 - abs(value - truth) / abs(truth)


def anchor(results: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, float]]]:
    """The ground truth's value of every registered leaderboard number in `results` (``{metric: {key:
    {"value", "how"}}}``) and the normalised scores (``{metric: {key: score}}``)."""
    truths: dict[str, dict[str, Any]] = {}
    scores: dict[str, dict[str, float]] = {}
    for entry, column in registry.columns():
        found = results.get(entry.name)
        if not isinstance(found, dict) or "error" in found:
            continue
        if column.ground_truth:
            truth, how = _number(lookup(found, column.ground_truth)), MEASURED
        elif column.identity is not None:
            truth, how = column.identity, IDENTITY
        else:
            continue
        if truth is None:
            continue
        truths.setdefault(entry.name, {})[column.key] = {"value": truth, "how": how}
        value = _number(found.get(column.key))
        if column.normalised and value is not None and (score := normalised_score(value, truth)) is not None:
            scores.setdefault(entry.name, {})[column.key] = score
    return truths, scores

"""The columns a leaderboard can show: one per number `toolkit evaluate` writes, with the direction that is better
(both read from the metric registry).

A column reads one value from a run's ``summary.json`` (``results[metric][key]``), and its confidence
interval where the run has one (``intervals[metric][key]``: ``low``, ``high``; see metrics.bootstrap). Paper
tables name their own metrics and say which column each one is compared with (``leaderboards/papers/*.yaml``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

from talking_head.metrics import registry

LOWER, HIGHER = "lower", "higher"


@dataclasses.dataclass(frozen=True)
class Column:
    """One number per row. `better` is "lower", "higher" or None (a statistic to compare with the
    ground-truth row, such as the blink rate, where neither direction is better)."""

    id: str
    label: str
    better: Optional[str]
    metric: str  # the summary.json results entry ...
    key: str  # ... and the value in it
    unit: str = ""
    description: str = ""

    @property
    def arrow(self) -> str:
        return {LOWER: "↓", HIGHER: "↑"}.get(self.better or "", "")

    def value(self, summary: dict[str, Any]) -> Optional[float]:
        """This column's value in a summary.json (None when the metric did not run or gave no number)."""
        value = (summary.get("results", {}).get(self.metric) or {}).get(self.key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)

    def interval(self, summary: dict[str, Any]) -> Optional[tuple[float, float]]:
        """This column's (low, high) confidence interval in a summary.json, None when it has none."""
        found = ((summary.get("intervals") or {}).get(self.metric) or {}).get(self.key)
        if not isinstance(found, dict):
            return None
        bounds = (found.get("low"), found.get("high"))
        if any(isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b) for b in bounds):
            return None
        return float(bounds[0]), float(bounds[1])

    def ground_truth(self, summary: dict[str, Any]) -> Optional[float]:
        """The ground truth's value of this column in a summary.json (``ground_truth[metric][key]``)."""
        found = ((summary.get("ground_truth") or {}).get(self.metric) or {}).get(self.key)
        value = found.get("value") if isinstance(found, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)

    def normalised(self, summary: dict[str, Any]) -> Optional[float]:
        """The run's ground-truth-normalised score of this column, where it applies."""
        value = ((summary.get("ground_truth_normalised") or {}).get(self.metric) or {}).get(self.key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        return float(value)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "arrow": self.arrow}


# One column per number a registered metric declares (metrics.registry), in the registry's display order.
COLUMNS: dict[str, Column] = {
    column.id: Column(column.id, column.label, column.direction, entry.name, column.key, column.unit, column.description)
    for entry, column in registry.columns()
}

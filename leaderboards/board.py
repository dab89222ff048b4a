"""A leaderboard as plain data: columns, rows (runs of ours and, optionally, a paper's numbers), notes.

Built from run directories by :func:`leaderboards.runs.leaderboard_from_runs`; written as markdown, CSV and
a static HTML page by :mod:`leaderboards.render`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

from talking_head.leaderboards.columns import HIGHER, LOWER, Column

REFERENCE_MODELS = ("ground-truth",)  # rows that show the reference itself (papers: "Ground Truth")


@dataclasses.dataclass
class Row:
    """One method's numbers. `values` maps column id -> number or None; `notes` says why a value is
    missing (column id -> reason); `provenance` is what a reader may want to check (flat text);
    `intervals` maps column id -> (low, high), the run's confidence interval where it has one."""

    label: str
    model: str
    source: str  # "run" (ours) or "paper"
    values: dict[str, Optional[float]]
    notes: dict[str, str] = dataclasses.field(default_factory=dict)
    provenance: dict[str, str] = dataclasses.field(default_factory=dict)
    run_id: Optional[str] = None
    intervals: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    # column id -> THEval's ground-truth-normalised score 1 - |m - gt| / |gt| (metrics.ground_truth)
    normalised: dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Leaderboard:
    title: str
    columns: list[Column]
    rows: list[Row]
    notes: list[str] = dataclasses.field(default_factory=list)
    created: str = ""
    software: dict[str, str] = dataclasses.field(default_factory=dict)

    def best(self, column: Column) -> set[int]:
        """Indices of the rows holding the best value of `column` (ties: all of them; none without a direction).
        Ground truth is the reference the others are measured against, not a competitor: it is never best."""
        if column.better not in (LOWER, HIGHER):
            return set()
        values = {i: row.values.get(column.id) for i, row in enumerate(self.rows) if row.model not in REFERENCE_MODELS}
        finite = {i: v for i, v in values.items() if v is not None and math.isfinite(v)}
        if not finite:
            return set()
        target = min(finite.values()) if column.better == LOWER else max(finite.values())
        return {i for i, v in finite.items() if v == target}

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": [c.to_dict() for c in self.columns],
            "rows": [dataclasses.asdict(r) for r in self.rows],
            "best": {c.id: sorted(self.best(c)) for c in self.columns},
            "notes": list(self.notes),
            "created": self.created,
            "software": dict(self.software),
        }

"""What a run writes: ``per_video.csv`` (one row per pair, scored or excluded) and ``summary.json``.

``summary.json`` holds each metric's ``compute()`` under ``results[metric]`` and, beside it, the confidence
intervals (:mod:`metrics.bootstrap`) under ``intervals[metric][key]`` (``low``, ``high``, ``level``,
``resamples``, ``seed``, ``method``; a nested number's key dotted, e.g. ``reference.lse_d``) with their
settings under ``bootstrap``: one place, so ``results`` keeps exactly what the metrics computed.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from talking_head.toolkit.fileio import atomic_path, write_json

SCORED, EXCLUDED = "scored", "excluded"  # per_video.csv `status`


def write_run(out: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    write_per_video(Path(out) / "per_video.csv", rows)
    write_json(Path(out) / "summary.json", summary)


def write_per_video(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _cell(row.get(k)) for k in columns})


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def plain(value: Any) -> Any:
    """JSON-safe: numpy scalars and arrays to Python, NaN and inf to None (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, Path):
        return str(value)
    return value


def lookup(results: Mapping[str, Any], key: str) -> Optional[float]:
    """The number at a dotted key of a metric's results (``"reference.lse_c"``), None when absent or not a number."""
    value: Any = results
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)

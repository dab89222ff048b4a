"""Golden files (tests/golden/): what the sample's evaluation and leaderboard gave before a refactor, checked
again after it. A refactor may move code but not change a number, so floats are compared to REL and other
numbers exactly. Fields that differ from run to run (timings, machine paths, software versions, dates) are
not stored in the golden files.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"
REL = 1e-9  # same float ops give the same numbers; the slack only absorbs the text round trip


def load_json(name: str):
    return json.loads((GOLDEN / name).read_text(encoding="utf-8"))


def assert_unchanged(actual, golden, where: str, *, text: bool = True) -> None:
    """Every number of `golden` is in `actual` at the same place: integers, booleans and None equal, floats
    within REL (NaN where the golden file has NaN). Strings are compared too unless `text` is False (messages
    may be reworded without changing a number). Keys `actual` has beyond the golden ones are new fields and
    pass. `where` names the place of a difference in the message."""
    if isinstance(golden, dict):
        missing = sorted(set(golden) - set(actual)) if isinstance(actual, dict) else golden
        assert not missing, f"{where}: {missing} missing (it holds {actual!r})"
        for key, value in golden.items():
            assert_unchanged(actual[key], value, f"{where}.{key}", text=text)
    elif isinstance(golden, list):
        assert isinstance(actual, list) and len(actual) == len(golden), f"{where}: {actual!r} != golden {golden!r}"
        for index, (a, g) in enumerate(zip(actual, golden)):
            assert_unchanged(a, g, f"{where}[{index}]", text=text)
    elif isinstance(golden, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        same = (math.isnan(golden) and math.isnan(actual)) or math.isclose(actual, golden, rel_tol=REL, abs_tol=0.0)
        assert same, f"{where}: {actual!r} != golden {golden!r} (relative tolerance {REL})"
    elif isinstance(golden, str) and not text:
        assert isinstance(actual, str), f"{where}: {actual!r} is not text like golden {golden!r}"
    else:
        assert type(actual) is type(golden) and actual == golden, f"{where}: {actual!r} != golden {golden!r}"


# Leaderboard CSV: these columns are text; every other one is a metric (a float, or empty when missing).
TEXT_COLUMNS = ("label", "model", "source", "provenance")
# What changes from run to run without a number changing: machine paths, software versions, timings and dates,
# and the file hashes. The dataset's rows record where its source videos were, so its hash (and the run ids
# made from it) differs in every temporary folder; a weights file's hash covers its metadata too.
UNSTABLE_COLUMNS = ("run_id",)
UNSTABLE_PROVENANCE = ("run", "checkpoint", "dataset", "software", "seconds", "created", "dataset sha256", "weights")


def stable_leaderboard_csv(text: str) -> str:
    """A leaderboard.csv without the columns and provenance entries that change from run to run (the golden
    file's form)."""
    rows = [{k: v for k, v in row.items() if k not in UNSTABLE_COLUMNS} for row in csv.DictReader(io.StringIO(text))]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else list(TEXT_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        provenance = json.loads(row["provenance"])
        stable = {k: v for k, v in provenance.items() if k not in UNSTABLE_PROVENANCE}
        writer.writerow({**row, "provenance": json.dumps(stable, ensure_ascii=False)})
    return out.getvalue()


def leaderboard_values(text: str) -> list[dict]:
    """The rows of a leaderboard.csv in stable form, metric columns as floats (None when empty)."""
    rows = csv.DictReader(io.StringIO(stable_leaderboard_csv(text)))
    return [{k: v if k in TEXT_COLUMNS else (float(v) if v else None) for k, v in row.items()} for row in rows]

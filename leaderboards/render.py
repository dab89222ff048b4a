"""Write a :class:`~leaderboards.board.Leaderboard` as markdown, CSV and a self-contained HTML page.

Numbers are shown with :data:`SIGNIFICANT` significant digits for the largest value of each column, and
every value of that column with the same number of decimals, so a column's numbers line up and compare
digit by digit. A value with a confidence interval (a run scored with ``--bootstrap``) is followed by it,
``12.34 [11.90, 12.80]``, with the column's decimals. The CSV keeps full precision (the interval as
``<column>_low`` / ``<column>_high``): it is for re-analysis, rounding is for reading.

The HTML page (``templates/index.html``) builds its table, sorting and bar charts in plain JavaScript from
the board embedded as JSON; it loads nothing from the network.
"""

from __future__ import annotations

import csv
import html
import importlib.resources
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Optional

from talking_head.leaderboards import videos as video_section
from talking_head.leaderboards.board import Leaderboard, Row
from talking_head.leaderboards.columns import HIGHER, LOWER, Column
from talking_head.toolkit.fileio import atomic_path

SIGNIFICANT = 4
MISSING = "–"  # en dash: a value that is absent, not a zero
BETTER_TEXT = {
    LOWER: "lower is better",
    HIGHER: "higher is better",
    None: "no better direction: compare with ground truth",
}


# -- numbers ----------------------------------------------------------------------------------------------


def _finite(value: Optional[float]) -> bool:
    return value is not None and math.isfinite(value)


def column_decimals(board: Leaderboard, column: Column) -> int:
    """Decimals that give the column's largest magnitude SIGNIFICANT significant digits (at least 0)."""
    magnitudes = [abs(v) for row in board.rows if _finite(v := row.values.get(column.id))]
    largest = max(magnitudes, default=0.0)
    if largest == 0.0:
        return SIGNIFICANT - 1
    return max(0, SIGNIFICANT - 1 - math.floor(math.log10(largest)))


def format_value(value: Optional[float], decimals: int) -> str:
    """`value` with `decimals` decimals; MISSING for None (inf and nan print as such)."""
    return MISSING if value is None else f"{value:.{decimals}f}"


def formatted_values(board: Leaderboard) -> dict[str, list[str]]:
    """Column id -> the displayed text of each row's value, in row order."""
    out = {}
    for column in board.columns:
        decimals = column_decimals(board, column)
        out[column.id] = [format_value(row.values.get(column.id), decimals) for row in board.rows]
    return out


def formatted_intervals(board: Leaderboard) -> dict[str, list[Optional[str]]]:
    """Column id -> each row's interval as displayed, ``[low, high]`` with the column's decimals (None: none)."""
    out = {}
    for column in board.columns:
        decimals = column_decimals(board, column)
        out[column.id] = [None if (bounds := row.intervals.get(column.id)) is None
                          else f"[{bounds[0]:.{decimals}f}, {bounds[1]:.{decimals}f}]" for row in board.rows]
    return out


def header(column: Column) -> str:
    """The column's label with its arrow, e.g. "M-LMD ↓"."""
    return f"{column.label} {column.arrow}".rstrip()


def cell_notes(board: Leaderboard) -> list[tuple[Row, list[str], str]]:
    """(row, column labels, note) for the per-value notes (mostly why a value is missing), one entry per
    distinct note of a row with the columns it applies to, in row then column order. A note on an id that
    is not a column of this board keeps the id as label."""
    labels = {c.id: c.label for c in board.columns}
    order = {c.id: i for i, c in enumerate(board.columns)}
    out = []
    for row in board.rows:
        by_note: dict[str, list[str]] = {}
        for column_id in sorted(row.notes, key=lambda cid: order.get(cid, len(order))):
            by_note.setdefault(row.notes[column_id], []).append(labels.get(column_id, column_id))
        out += [(row, columns, note) for note, columns in by_note.items()]
    return out


# -- markdown ---------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_|<>\[\]])")


def _md(text: str) -> str:
    """Plain text as markdown inline text: special characters escaped, newlines joined."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def markdown(board: Leaderboard) -> str:
    texts = formatted_values(board)
    spans = formatted_intervals(board)
    best = {c.id: board.best(c) for c in board.columns}
    lines = [f"# {_md(board.title)}", ""]

    lines.append("| Method | " + " | ".join(_md(header(c)) for c in board.columns) + " |")
    lines.append("|:--|" + "--:|" * len(board.columns))
    for i, row in enumerate(board.rows):
        label = f"*{_md(row.label)}* (paper)" if row.source == "paper" else _md(row.label)
        cells = [f"**{texts[c.id][i]}**" if i in best[c.id] else texts[c.id][i] for c in board.columns]
        cells = [cell if spans[c.id][i] is None else f"{cell} {spans[c.id][i]}"  # digits: nothing to escape
                 for c, cell in zip(board.columns, cells)]
        cells = [cell if c.id not in row.normalised else f"{cell} (GT-norm {row.normalised[c.id]:.2f})"
                 for c, cell in zip(board.columns, cells)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    legend = f"Best value per column in **bold**; {MISSING}: no value."
    if any(row.intervals for row in board.rows):
        legend += " [low, high] after a value: its confidence interval (see the notes)."
    if any(row.normalised for row in board.rows):
        legend += " (GT-norm x): the value's ground-truth-normalised score, 1 at the ground truth's value."
    if any(row.source == "paper" for row in board.rows):
        legend += " Rows marked (paper) are the numbers a paper published, not runs of ours."
    lines += ["", legend]

    lines += ["", "## Columns", ""]
    for c in board.columns:
        unit = f", {_md(c.unit)}" if c.unit else ""
        lines.append(f"- **{_md(header(c))}** ({BETTER_TEXT[c.better]}{unit}): {_md(c.description)}")

    notes = [_md(n) for n in board.notes]
    notes += [f"{_md(row.label)} ({_md(', '.join(labels))}): {_md(note)}" for row, labels, note in cell_notes(board)]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]

    provenance = [row for row in board.rows if row.provenance]
    if provenance:
        lines += ["", "## Provenance", ""]
        for row in provenance:
            entries = "; ".join(f"{_md(k)}: {_md(v)}" for k, v in row.provenance.items())
            lines.append(f"- **{_md(row.label)}**: {entries}")

    footer = [f"Created {board.created}"] if board.created else []
    if board.software:
        footer.append("software: " + ", ".join(f"{name} {version}" for name, version in board.software.items()))
    if footer:
        lines += ["", f"_{_md(' · '.join(footer))}_"]
    return "\n".join(lines) + "\n"


def write_markdown(board: Leaderboard, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(markdown(board), encoding="utf-8")
    return Path(path)


# -- CSV --------------------------------------------------------------------------------------------------


def write_csv(board: Leaderboard, path: str | os.PathLike) -> Path:
    """One line per row: label, model, source, run_id, one column per metric id (full precision, empty
    when missing), ``<id>_low`` and ``<id>_high`` for each column some row has an interval in, ``<id>_gt_norm``
    for each column some row has a ground-truth-normalised score in, provenance as a JSON object."""
    spanned = [c for c in board.columns if any(c.id in row.intervals for row in board.rows)]
    anchored = [c for c in board.columns if any(c.id in row.normalised for row in board.rows)]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["label", "model", "source", "run_id", *(c.id for c in board.columns),
                             *(f"{c.id}_{end}" for c in spanned for end in ("low", "high")),
                             *(f"{c.id}_gt_norm" for c in anchored), "provenance"])
            for row in board.rows:
                values = [row.values.get(c.id) for c in board.columns]
                bounds = [b for c in spanned for b in row.intervals.get(c.id, (None, None))]
                scores = [row.normalised.get(c.id) for c in anchored]
                writer.writerow([row.label, row.model, row.source, row.run_id or "",
                                 *("" if v is None else repr(float(v)) for v in values + bounds + scores),
                                 json.dumps(row.provenance, ensure_ascii=False)])
    return Path(path)


# -- HTML -------------------------------------------------------------------------------------------------


def page_data(board: Leaderboard, videos: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """What the page's script reads: ``board.to_dict()`` plus the displayed text of each value (formatted
    here, so the page and the markdown agree) and the per-value notes. Non-finite values become null, as
    JSON has no inf or nan; their text still says what they were. `videos`: the Videos section's data
    (:func:`leaderboards.videos.collect`), under ``videos``."""
    data = board.to_dict()
    for row in data["rows"]:
        row["values"] = {k: v if _finite(v) else None for k, v in row["values"].items()}
        row["intervals"] = {k: list(v) for k, v in row["intervals"].items() if all(_finite(b) for b in v)}
        if isinstance(row.get("normalised"), dict):  # ground-truth-normalised scores, where the board has them
            row["normalised"] = {k: v if _finite(v) else None for k, v in row["normalised"].items()}
    data["text"] = formatted_values(board)
    data["interval_text"] = formatted_intervals(board)
    data["better_text"] = {c.id: BETTER_TEXT[c.better] for c in board.columns}
    data["cell_notes"] = [{"row": row.label, "columns": labels, "note": note}
                          for row, labels, note in cell_notes(board)]
    if videos is not None:
        data["videos"] = videos
    return data


def _script_json(data: Any) -> str:
    """JSON safe inside a <script> element: "<", ">" and "&" escaped as \\u00XX, so no string in the data
    can close the element ("</script>") or open a comment."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _template(name: str) -> str:
    return (importlib.resources.files("talking_head.leaderboards") / "templates" / name).read_text("utf-8")


def page(board: Leaderboard, videos: Optional[dict[str, Any]] = None) -> str:
    """The page; with `videos` holding clips, its Videos section (``templates/videos.html``) too."""
    values = {"title": html.escape(board.title), "data": _script_json(page_data(board, videos)),
              "videos": _template("videos.html") if videos and videos.get("clips") else ""}
    # One pass, so a title that happens to contain "{{data}}" is not filled in again.
    return re.sub(r"\{\{(title|data|videos)\}\}", lambda m: values[m.group(1)], _template("index.html"))


def write_html(board: Leaderboard, path: str | os.PathLike, videos: Optional[dict[str, Any]] = None) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(page(board, videos), encoding="utf-8")
    return Path(path)


def write_all(board: Leaderboard, out_dir: str | os.PathLike, runs: str | os.PathLike | None = None,
              bundle: bool = False) -> dict[str, Path]:
    """Write leaderboard.md, leaderboard.csv and index.html into `out_dir`; returns {"md", "csv", "html"}.
    `runs`: the folder of run directories the board was made from; the page then shows their videos
    (:mod:`leaderboards.videos`, which writes the landmark files under ``out_dir/media/``), and `bundle`
    copies the videos there too, so `out_dir` plays without the runs."""
    out_dir = Path(out_dir)
    if bundle and runs is None:
        raise ValueError("bundle=True needs the runs folder (runs=...) to copy the videos from")
    clips = None
    if runs is not None:
        decimals = {c.id: column_decimals(board, c) for c in board.columns}
        clips = video_section.collect(board, runs, out_dir, decimals, bundle=bundle)
    return {
        "md": write_markdown(board, out_dir / "leaderboard.md"),
        "csv": write_csv(board, out_dir / "leaderboard.csv"),
        "html": write_html(board, out_dir / "index.html", clips),
    }

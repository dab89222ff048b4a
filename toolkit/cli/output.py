"""How the commands write for people and for programs: ``--format table|json|csv``.

A table on a terminal takes the terminal's width; written to a pipe or a file it is never cut or folded.
JSON and CSV go to stdout with nothing else there (messages and progress go to stderr), every field whole.
"""

import csv
import json
import math
import sys
from enum import Enum
from typing import Annotated, Any, Optional, Sequence

import typer
from rich.console import Console


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOption = Annotated[OutputFormat, typer.Option(
    "--format", "-f", case_sensitive=False,
    help="table (for people), json or csv (for programs: every field whole, nothing else on stdout).")]

PIPE_WIDTH = 100_000  # a console this wide never cuts or folds a cell: the table keeps its natural width


def stdout_console() -> Console:
    """The console for stdout: a terminal's own width; written to a pipe or a file, wide enough that no field
    is truncated or folded (the table takes its natural width)."""
    if sys.stdout.isatty():
        return Console()
    return Console(width=PIPE_WIDTH, soft_wrap=True)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no inf/nan (json.dumps would write Infinity, which strict parsers refuse)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def write_records(records: Sequence[dict[str, Any]], fmt: "OutputFormat | str", fields: Sequence[str],
                  document: Optional[dict[str, Any]] = None) -> None:
    """Rows as JSON (a list of objects, or `document` with the rows under its "rows" key) or CSV (a header
    of `fields`, lists joined with ";"), to stdout and nothing else."""
    fmt = OutputFormat(fmt)
    rows = [{k: _plain(r.get(k)) for k in fields} for r in records]
    if fmt is OutputFormat.json:
        out = rows if document is None else {**_plain(document), "rows": rows}
        sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    elif fmt is OutputFormat.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(fields), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ";".join(map(str, v)) if isinstance(v, list) else ("" if v is None else v)
                             for k, v in row.items()})
    else:
        raise ValueError(f"write_records writes json or csv, not {fmt.value}")
    sys.stdout.flush()

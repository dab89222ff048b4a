"""Published comparison tables as data: ``leaderboards/papers/*.yaml``, checked on every load.

A paper table is what a paper printed. Each row is a method, and each cell holds the number plus the text
as printed (``"0.00"``, so trailing zeros survive), the bold/underline mark, or the reason the cell has no
number. Each of the paper's metrics names the toolkit column it is compared with (:mod:`leaderboards.columns`),
or none when the toolkit cannot compute it. Nothing is filled in: a table whose numbers could not be
obtained says so (``numbers_available: false``) and lists the toolkit columns a reproduction reports.
::

    from talking_head.leaderboards.papers import load_table, table_ids
    table = load_table("moda-hdtf")
    table.row_for_model("moda").values["lmd"]      # 1.96
    table.row_for_model("moda").printed["lmd"]     # "1.96"

One file per paper::

    paper: MODA (ICCV 2023)
    source: {citation: ..., arxiv: "2307.10008", url: ..., figure: ..., caption: ...}
    metrics:                        # shared by the file's tables, in the paper's column order
      - {id: lmd, label: LMD, better: lower, toolkit_column: m_lmd, computable: true, definition_note: ...}
      - {id: ma, label: MA, better: higher, toolkit_column: null, computable: false, definition_note: ...,
         reason: no published definition}
    tables:
      - id: moda-hdtf
        title: ...
        dataset: hdtf
        dataset_verified: true
        test_set: Testset B from HDTF [50]
        numbers_available: true
        rows:                       # in the paper's order
          - method: MODA
            printed_method: Ours
            venue: null
            marker: null
            model: moda
            values:
              lmd: {value: 1.96, printed: "1.96", emphasis: best}
              ...
          - ...
              lmd: {value: null, printed: "-", missing: why there is no number}

A table without numbers has ``numbers_available: false``, an ``unavailable_reason``, rows with
``values: {}``, and, when the file declares no metrics, ``compare_columns`` (toolkit column ids).
"""

from __future__ import annotations

import collections
import dataclasses
from os import PathLike
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import yaml

from talking_head.leaderboards.columns import COLUMNS, HIGHER, LOWER

EMPHASIS = ("best", "second")  # bold, underlined (the captions' "best" and "second-best")

_FILE_KEYS = {"paper", "source", "metrics", "tables"}
_SOURCE_KEYS = {"citation", "arxiv", "url", "figure", "caption"}
_METRIC_KEYS = {"id", "label", "better", "toolkit_column", "computable", "definition_note"}
_TABLE_KEYS = {"id", "title", "dataset", "dataset_verified", "test_set", "numbers_available", "rows"}
_ROW_KEYS = {"method", "printed_method", "venue", "marker", "model", "values"}


class PaperTableError(ValueError):
    """A paper-table file that breaks the schema, or an unknown table id."""


@dataclasses.dataclass(frozen=True)
class PaperMetric:
    """One metric column of a paper. `toolkit_column` is the :data:`~leaderboards.columns.COLUMNS` id it is
    compared with, or None when the toolkit cannot compute it (`computable` False, `reason` says why)."""

    id: str
    label: str
    better: str
    toolkit_column: Optional[str]
    computable: bool
    note: str  # how the paper defines it, as far as known, and what the toolkit computes instead
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class PaperRow:
    """One method of a paper table. `values` has every metric of the table: a float, or None with the
    reason in `missing`. `printed` is each number's text as printed, `emphasis` its mark ("best" for bold,
    "second" for underlined) where the paper printed one."""

    method: str
    printed_method: Optional[str]  # the row's name in the table ("Ours †"); None when no table was seen
    venue: Optional[str]
    marker: Optional[str]
    model: Optional[str]  # the toolkit model this row corresponds to, if any
    values: dict[str, Optional[float]]
    printed: dict[str, str]
    emphasis: dict[str, str]
    missing: dict[str, str]


@dataclasses.dataclass(frozen=True)
class PaperTable:
    """One table of a paper on one test set, with the file-level `source` and `metrics` of its file."""

    id: str
    paper: str
    title: str
    dataset: str
    dataset_verified: bool  # False when only a secondary source names the dataset
    test_set: Optional[str]
    source: dict[str, Optional[str]]
    metrics: list[PaperMetric]
    rows: list[PaperRow]
    numbers_available: bool
    unavailable_reason: str
    compare_columns: list[str]  # toolkit columns to show next to the table (the metrics' columns, or chosen)
    note: str
    path: str  # the file the table was loaded from

    def row_for_model(self, model: str) -> Optional[PaperRow]:
        """The row that corresponds to toolkit model `model`, or None when the paper has none."""
        return next((row for row in self.rows if row.model == model), None)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping: PyYAML keeps the last one silently,
    which would drop a cell without a trace."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict:
    counts = collections.Counter(k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode))
    for key, count in counts.items():
        if count > 1:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", node.start_mark)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_file(path: Union[str, PathLike]) -> list[PaperTable]:
    """The tables of one paper file, checked by :func:`validate`."""
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.load(f, Loader=_StrictLoader)
        except yaml.YAMLError as exc:
            raise PaperTableError(f"{path}: not valid YAML ({exc})") from exc
    return validate(data, path)


def load_files(paths: Iterable[Union[str, PathLike]]) -> dict[str, PaperTable]:
    """The tables of several paper files by id; an id defined twice is an error."""
    tables: dict[str, PaperTable] = {}
    for path in paths:
        for table in load_file(path):
            if table.id in tables:
                raise PaperTableError(f"{path}: table id {table.id!r} is also defined in {tables[table.id].path}")
            tables[table.id] = table
    return tables


class _Check:
    """Type and key checks whose errors all name the file being read."""

    def __init__(self, path: Union[str, PathLike]) -> None:
        self.path = path

    def error(self, message: str) -> PaperTableError:
        return PaperTableError(f"{self.path}: {message}")

    def mapping(self, value: Any, where: str, required: set[str], optional: Iterable[str] = ()) -> dict:
        if not isinstance(value, dict):
            raise self.error(f"{where}: expected a mapping, got {type(value).__name__}")
        if required - value.keys():
            raise self.error(f"{where}: missing {sorted(required - value.keys())}")
        unknown = value.keys() - required - set(optional)
        if unknown:  # a misspelt key would otherwise be ignored
            raise self.error(f"{where}: unknown keys {sorted(unknown)}")
        return value

    def text(self, value: Any, where: str, nullable: bool = False) -> Optional[str]:
        if value is None and nullable:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"{where}: expected {'null or ' if nullable else ''}non-empty text, got {value!r}")
        return value

    def flag(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(f"{where}: expected true or false, got {value!r}")
        return value

    def unique(self, ids: list[str], what: str) -> None:
        duplicates = sorted(i for i, n in collections.Counter(ids).items() if n > 1)
        if duplicates:
            raise self.error(f"{what} given more than once: {duplicates}")


def validate(data: Any, path: Union[str, PathLike]) -> list[PaperTable]:
    """Check one file's parsed YAML against the schema and return its tables.

    Raises :class:`PaperTableError` naming `path` and the first problem found.
    """
    check = _Check(path)
    data = check.mapping(data, "top level", _FILE_KEYS)
    paper = check.text(data["paper"], "paper")
    source = check.mapping(data["source"], "source", _SOURCE_KEYS, {"note"})
    source = {key: check.text(value, f"source.{key}", nullable=key not in ("citation", "url"))
              for key, value in source.items()}
    if not isinstance(data["metrics"], list):
        raise check.error("metrics: expected a list (empty when the paper's metrics are unknown)")
    metrics = [_metric(check, item, i) for i, item in enumerate(data["metrics"])]
    check.unique([m.id for m in metrics], "metric ids")
    if not isinstance(data["tables"], list) or not data["tables"]:
        raise check.error("tables: expected a non-empty list")
    tables = [_table(check, item, i, paper, source, metrics) for i, item in enumerate(data["tables"])]
    check.unique([t.id for t in tables], "table ids")
    return tables


def _metric(check: _Check, item: Any, index: int) -> PaperMetric:
    item = check.mapping(item, f"metrics[{index}]", _METRIC_KEYS, {"reason"})
    metric_id = check.text(item["id"], f"metrics[{index}].id")
    where = f"metric {metric_id!r}"
    if item["better"] not in (LOWER, HIGHER):
        raise check.error(f"{where}: better must be {LOWER!r} or {HIGHER!r}, got {item['better']!r}")
    column = check.text(item["toolkit_column"], f"{where}.toolkit_column", nullable=True)
    if column is not None and column not in COLUMNS:
        raise check.error(f"{where}: toolkit_column {column!r} is not a leaderboard column ({sorted(COLUMNS)})")
    if column is not None and COLUMNS[column].better not in (None, item["better"]):
        raise check.error(f"{where}: {item['better']} is better, but column {column!r} has {COLUMNS[column].better}")
    computable = check.flag(item["computable"], f"{where}.computable")
    if computable != (column is not None):
        raise check.error(f"{where}: computable must be true exactly when toolkit_column is set "
                          f"(computable {computable}, toolkit_column {column!r})")
    if computable == ("reason" in item):
        raise check.error(f"{where}: a reason is required when, and only when, the metric is not computable")
    return PaperMetric(
        id=metric_id, label=check.text(item["label"], f"{where}.label"), better=item["better"],
        toolkit_column=column, computable=computable,
        note=check.text(item["definition_note"], f"{where}.definition_note"),
        reason="" if computable else check.text(item["reason"], f"{where}.reason"),
    )


def _table(check: _Check, item: Any, index: int, paper: str, source: dict[str, Optional[str]],
           metrics: list[PaperMetric]) -> PaperTable:
    item = check.mapping(item, f"tables[{index}]", _TABLE_KEYS, {"unavailable_reason", "compare_columns", "note"})
    table_id = check.text(item["id"], f"tables[{index}].id")
    where = f"table {table_id!r}"
    available = check.flag(item["numbers_available"], f"{where}.numbers_available")
    if available and not metrics:
        raise check.error(f"{where}: numbers_available is true but the file declares no metrics")
    if available == ("unavailable_reason" in item):
        raise check.error(f"{where}: unavailable_reason is required when, and only when, numbers_available is false")

    # The columns to compare with come from the metrics when the paper's metrics are known; only a file
    # without metrics chooses them, so the two can never disagree.
    if metrics:
        if "compare_columns" in item:
            raise check.error(f"{where}: compare_columns is only for files without metrics "
                              "(otherwise it is the metrics' toolkit_column)")
        compare = [m.toolkit_column for m in metrics if m.toolkit_column is not None]
    else:
        compare = item.get("compare_columns")
        if not isinstance(compare, list) or not compare:
            raise check.error(f"{where}: a file without metrics needs a non-empty compare_columns list")
        unknown = [c for c in compare if c not in COLUMNS]
        if unknown:
            raise check.error(f"{where}: compare_columns {unknown} are not leaderboard columns ({sorted(COLUMNS)})")
        check.unique(compare, f"{where}: compare_columns")

    if not isinstance(item["rows"], list) or not item["rows"]:
        raise check.error(f"{where}: rows: expected a non-empty list")
    rows = [_row(check, row, f"{where} row {i}", [m.id for m in metrics], available)
            for i, row in enumerate(item["rows"])]
    check.unique([r.method for r in rows], f"{where}: row methods")
    check.unique([r.model for r in rows if r.model is not None], f"{where}: row models")

    return PaperTable(
        id=table_id, paper=paper, title=check.text(item["title"], f"{where}.title"),
        dataset=check.text(item["dataset"], f"{where}.dataset"),
        dataset_verified=check.flag(item["dataset_verified"], f"{where}.dataset_verified"),
        test_set=check.text(item["test_set"], f"{where}.test_set", nullable=True), source=source,
        metrics=list(metrics), rows=rows, numbers_available=available,
        unavailable_reason="" if available else check.text(item["unavailable_reason"], f"{where}.unavailable_reason"),
        compare_columns=list(compare),
        note=check.text(item["note"], f"{where}.note") if "note" in item else "",
        path=str(check.path),
    )


def _row(check: _Check, item: Any, where: str, metric_ids: list[str], available: bool) -> PaperRow:
    item = check.mapping(item, where, _ROW_KEYS)
    method = check.text(item["method"], f"{where}.method")
    where = f"{where} ({method})"
    cells = item["values"]
    if not isinstance(cells, dict):
        raise check.error(f"{where}: values: expected a mapping of metric id -> cell")
    undeclared = [k for k in cells if k not in metric_ids]
    if undeclared:
        raise check.error(f"{where}: values for undeclared metrics {undeclared} (declared: {metric_ids})")
    if not available and cells:
        raise check.error(f"{where}: the table has numbers_available false, so its rows hold no values")
    absent = [m for m in metric_ids if m not in cells]
    if available and absent:
        raise check.error(f"{where}: no cell for {absent}; a cell without a number needs `missing: <reason>`")

    values, printed, emphasis, missing = {}, {}, {}, {}
    for metric_id, cell in cells.items():
        at = f"{where}, {metric_id}"
        cell = check.mapping(cell, at, {"value", "printed"}, {"emphasis", "missing"})
        value, shown = cell["value"], check.text(cell["printed"], f"{at}.printed")
        if value is None:
            if "missing" not in cell:
                raise check.error(f"{at}: value is null without a reason (give missing: <why there is no number>)")
            if "emphasis" in cell:
                raise check.error(f"{at}: a missing value cannot be marked {cell['emphasis']!r}")
            missing[metric_id] = check.text(cell["missing"], f"{at}.missing")
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise check.error(f"{at}: value must be a number or null, got {value!r}")
            if "missing" in cell:
                raise check.error(f"{at}: has both a value and a missing reason")
            if _as_float(shown) != value:
                raise check.error(f"{at}: printed text {shown!r} does not read as the value {value!r}")
            if "emphasis" in cell:
                if cell["emphasis"] not in EMPHASIS:
                    raise check.error(f"{at}: emphasis must be one of {list(EMPHASIS)}, got {cell['emphasis']!r}")
                emphasis[metric_id] = cell["emphasis"]
            value = float(value)
        values[metric_id] = value
        printed[metric_id] = shown
    return PaperRow(
        method=method, printed_method=check.text(item["printed_method"], f"{where}.printed_method",
                                                  nullable=not available),
        venue=check.text(item["venue"], f"{where}.venue", nullable=True),
        marker=check.text(item["marker"], f"{where}.marker", nullable=True),
        model=check.text(item["model"], f"{where}.model", nullable=True),
        values=values, printed=printed, emphasis=emphasis, missing=missing,
    )


def _as_float(text: str) -> Optional[float]:
    try:
        return float(text)
    except ValueError:
        return None


def _packaged_tables() -> dict[str, PaperTable]:
    files = sorted(PAPERS_DIR.glob("*.yaml"))
    if not files:  # an install without the package data would otherwise look like a project without papers
        raise PaperTableError(f"{PAPERS_DIR}: no paper tables (*.yaml) found")
    return load_files(files)


PAPERS_DIR = Path(__file__).with_name("papers")
TABLES: dict[str, PaperTable] = _packaged_tables()


def table_ids() -> list[str]:
    return sorted(TABLES)


def load_table(table_id: str) -> PaperTable:
    """The packaged table `table_id` (one of :func:`table_ids`)."""
    if table_id not in TABLES:
        raise PaperTableError(f"unknown paper table {table_id!r}; choose one of {table_ids()}")
    return TABLES[table_id]

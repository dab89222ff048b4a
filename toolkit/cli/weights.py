"""`toolkit weights`: list, fetch, verify and locate the pretrained files the toolkit uses.

Tables go to stdout; errors, "missing"/"corrupt" explanations and download progress go to stderr,
so `toolkit weights path NAME` can be used in shell substitutions. `--format json|csv` (list, verify) writes
every field whole (full sha256, full URL) and nothing else to stdout; a table written to a pipe or a file is
never cut or folded (a terminal gets its own width).

The output helpers here (`FormatOption`, `stdout_console`, `write_records`) are shared by the other listing
commands (`toolkit reproduce --list`, `toolkit evaluate`).
"""

from typing import Annotated, Any, Iterable, Optional, Sequence

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from talking_head.toolkit import weights as w
from talking_head.toolkit.cli.output import FormatOption, OutputFormat, stdout_console, write_records

app = typer.Typer(
    name="weights",
    help=(
        "Pretrained weights used by the metrics and reference models: list them, download them, "
        "check their size and sha256, and print where they live (files placed there by hand are found offline)."
    ),
    no_args_is_help=True,
    add_completion=False,
)

_STATUS_STYLE = {"ok": "green", "unpinned": "yellow", "missing": "red", "corrupt": "bold red"}


NamesArg = Annotated[Optional[list[str]], typer.Argument(help="Registry names (see `toolkit weights list`).", show_default=False)]


def _check_names(names: list[str]) -> None:
    """Exit 2 on an unknown name before doing any work, listing the known ones."""
    for name in names:
        try:
            w.get(name)
        except w.UnknownWeightsError as err:
            typer.echo(f"Error: {err.args[0]}", err=True)
            raise typer.Exit(2) from None


def _status_text(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, ""))


def _file_label(entry: w.WeightFile) -> str:
    if entry.location == "hf_hub":
        return f"{entry.repo_id}@{entry.revision[:7]}: {entry.filename}"
    return entry.filename


def _size_label(entry: w.WeightFile, result: w.VerifyResult) -> str:
    if entry.size is not None:
        return w.human_size(entry.size)
    if result.actual_size is not None:
        return f"{w.human_size(result.actual_size)} (unpublished)"
    return "unpublished"


def _digest_label(entry: w.WeightFile) -> str:
    if entry.sha256:
        return entry.sha256
    if entry.sha256_prefix:
        return f"{entry.sha256_prefix}... (prefix only)"
    return "not published"


@app.command(
    "list",
    epilog="Examples:  toolkit weights list  |  toolkit weights list --long  (adds URL and sha256)",
)
def list_weights(
    long: Annotated[bool, typer.Option("--long", "-l", help="Also show the download URL and the published sha256.")] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Show every registered file: size, status (ok/unpinned/missing/corrupt) and location (--long adds more;
    --format json|csv gives every field)."""
    if fmt is not OutputFormat.table:
        write_records([_list_record(entry, w.verify(entry)) for entry in w.REGISTRY.values()], fmt, LIST_FIELDS)
        return
    names_width = max(len(name) for name in w.REGISTRY)
    table = Table(title="Pretrained weights")
    table.add_column("name", no_wrap=True, min_width=names_width)
    table.add_column("size", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("location", overflow="fold")
    if long:
        table.add_column("consumer", overflow="fold")
        table.add_column("file", overflow="fold")
        table.add_column("url", overflow="fold")
        table.add_column("sha256", overflow="fold")
    for entry in w.REGISTRY.values():
        result = w.verify(entry)
        row = [
            Text(entry.name),
            Text(_size_label(entry, result)),
            _status_text(result.status),
            Text(str(result.path)),
        ]
        if long:
            row += [Text(entry.consumer), Text(_file_label(entry)), Text(entry.url), Text(_digest_label(entry))]
        table.add_row(*row)
    stdout_console().print(table)


LIST_FIELDS = ("name", "status", "size", "actual_size", "path", "location", "consumer", "description", "license",
               "url", "filename", "repo_id", "revision", "extra_files", "alternatives", "sha256", "sha256_prefix",
               "git_blob_sha1", "actual_sha256", "detail")


def _list_record(entry: w.WeightFile, result: w.VerifyResult) -> dict[str, Any]:
    return {"name": entry.name, "status": result.status, "size": entry.size, "actual_size": result.actual_size,
            "path": str(result.path), "location": entry.location, "consumer": entry.consumer,
            "description": entry.description, "license": entry.license, "url": entry.url, "filename": entry.filename,
            "repo_id": entry.repo_id, "revision": entry.revision if entry.location == "hf_hub" else None,
            "extra_files": list(entry.extra_files), "alternatives": list(entry.alternatives), "sha256": entry.sha256,
            "sha256_prefix": entry.sha256_prefix, "git_blob_sha1": entry.git_blob_sha1,
            "actual_sha256": result.actual_sha256,
            "detail": result.detail if result.status != "missing" else "not found"}


class TargetError(ValueError):
    """A --for / --protocol that names nothing known (exit 2)."""


def _parse_metric_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``lse`` or ``lse:preset=mocha,frames=decoded`` -> (name, options)."""
    name, _, rest = spec.partition(":")
    options: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise TargetError(f"--for {spec!r}: options are OPTION=VALUE, e.g. --for lse:preset=mocha")
        options[key.strip()] = value.strip()
    return name.strip(), options


def resolve_targets(names: Sequence[str] = (), metrics: Sequence[str] = (), protocols: Sequence[str] = (),
                    all_: bool = False) -> dict[str, list[str]]:
    """Which registry files to fetch, each with why: ``{file: ["lse (preset=mocha)", "protocol hallo: fvd", ...]}``.

    `metrics` are registry metric names (or aliases), optionally with options (``lse:preset=mocha``);
    `protocols` shipped protocol names or .yaml paths, each metric with the protocol's options. The files
    a metric needs are declared in its registry entry (:meth:`metrics.registry.MetricEntry.weights_for`).
    Raises TargetError for an unknown name, metric, option, option value or protocol.
    """
    from talking_head.metrics import registry

    wanted: dict[str, list[str]] = {}

    def add(files: Iterable[str], why: str) -> None:
        for file in files:
            wanted.setdefault(file, []).append(why)

    if all_:
        add(w.REGISTRY, "--all")
    for name in names:
        try:
            w.get(name)
        except w.UnknownWeightsError as err:
            raise TargetError(err.args[0]) from None
        add([name], "named")

    def add_metric(name: str, options: dict[str, Any], why: str) -> None:
        try:
            entry = registry.entry(name)
        except ValueError as err:
            raise TargetError(str(err)) from None
        import inspect

        accepted = [p for p in inspect.signature(entry.load()).parameters if p not in ("self", "device", "shared")]
        unknown = sorted(set(options) - set(entry.defaults) - set(accepted))
        if unknown:
            known = ", ".join(accepted) or "none"
            raise TargetError(f"metric {entry.name!r} has no option {', '.join(map(repr, unknown))} (options: {known})")
        for option, value in options.items():
            values = entry.option_values(option)
            if values is not None and value not in values:
                known = ", ".join(map(str, values))
                raise TargetError(f"metric {entry.name!r} has no {option} {value!r} (known: {known})")
        shown = ", ".join(f"{k}={v}" for k, v in {**entry.defaults, **options}.items())
        add(entry.weights_for(options), why + (f" ({shown})" if shown else ""))

    for spec in metrics:
        name, options = _parse_metric_spec(spec)
        add_metric(name, options, name)
    if protocols:
        from talking_head.metrics import protocols as protocol_files

        for protocol in protocols:
            try:
                found = protocol_files.load(protocol)
            except ValueError as err:
                raise TargetError(str(err)) from None
            for name, options in found.metrics.items():
                add_metric(name, dict(options or {}), f"protocol {found.name}: {name}")
    for file in wanted:  # a metric declaring a file the weights registry lacks is a bug here, not the user's
        w.get(file)
    return wanted


@app.command(
    epilog=(
        "Examples:  toolkit weights fetch fid-inception syncnet  |  toolkit weights fetch --for lse  |  "
        "toolkit weights fetch --for lse:preset=mocha --for lmd:preset=vico  |  toolkit weights fetch --protocol hallo  |  "
        "toolkit weights fetch --all  |  HF_ENDPOINT=https://hf-mirror.example toolkit weights fetch wav2vec2-base-960h"
    ),
)
def fetch(
    names: NamesArg = None,
    for_: Annotated[Optional[list[str]], typer.Option(
        "--for", metavar="METRIC[:OPTION=VALUE,...]",
        help="Every file a metric needs with these options (default: the metric's defaults), e.g. lse, "
             "lse:preset=mocha, lmd:preset=vico, fvd:variant=disco. Repeatable.", show_default=False)] = None,
    protocol: Annotated[Optional[list[str]], typer.Option(
        "--protocol", metavar="NAME", help="Every file a published protocol's metrics need (see toolkit evaluate "
                           "--list-protocols), or a protocol .yaml file. Repeatable.", show_default=False)] = None,
    all_: Annotated[bool, typer.Option("--all", help="Fetch every registered file.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Download again even if a good copy is present.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be fetched and why.")] = False,
) -> None:
    """Download files (skipping good copies), verifying size and sha256 before they are moved into place:
    named ones, those a metric or protocol needs (--for, --protocol), or all. One progress bar, one summary line."""
    if not names and not all_ and not for_ and not protocol:
        typer.echo("Error: give one or more NAMEs, --for METRIC, --protocol NAME or --all "
                   "(see `toolkit weights list`).", err=True)
        raise typer.Exit(2)
    try:
        wanted = resolve_targets(names or (), for_ or (), protocol or (), all_)
    except TargetError as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(2) from None
    present = [] if force else [name for name in wanted if w.verify(name).usable]
    todo = [name for name in wanted if name not in present]
    if dry_run:
        for name, why in wanted.items():
            state = "present" if name in present else "to fetch"
            typer.echo(f"{name}: {state}  (for {'; '.join(why)})")
        return
    failed: dict[str, str] = {}
    locations: dict[str, str] = {}
    if todo:
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)

        sizes = [w.get(name).size for name in todo]
        total = None if any(size is None for size in sizes) else sum(sizes)  # type: ignore[arg-type]
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      TimeRemainingColumn(), console=Console(stderr=True), redirect_stdout=False,
                      redirect_stderr=False) as bar:
            task = bar.add_task("weights", total=total)
            for k, name in enumerate(todo, 1):
                bar.update(task, description=f"{name} ({k}/{len(todo)})")
                try:
                    locations[name] = str(w.fetch(name, force=force, progress=False,
                                                  on_bytes=lambda n: bar.update(task, advance=n)))
                except w.WeightsError as err:
                    failed[name] = str(err)
            bar.update(task, description=f"{len(todo)} file(s)")
    for name in wanted:
        if name in present:
            typer.echo(f"{name}: already present  {w.path(name)}")
        elif name in failed:
            typer.echo(f"{name}: FAILED\n{failed[name]}", err=True)
        else:
            typer.echo(f"{name}: {w.verify(name).status}  {locations[name]}")
    fetched = len(todo) - len(failed)
    typer.echo(f"{fetched} fetched, {len(present)} already present, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)


@app.command(
    epilog="Examples:  toolkit weights verify  |  toolkit weights verify syncnet arcface-r100",
)
def verify(names: NamesArg = None, fmt: FormatOption = OutputFormat.table) -> None:
    """Check size and sha256. Exit 1 if any file is corrupt, or if a NAME given explicitly is missing."""
    explicit = bool(names)
    targets = list(names) if names else list(w.REGISTRY)
    _check_names(targets)
    results = [w.verify(name) for name in targets]
    if fmt is not OutputFormat.table:
        write_records([_verify_record(r) for r in results], fmt, VERIFY_FIELDS)
    else:
        table = Table(title="Weights verification")
        table.add_column("name", no_wrap=True, min_width=max(len(n) for n in targets))
        table.add_column("status", no_wrap=True)
        table.add_column("detail", overflow="fold")
        table.add_column("path", overflow="fold")
        for result in results:
            table.add_row(Text(result.name), _status_text(result.status), Text(_verify_detail(result)),
                          Text(str(result.path)))
        stdout_console().print(table)
    failing = [r for r in results if r.status == "corrupt" or (explicit and r.status == "missing")]
    for result in failing:
        try:
            w.require(result.name)  # builds the full explanation (expected vs actual, URL, fix)
        except w.WeightsError as err:
            typer.echo(f"\n{err}", err=True)
    if failing:
        raise typer.Exit(1)


VERIFY_FIELDS = ("name", "status", "detail", "path", "expected_size", "actual_size", "expected_sha256",
                 "actual_sha256")


def _verify_detail(result: w.VerifyResult) -> str:
    return result.detail if result.status != "missing" else f"not found; run `toolkit weights fetch {result.name}`"


def _verify_record(result: w.VerifyResult) -> dict[str, Any]:
    return {"name": result.name, "status": result.status, "detail": _verify_detail(result), "path": str(result.path),
            "expected_size": result.expected_size, "actual_size": result.actual_size,
            "expected_sha256": result.expected_sha256, "actual_sha256": result.actual_sha256}


@app.command(
    "path",
    epilog="Example:  python fid.py --weights \"$(toolkit weights path fid-inception)\"",
)
def path_(name: Annotated[str, typer.Argument(help="Registry name (see `toolkit weights list`).", show_default=False)]) -> None:
    """Print where a file is (for Hugging Face models: the snapshot directory). Exit 1 if it is missing."""
    _check_names([name])
    try:
        typer.echo(str(w.path(name)))
    except w.WeightsMissingError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from None

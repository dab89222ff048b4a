"""`toolkit weights`: list, fetch, verify and locate the pretrained files the toolkit uses.

Tables go to stdout; errors, "missing"/"corrupt" explanations and download progress go to stderr,
so `toolkit weights path NAME` can be used in shell substitutions.
"""

from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from talking_head.toolkit import weights as w

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
) -> None:
    """Show every registered file: size, status (ok/unpinned/missing/corrupt) and location (--long adds more)."""
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
    Console().print(table)


@app.command(
    epilog=(
        "Examples:  toolkit weights fetch fid-inception syncnet  |  toolkit weights fetch --all  |  "
        "HF_ENDPOINT=https://hf-mirror.example toolkit weights fetch wav2vec2-base-960h"
    ),
)
def fetch(
    names: NamesArg = None,
    all_: Annotated[bool, typer.Option("--all", help="Fetch every registered file.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Download again even if a good copy is present.")] = False,
) -> None:
    """Download files (skipping good copies), verifying size and sha256 before they are moved into place."""
    if not names and not all_:
        typer.echo("Error: give one or more NAMEs, or --all (see `toolkit weights list`).", err=True)
        raise typer.Exit(2)
    targets = list(w.REGISTRY) if all_ else list(names or [])
    _check_names(targets)
    failed = 0
    for name in targets:
        try:
            location = w.fetch(name, force=force)
        except w.WeightsError as err:
            typer.echo(f"{name}: FAILED\n{err}", err=True)
            failed += 1
            continue
        result = w.verify(name)
        typer.echo(f"{name}: {result.status}  {location}")
    if failed:
        raise typer.Exit(1)


@app.command(
    epilog="Examples:  toolkit weights verify  |  toolkit weights verify syncnet arcface-r100",
)
def verify(names: NamesArg = None) -> None:
    """Check size and sha256. Exit 1 if any file is corrupt, or if a NAME given explicitly is missing."""
    explicit = bool(names)
    targets = list(names) if names else list(w.REGISTRY)
    _check_names(targets)
    table = Table(title="Weights verification")
    table.add_column("name", no_wrap=True, min_width=max(len(n) for n in targets))
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    table.add_column("path", overflow="fold")
    results = [w.verify(name) for name in targets]
    for result in results:
        detail = result.detail if result.status != "missing" else f"not found; run `toolkit weights fetch {result.name}`"
        table.add_row(Text(result.name), _status_text(result.status), Text(detail), Text(str(result.path)))
    Console().print(table)
    failing = [r for r in results if r.status == "corrupt" or (explicit and r.status == "missing")]
    for result in failing:
        try:
            w.require(result.name)  # builds the full explanation (expected vs actual, URL, fix)
        except w.WeightsError as err:
            typer.echo(f"\n{err}", err=True)
    if failing:
        raise typer.Exit(1)


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

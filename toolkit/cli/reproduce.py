"""Reproduce a table: preprocess, train (or load checkpoints), generate, evaluate every row of ours
(with ground truth and the floor baselines), then print the leaderboard and, for a paper's table, the
paper's numbers beside ours with the deltas. Steps already done in the work folder are reused; a table
whose data or weights are missing stops before any work with the list of what to get."""

from pathlib import Path
from typing import List, Optional

import typer

from talking_head.toolkit.cli.output import OutputFormat, stdout_console, write_records

EXAMPLE = ("Examples: toolkit reproduce sample  |  toolkit reproduce moda-hdtf --raw HDTF/videos "
           "--annotations HDTF/HDTF_dataset  |  toolkit reproduce moda-hdtf --dataset data/hdtf30 "
           "--checkpoint moda=runs/moda-paper  |  toolkit reproduce moda-hdtf --raw HDTF/videos --annotations "
           "HDTF/HDTF_dataset --scale cut --steps 2 (the protocol end to end on a CPU)  |  toolkit reproduce --list  "
           "|  toolkit reproduce --list --format json")

LIST_FIELDS = ("id", "title", "data", "models", "config", "floors", "metrics", "lse_preset", "lmd_preset", "weights",
               "paper_table")


def reproduce(
    table: Optional[str] = typer.Argument(None, help="Table: sample, moda-hdtf, moda-lsp, dreamhead-hdtf, "
                                          "dreamhead-mead."),
    work: Optional[Path] = typer.Option(None, "--work", help="Work folder (default outputs/reproduce/TABLE)."),
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="An already preprocessed dataset to use."),
    raw: Optional[Path] = typer.Option(None, "--raw", help="The raw videos to preprocess (HDTF, LSP, MEAD)."),
    annotations: Optional[Path] = typer.Option(None, "--annotations", help="hdtf: the official annotation folder."),
    checkpoint: Optional[List[str]] = typer.Option(None, "--checkpoint", help="MODEL=RUN_DIR: use these trained "
                                                   "weights instead of training (repeatable)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N: where training, generation and "
                               "scoring run."),
    scale: str = typer.Option("full", "--scale", help="full: the recipe's configs as shipped; cut: a paper "
                              "recipe's configs with their sizes cut down (the whole protocol on a CPU in "
                              "minutes; the leaderboard says it is a check, not the paper's numbers)."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Train every stage this many steps instead "
                                        "of its config's number."),
    list_tables: bool = typer.Option(False, "--list", help="List the tables and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", case_sensitive=False,
                                     help="--list: table, json or csv (every field whole, nothing else on stdout)."),
) -> None:
    from rich.table import Table

    from talking_head.leaderboards.reproduce import RECIPES, Inputs, MissingInputs, reproduce as run, write_outcome
    from talking_head.toolkit.cli.leaderboard import board_table
    from talking_head.toolkit.device import check_device

    # a terminal keeps its own width; piped (make demo, CI logs) nothing is cut or folded
    console = stdout_console()
    if list_tables or table is None:
        if fmt is not OutputFormat.table:
            write_records([_recipe_record(recipe) for recipe in RECIPES.values()], fmt, LIST_FIELDS)
            return
        for recipe in RECIPES.values():
            models = ", ".join(recipe.models)
            console.print(f"{recipe.id:16s} {recipe.title}  (data: {_data_text(recipe.data)}; models: {models}; "
                          f"configs: {recipe.config})",
                          markup=False)
        return
    if fmt is not OutputFormat.table:
        raise typer.BadParameter("--format json|csv applies to --list; a reproduction writes "
                                 "reproduce.json and leaderboard.csv in its work folder", param_hint="--format")
    if table not in RECIPES:
        raise typer.BadParameter(f"unknown table {table!r}; choose one of {', '.join(RECIPES)}", param_hint="TABLE")
    try:  # before any work: a reproduction that cannot use its device stops here, not after training
        check_device(device)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--device") from None
    checkpoints = {}
    for item in checkpoint or []:
        model, sep, folder = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r}: expected MODEL=RUN_DIR", param_hint="--checkpoint")
        checkpoints[model] = Path(folder)
    inputs = Inputs(dataset=dataset, raw=raw, annotations=annotations, checkpoints=checkpoints)
    work = work or Path("outputs") / "reproduce" / table
    try:
        outcome = run(table, work, inputs, device=device, scale=scale, steps=steps, show_progress=not quiet,
                      log=console.print)
    except MissingInputs as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1)
    write_outcome(outcome)
    console.print(board_table(outcome.board))
    if outcome.comparisons:
        compare = Table(title=f"{outcome.recipe.title}: the paper's numbers, ours, and ours - paper")
        for name in ("method", "metric", "paper", "ours", "delta", "note"):
            compare.add_column(name, justify="right" if name in ("paper", "ours", "delta") else "left")
        for c in outcome.comparisons:
            compare.add_row(c.row, c.metric, _fmt(c.paper), _fmt(c.ours),
                            "" if c.delta is None else f"{c.delta:+.3g}", c.note)
        console.print(compare)
    for column, check in outcome.ordering.items():
        console.print(f"{column}: ground truth beats every model: {'yes' if check['ground_truth_best'] else 'NO'}; "
                      f"trained models beat the floor baselines: {'yes' if check['trained_beat_floors'] else 'NO'} "
                      f"({check['detail']})")
    console.print(f"done in {outcome.seconds:.0f} s; leaderboard: {outcome.files['html']}; "
                  f"record: {outcome.work / 'reproduce.json'}")


def _recipe_record(recipe) -> dict:
    return {"id": recipe.id, "title": recipe.title, "data": _data_text(recipe.data), "models": list(recipe.models),
            "config": recipe.config,
            "floors": list(recipe.floors), "metrics": None if recipe.metrics is None else list(recipe.metrics),
            "lse_preset": recipe.lse_preset, "lmd_preset": recipe.lmd_preset, "weights": list(recipe.weights),
            "paper_table": recipe.paper_table}


def _data_text(data) -> str:
    """The dataset as preprocessed: name, rate, size and, under a per-identity protocol, the adaptation cut."""
    text = f"{data.name} at {data.fps:g} fps, {data.size} px"
    if data.adapt_fraction:
        text += f", each test clip's first {data.adapt_fraction:.0%} fits its person's model, the rest is tested"
    return text


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3g}"

"""Tabulate run directories: leaderboard.md, leaderboard.csv and a static index.html (sortable, best values
marked, one bar chart per metric, each row's provenance, and the runs' videos beside the reference clips, played
in sync with their per-video values and landmark overlay), rebuilt from the runs every time."""

from pathlib import Path
from typing import Optional

import typer

EXAMPLE = ("Examples: toolkit leaderboard --runs results/ --out board/  |  "
           "toolkit leaderboard --runs outputs/reproduce/sample/runs --out board/ --columns m_lmd,f_lmd,psnr  |  "
           "toolkit leaderboard --runs results/ --out board/ --bundle (board/ then plays on its own)")


def leaderboard(
    runs: Path = typer.Option(..., "--runs", help="Folder of run directories (toolkit evaluate --model ... --runs, "
                              "or any folders with summary.json)."),
    out: Path = typer.Option(..., "--out", help="Output folder: leaderboard.md, leaderboard.csv, index.html, "
                             "media/ (the landmark overlays; with --bundle the videos too)."),
    title: Optional[str] = typer.Option(None, "--title", help="Page title (default: the runs folder's name)."),
    columns: Optional[str] = typer.Option(None, "--columns", help="Comma-separated column ids (default: every "
                                          "metric some run has)."),
    bundle: bool = typer.Option(False, "--bundle", help="Copy the videos the page's Videos section plays into "
                                "OUT/media/ (the landmark files always go there), so OUT can be moved or shared "
                                "without the run folders; without it the page refers to the videos where the runs "
                                "name them, by paths relative to OUT."),
) -> None:
    from rich.console import Console

    from talking_head.leaderboards.columns import COLUMNS
    from talking_head.leaderboards.render import write_all
    from talking_head.leaderboards.runs import leaderboard_from_runs

    import sys

    console = Console(width=None if sys.stdout.isatty() else 200)  # the whole table when piped
    chosen = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    unknown = [c for c in chosen or [] if c not in COLUMNS]
    if unknown:
        raise typer.BadParameter(f"unknown column(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}",
                                 param_hint="--columns")
    try:
        board = leaderboard_from_runs(runs, title=title, columns=chosen)
    except (FileNotFoundError, ValueError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1)
    files = write_all(board, out, runs=runs, bundle=bundle)
    console.print(board_table(board))
    console.print("  ".join(f"{kind}: {path}" for kind, path in files.items()))


def board_table(board):
    """A rich table of a leaderboard, the best value per column in bold."""
    from rich.table import Table

    table = Table(title=board.title)
    table.add_column("method", no_wrap=True)
    for column in board.columns:
        table.add_column(f"{column.label} {column.arrow}".strip(), justify="right")
    best = {c.id: board.best(c) for c in board.columns}
    for i, row in enumerate(board.rows):
        cells = []
        for column in board.columns:
            value = row.values.get(column.id)
            text = "–" if value is None else f"{value:.4g}"
            cells.append(f"[bold]{text}[/bold]" if i in best[column.id] else text)
        table.add_row(row.label, *cells)
    return table

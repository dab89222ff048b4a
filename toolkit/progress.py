"""One progress bar style for all long work: count, rate (items/s), ETA and a free-text status, on stderr."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text


class _RateColumn(ProgressColumn):
    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} {self.unit}/s" if speed else f"- {self.unit}/s")


@contextlib.contextmanager
def progress_bar(
    total: int | None, description: str, unit: str = "items", enabled: bool = True
) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1, info=None)``; `info` replaces the status text after the ETA.

    Draws nothing when `enabled` is False.
    """
    if not enabled:
        yield lambda n=1, info=None: None
        return
    bar = Progress(
        TextColumn(description), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
        _RateColumn(unit), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
        console=Console(stderr=True),
    )
    with bar:
        task = bar.add_task(description, total=total, info="")

        def advance(n: int = 1, info: str | None = None) -> None:
            if info is None:
                bar.advance(task, n)
            else:
                bar.update(task, advance=n, info=info)

        yield advance

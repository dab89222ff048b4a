"""One progress bar style for all long work: count, rate (items/s) and ETA, on stderr."""

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
        return Text(f"{speed:.1f} {self.unit}/s" if speed else f"- {self.unit}/s")


@contextlib.contextmanager
def progress_bar(total: int | None, description: str, unit: str = "items", enabled: bool = True) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1)``; draws a bar with rate and ETA unless `enabled` is False."""
    if not enabled:
        yield lambda n=1: None
        return
    bar = Progress(
        TextColumn(description), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
        _RateColumn(unit), TimeRemainingColumn(), console=Console(stderr=True), transient=False,
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)

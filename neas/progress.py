"""Rich progress bars for long stages; silent when ``show`` is False."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def make_progress(*, show: bool = True, console: Console | None = None) -> Progress:
    """A progress bar with a free-text ``info`` field (loss, images/s, best accuracy, ...)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not show,
        console=console or Console(stderr=True),
    )

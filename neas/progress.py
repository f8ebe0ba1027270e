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
from rich.table import Column

#: Characters of the bar: narrow, so that on an 80-column terminal the counts and times fit
#: beside a long stage name and only the free-text field is cut (with an ellipsis).
BAR_WIDTH = 12


def make_progress(*, show: bool = True, console: Console | None = None) -> Progress:
    """A progress bar with a free-text ``info`` field (loss, images/s, best accuracy, ...),
    last on the line: where the terminal is too narrow, it is what is cut, never the times."""
    console = console or Console(stderr=True)
    fixed = Column(no_wrap=True)
    return Progress(
        TextColumn("[bold]{task.description}", table_column=fixed),
        BarColumn(bar_width=BAR_WIDTH),
        MofNCompleteColumn(table_column=fixed),
        TimeElapsedColumn(table_column=Column(no_wrap=True, min_width=7)),
        TimeRemainingColumn(table_column=Column(no_wrap=True, min_width=7)),
        TextColumn(
            "{task.fields[info]}",
            table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1, min_width=0),
        ),
        disable=not show,
        expand=console.is_terminal,  # a log file gets the line, not 80 columns of padding
        console=console,
    )

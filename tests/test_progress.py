"""Progress bars: on a narrow terminal the free-text field is cut, never the counts or times."""

from __future__ import annotations

import io

from rich.console import Console

from neas.progress import make_progress


def _render(width: int, info: str, *, terminal: bool = True) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=terminal, color_system=None)
    progress = make_progress(console=console)
    progress.add_task("final training (inherit)", total=16, completed=3, info=info)
    console.print(progress.make_tasks_table(progress.tasks))
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_narrow_terminal_cuts_only_the_info_field():
    line = _render(80, "epoch 1/4 loss 2.119 213 img/s, and much more text than fits").rstrip()
    assert len(line) <= 80
    assert "final training (inherit)" in line and " 3/16 " in line
    assert "0:00:00 -:--:--" in line  # elapsed and remaining, whole
    assert line.endswith("…") and "epoch 1/4" in line


def test_wide_terminal_shows_everything():
    line = _render(160, "epoch 1/4 loss 2.119 213 img/s")
    assert "epoch 1/4 loss 2.119 213 img/s" in line and "…" not in line


def test_a_log_file_gets_no_padding():
    """Off a terminal (stderr to a file) the bar fills no line with spaces to the width."""
    line = _render(160, "epoch 1/4", terminal=False)
    assert line.endswith("epoch 1/4\n")
    assert line == line.rstrip() + "\n"
    assert len(_render(160, "epoch 1/4").rstrip("\n")) == 160  # a terminal's full width

"""Writing measured figures: one section of RESULTS.md, and the JSON copy in results/."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def neas_command(*args: str) -> list[str]:
    """``python -m neas ARGS`` with the neas this script imported: ``-P`` (Python 3.11+) keeps
    the working directory off the child's ``sys.path``, where a ``neas/`` folder (another
    checkout) would win over ``PYTHONPATH`` and the install. A benchmark started from one
    worktree inside another once ran the other's code.

    >>> neas_command("search")[-3:]
    ['-m', 'neas', 'search']
    """
    safe = ["-P"] if sys.version_info >= (3, 11) else []
    return [sys.executable, *safe, "-m", "neas", *args]


def write_section(head: str, lines: list[str]) -> None:
    """Replace the section titled ``head`` (up to the next ``## `` heading) in RESULTS.md, or
    append it; everything else in the file is kept."""
    path = HERE / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    section = "\n".join([head, *lines])
    line = f"\n{head}\n"  # the whole heading line: one title may begin another
    if line in text:
        before, rest = text.split(line, 1)
        after = rest[rest.find("\n## ") :] if "\n## " in rest else ""
        text = before.rstrip() + "\n\n" + section + after
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")  # the last section too ends its line


def write_json(name: str, data: Any) -> Path:
    path = HERE / "results" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path

"""Resuming from the command line: the command that resumes a run (printed on Ctrl-C), and the
one line that says which options a resumed run keeps from its stored configuration."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from neas.cli.options import (
    shrink_at_text,
)
from neas.config import RunConfig
from neas.errors import EXIT_INTERRUPTED, NeasError


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` was given on the command line (not a default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def command_line(ctx: typer.Context, **changes: Any) -> str:
    """The command line that ran ``ctx``'s command, with the options it was given on the
    command line (by their first name), each of ``changes`` set (``None``: dropped); e.g.
    ``neas search --budget 7M --out runs/search-001 --resume`` for ``neas search --budget 7M``
    and ``changes = {"out": ..., "resume": True}`` (``tests/test_cli.py``)."""
    head, tail = ["neas", ctx.info_name or ""], []
    for param in ctx.command.params:
        name = param.name or ""
        if name in changes:
            value = changes[name]
            if value is None:
                continue
        elif _given(ctx, name):
            value = ctx.params.get(name)
        else:
            continue
        if param.param_type_name == "argument":
            head.append(str(value))
        elif getattr(param, "is_flag", False):
            if value or param.secondary_opts:
                tail.append(param.opts[0] if value else param.secondary_opts[0])
        else:
            for v in value if isinstance(value, (list, tuple)) else [value]:
                tail += [param.opts[0], str(v)]
    return shlex.join(head + tail)


@contextmanager
def resume_on_interrupt(command: str) -> Iterator[None]:
    """Ctrl-C in the block prints one line with ``command`` (the one that resumes) and exits
    130; everything already written stays (run writes are atomic)."""
    try:
        yield
    except KeyboardInterrupt:
        typer.echo(f"interrupted; resume with: {command}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


#: Where each training option of ``run_config`` lands in a ``RunConfig``.
CONFIG_FIELDS: dict[str, tuple[str, str]] = {
    "space": ("space", "name"),
    "members": ("space", "members"),
    "width_mult": ("space", "width_mult"),
    "head_width": ("space", "head_width"),
    "feature_width": ("space", "feature_width"),
    "embedding": ("space", "embedding"),
    "data": ("data", "source"),
    "data_dir": ("data", "data_dir"),
    "max_train": ("data", "max_train"),
    "target": ("data", "target"),
    "val_fraction": ("data", "val_fraction"),
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "weights": ("train", "weights"),
    "optimizer": ("train", "optimizer"),
    "lr": ("train", "lr"),
    "label_smoothing": ("train", "label_smoothing"),
    "shrink_at": ("shrink", "at"),
    "shrink_ratio": ("shrink", "ratio"),
    "diversity_weight": ("shrink", "diversity_weight"),
    "min_ops": ("shrink", "min_ops"),
    "shrink_samples": ("shrink", "samples"),
    "seed": ("train", "seed"),
}


def kept_options(ctx: typer.Context, given: RunConfig, out: Path) -> str | None:
    """When resuming ``out``, the line that says which options given on the command line
    differ from the stored run's and are ignored (the stored values are kept), or ``None``."""
    from neas.layout import CONFIG
    from neas.run import read_config

    if not (Path(out) / CONFIG).is_file():
        return None
    try:
        stored = read_config(out)
    except NeasError:
        return None  # the pipeline says what is wrong with it
    names = {p.name: p for p in ctx.command.params if p.param_type_name == "option"}
    kept, ignored = [], []
    for name, (part, key) in CONFIG_FIELDS.items():
        if name not in names or not _given(ctx, name):
            continue
        old, new = getattr(getattr(stored, part), key), getattr(getattr(given, part), key)
        if old != new:
            flag = names[name].opts[0]
            kept.append(f"{flag} {_shown(old)}")
            ignored.append(f"{flag} {_shown(new)}")
    if not kept:
        return None
    return (
        f"resuming {out} with its stored {', '.join(kept)}; ignoring {', '.join(ignored)} "
        "(--force starts over with them)"
    )


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return shrink_at_text(value)
    return "default" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

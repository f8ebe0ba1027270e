"""Shared pieces of the CLI: the app, the error wrapper, reusable options."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from neas.errors import NeasError

app = typer.Typer(
    name="neas",
    help="One-shot neural ensemble architecture search: small, fast ensembles under a budget.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(width=120)
F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Print a ``NeasError`` as ``error: <message>`` on stderr and exit with code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NeasError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


SpaceOpt = Annotated[str, typer.Option("--space", help="Registered search space (`neas spaces`).")]
DataOpt = Annotated[
    str,
    typer.Option(
        "--data",
        help="Built-in dataset (digits, mnist, fashion-mnist, cifar10), an .npz file with x "
        "and y, or a folder of class sub-folders of images.",
    ),
]
DataDirOpt = Annotated[
    str | None, typer.Option("--data-dir", help="Folder holding the built-in dataset's files.")
]
MaxTrainOpt = Annotated[
    int | None, typer.Option("--max-train", help="Cap the training split (stratified).")
]
MembersOpt = Annotated[
    int | None, typer.Option("--members", "-K", help="Ensemble members K (space default: 2).")
]
WidthOpt = Annotated[
    float | None,
    typer.Option("--width-mult", help="Channel multiplier (default 1.0; 0.5 for images <= 32px)."),
]
HeadOpt = Annotated[
    int | None,
    typer.Option("--head-width", help="Head 1x1 conv width (default 960; 256 for images <= 32px)."),
]
FeatureOpt = Annotated[
    int | None,
    typer.Option("--feature-width", help="Head feature width (default 1280; 256 for small)."),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for splits, sampling and init.")]
DeviceOpt = Annotated[
    str | None, typer.Option("--device", help="cpu or cuda (default: cuda when present).")
]

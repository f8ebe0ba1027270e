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

ShrinkAtOpt = Annotated[
    str,
    typer.Option(
        "--shrink-at",
        help="Fractions of training at which to shrink the space, e.g. 0.3,0.5,0.7; 'none' "
        "to train on the full space.",
    ),
]
ShrinkRatioOpt = Annotated[
    float, typer.Option("--shrink-ratio", help="Fraction of each layer's ops dropped per shrink.")
]
DiversityOpt = Annotated[
    float,
    typer.Option(
        "--diversity-weight", help="λ in score = z(potentiality) + λ z(diversity); 0 = ablation."
    ),
]
MinOpsOpt = Annotated[int, typer.Option("--min-ops", help="Never keep fewer ops per layer.")]
ShrinkSamplesOpt = Annotated[
    int, typer.Option("--shrink-samples", help="Ensembles sampled to score ops at each shrink.")
]


def shrink_config(
    *, at: str, ratio: float, diversity_weight: float, min_ops: int, samples: int, seed: int
):
    """A ``ShrinkConfig`` from CLI options, or ``None`` for ``--shrink-at none``."""
    from neas.shrink import ShrinkConfig, parse_shrink_at

    points = parse_shrink_at(at)
    if not points:
        return None
    return ShrinkConfig(
        at=points,
        ratio=ratio,
        diversity_weight=diversity_weight,
        min_ops=min_ops,
        samples=samples,
        seed=seed,
    )

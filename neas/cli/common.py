"""Shared pieces of the CLI: the app, the error wrapper, the library's messages on the console,
and the run configuration built from the training options (``neas.cli.options``)."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from neas.cli.options import FLAG
from neas.config import (
    DataOptions,
    FinalOptions,
    RunConfig,
    SearchOptions,
    ShrinkConfig,
    SpaceOptions,
    TrainConfig,
    parse_shrink_at,
)
from neas.errors import EXIT_INTERRUPTED, EXIT_SYSTEM, NeasError


class _PlainHelp:
    """``--help`` without the ``<bool>`` that typer prints beside its own flag."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = FLAG
        return option


class _Group(_PlainHelp, typer.core.TyperGroup):
    pass


class Command(_PlainHelp, typer.core.TyperCommand):
    """Every command's class (``neas.cli.commands`` registers them with it)."""


app = typer.Typer(
    name="neas",
    cls=_Group,
    help="One-shot neural ensemble architecture search: small, fast ensembles under a budget.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(width=120)
F = TypeVar("F", bound=Callable[..., Any])


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"neas {version('neas')}")
        except PackageNotFoundError:  # run from a source tree that was not installed
            import sys

            typer.echo(f"neas {sys.modules['neas'].__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the version and exit.",
            metavar=FLAG,
        ),
    ] = False,
) -> None:
    """One-shot neural ensemble architecture search: small, fast ensembles under a budget.

    Start with `neas search` (train, search, export, report in one run folder); the other
    commands run one stage of it on a run folder.
    """


def user_errors(fn: F) -> F:
    """Print a ``NeasError`` as ``error: <message>`` on stderr and exit with its exit code
    (2 for bad input, 3 for a failed verification; ``neas.errors``); an ``OSError`` (a full
    disk, a read-only file system, no permission) as one line naming the path, exit 4; Ctrl-C
    as one line, exit 130 (a command that can be resumed says how:
    ``neas.cli.resume.resume_on_interrupt``)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        show_neas_messages()
        try:
            return fn(*args, **kwargs)
        except NeasError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            where = f" {exc.filename}" if exc.filename else ""
            typer.echo(f"error: cannot read or write{where}: {exc.strerror or exc}", err=True)
            raise typer.Exit(EXIT_SYSTEM) from None
        except KeyboardInterrupt:
            typer.echo("interrupted; run the same command again to redo what was lost", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]


class _ConsoleHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        console.print(self.format(record), highlight=False, markup=False)


def show_neas_messages() -> None:
    """The CLI (never the library) shows the library's INFO messages (e.g. the thread count
    ``--threads auto`` chose) on its console, once."""
    logger = logging.getLogger("neas")
    if not any(isinstance(h, _ConsoleHandler) for h in logger.handlers):
        logger.addHandler(_ConsoleHandler())
    logger.setLevel(logging.INFO)


def quiet_libraries(strategy: str) -> None:
    """The CLI (never the library) keeps optuna from logging every trial."""
    if strategy == "optuna":
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)


def run_config(
    *,
    space: str,
    members: int | None,
    width_mult: float | None,
    head_width: int | None,
    feature_width: int | None,
    embedding: str | None,
    data: str,
    data_dir: str | None,
    max_train: int | None,
    target: str | None,
    val_fraction: float,
    epochs: int,
    batch_size: int,
    weights: str,
    optimizer: str,
    lr: float | None,
    label_smoothing: float,
    shrink_at: str,
    shrink_ratio: float,
    diversity_weight: float,
    min_ops: int,
    shrink_samples: int,
    seed: int,
) -> RunConfig:
    """The ``RunConfig`` the training options of ``neas train`` / ``neas search`` describe."""
    return RunConfig(
        data=DataOptions(
            source=data,
            data_dir=data_dir,
            max_train=max_train,
            target=target,
            val_fraction=val_fraction,
        ),
        space=SpaceOptions(
            name=space,
            members=members,
            width_mult=width_mult,
            head_width=head_width,
            feature_width=feature_width,
            embedding=embedding,
        ),
        train=TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            weights=weights,
            optimizer=optimizer,  # type: ignore[arg-type]
            lr=lr,
            label_smoothing=label_smoothing,
        ),
        shrink=ShrinkConfig(
            at=parse_shrink_at(shrink_at),
            ratio=shrink_ratio,
            diversity_weight=diversity_weight,
            min_ops=min_ops,
            samples=shrink_samples,
        ),
    ).with_seed(seed)


def run_config_from(options: dict[str, Any]) -> RunConfig:
    """``run_config`` from a command's ``locals()``: the training options it shares with the
    other commands, by name."""
    names = inspect.signature(run_config).parameters
    return run_config(**{name: options[name] for name in names})


def print_config(
    config: RunConfig, options: SearchOptions | None = None, final: FinalOptions | None = None
) -> None:
    """The resolved configuration as JSON on stdout (``--print-config``)."""
    import json
    from dataclasses import asdict

    out: dict[str, Any] = {"run": config.to_dict()}
    if options is not None:
        out["search"] = asdict(options) | {"budget_macs": options.budget_macs}
    if final is not None:
        out["final"] = asdict(final)
    typer.echo(json.dumps(out, indent=2))

"""Shared pieces of the CLI: the app, the error wrapper, reusable options.

Every option default is read from the config dataclasses (``neas.config``): no number is
written here.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from neas.config import (
    FINAL_EPOCHS,
    FINAL_INIT,
    FINAL_PATIENCE,
    FINAL_PERTURB,
    FINAL_REFIT,
    IMAGE_BATCH,
    IMAGE_EPOCHS,
    SMALL_IMAGE,
    SMALL_PRESETS,
    TABLE_BATCH,
    TABLE_FINAL_INIT,
    TABLE_MIN_EPOCHS,
    TABLE_PATIENCE,
    TABLE_REFIT,
    TABLE_ROW_PASSES,
    TABLE_STEPS,
    THREADS,
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
from neas.search_spaces import mbconv, mlp

app = typer.Typer(
    name="neas",
    help="One-shot neural ensemble architecture search: small, fast ensembles under a budget.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(width=120)
#: The ``metavar`` of an on/off flag: none (typer would print ``<bool>`` beside ``--x/--no-x``).
FLAG = ""
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


def shrink_at_text(at: tuple[float, ...]) -> str:
    return ",".join(f"{a:g}" for a in at) or "none"


SpaceOpt = Annotated[
    str,
    typer.Option(
        "--space",
        rich_help_panel="Space",
        help="Search space (`neas spaces`): auto (default: mlp for tables, mbconv for images), "
        "mbconv, mlp.",
        metavar="NAME",
    ),
]
DataOpt = Annotated[
    str,
    typer.Option(
        "--data",
        rich_help_panel="Data",
        help="Built-in dataset (digits, mnist, fashion-mnist, cifar10), an .npz file with x "
        "and y (images, or a table N x F), a CSV table (with --target), or a folder of class "
        "sub-folders of images.",
        metavar="NAME|PATH",
    ),
]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target", rich_help_panel="Data", help="CSV tables: the label column.", metavar="COLUMN"
    ),
]
DataDirOpt = Annotated[
    str | None,
    typer.Option(
        "--data-dir",
        rich_help_panel="Data",
        help="Folder holding the built-in dataset's files.",
        metavar="DIR",
    ),
]
MaxTrainOpt = Annotated[
    int | None,
    typer.Option(
        "--max-train", rich_help_panel="Data", help="Cap the training split (stratified)."
    ),
]
ValFractionOpt = Annotated[
    float,
    typer.Option(
        "--val-fraction",
        rich_help_panel="Data",
        help="Share of the training data held out for validation (search and shrinking score "
        "on it); the test split is never touched.",
    ),
]
MembersOpt = Annotated[
    int | None,
    typer.Option(
        "--members",
        "-K",
        rich_help_panel="Space",
        help=f"Ensemble members K (space default: {mbconv.MEMBERS}).",
    ),
]
WidthOpt = Annotated[
    float | None,
    typer.Option(
        "--width-mult",
        rich_help_panel="Space",
        help=f"Channel multiplier (default {mbconv.WIDTH_MULT}; "
        f"{SMALL_PRESETS['mbconv']['width_mult']} for images <= {SMALL_IMAGE}px).",
    ),
]
HeadOpt = Annotated[
    int | None,
    typer.Option(
        "--head-width",
        rich_help_panel="Space",
        help=f"Head 1x1 conv width (default {mbconv.HEAD_WIDTH}; "
        f"{SMALL_PRESETS['mbconv']['head_width']} for images <= {SMALL_IMAGE}px).",
    ),
]
FeatureOpt = Annotated[
    int | None,
    typer.Option(
        "--feature-width",
        rich_help_panel="Space",
        help=f"Head feature width (default {mbconv.FEATURE_WIDTH}; "
        f"{SMALL_PRESETS['mbconv']['feature_width']} for images <= {SMALL_IMAGE}px).",
    ),
]
EmbeddingOpt = Annotated[
    str | None,
    typer.Option(
        "--embedding",
        rich_help_panel="Space",
        help="Tables (mlp space): how the stem sees each numeric feature: 'none' (its "
        "value), 'periodic' (trainable sin/cos embeddings) or 'piecewise' (piecewise-linear "
        f"encoding over fixed bins). Default: {mlp.EMBEDDING}.",
        metavar="KIND",
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for splits, sampling and init.")]
DeviceOpt = Annotated[
    str | None,
    typer.Option("--device", help="cpu or cuda (default: cuda when present).", metavar="cpu|cuda"),
]
ThreadsOpt = Annotated[
    str,
    typer.Option(
        "--threads",
        help="torch CPU threads: N, or auto (time a few training steps at 1, 2, 4, ... cores "
        "and keep the fastest; on a busy small machine 1 thread can be 3x faster than 2). A "
        "search's export of the front's other ensembles runs in that many processes, one "
        "thread each.",
        metavar="N|auto",
    ),
]
EpochsOpt = Annotated[
    int | None,
    typer.Option(
        "--epochs",
        rich_help_panel="Supernet training",
        help=f"Supernet training epochs (default: {IMAGE_EPOCHS} for images; tables train about "
        f"{TABLE_STEPS} optimizer steps and at least {TABLE_MIN_EPOCHS} epochs, at most "
        f"{TABLE_ROW_PASSES:,} rows seen in all).",
    ),
]
BatchOpt = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        rich_help_panel="Supernet training",
        help=f"Training batch size (default: {IMAGE_BATCH} for images; tables up to "
        f"{TABLE_BATCH}, smaller on small tables).",
    ),
]
WeightsOpt = Annotated[
    str,
    typer.Option(
        "--weights",
        rich_help_panel="Supernet training",
        help="Weight sharing: entangled (one sliced set per layer), separate (one bank per "
        "op) or members (a sliced set for the trunk and one per member).",
        metavar="MODE",
    ),
]
OptimizerOpt = Annotated[
    str,
    typer.Option(
        "--optimizer",
        rich_help_panel="Supernet training",
        help="adamw or sgd.",
        metavar="adamw|sgd",
    ),
]
LrOpt = Annotated[
    float | None,
    typer.Option(
        "--lr",
        rich_help_panel="Supernet training",
        help="Peak learning rate (default by optimizer).",
    ),
]
SmoothingOpt = Annotated[
    float,
    typer.Option("--label-smoothing", rich_help_panel="Supernet training", help="Label smoothing."),
]
ShrinkAtOpt = Annotated[
    str,
    typer.Option(
        "--shrink-at",
        rich_help_panel="Shrinking",
        help="Fractions of training at which to shrink the space, e.g. 0.3,0.5,0.7; 'none' "
        "to train on the full space.",
        metavar="EPOCHS",
    ),
]
ShrinkRatioOpt = Annotated[
    float,
    typer.Option(
        "--shrink-ratio",
        rich_help_panel="Shrinking",
        help="Fraction of each layer's ops dropped per shrink.",
    ),
]
DiversityOpt = Annotated[
    float,
    typer.Option(
        "--diversity-weight",
        rich_help_panel="Shrinking",
        help="λ in score = z(potentiality) + λ z(diversity); 0 = ablation.",
    ),
]
MinOpsOpt = Annotated[
    int,
    typer.Option("--min-ops", rich_help_panel="Shrinking", help="Never keep fewer ops per layer."),
]
ShrinkSamplesOpt = Annotated[
    int,
    typer.Option(
        "--shrink-samples",
        rich_help_panel="Shrinking",
        help="Ensembles sampled to score ops at each shrink.",
    ),
]
FinalEpochsOpt = Annotated[
    int | None,
    typer.Option(
        "--final-epochs",
        rich_help_panel="Final training",
        help="Train E epochs as an ensemble before exporting (search: the front's best "
        "ensemble; export: each it exports): the sum of the "
        "members' own losses, each member on its own batches (0: the supernet's weights). "
        f"Search's default: {FINAL_EPOCHS} for images; for tables the epochs of the data's "
        "own training schedule (about 120 steps, at least 10 epochs), whatever --epochs says.",
    ),
]
FinalInitOpt = Annotated[
    str | None,
    typer.Option(
        "--final-init",
        rich_help_panel="Final training",
        help="Starting weights of the final training: inherit (all from the supernet), "
        "branches (trunk from the supernet, each member's own layers fresh), perturb (trunk "
        f"from the supernet, each member's own layers {1 - FINAL_PERTURB:.0%} inherited, "
        f"{FINAL_PERTURB:.0%} fresh) or scratch (default: {FINAL_INIT} for images, "
        f"{TABLE_FINAL_INIT} for tables).",
        metavar="INIT",
    ),
]
FinalPatienceOpt = Annotated[
    int | None,
    typer.Option(
        "--final-patience",
        rich_help_panel="Final training",
        help="Stop the final training after this many epochs without a better validation "
        "score and keep its best epoch, the start included (0: train every epoch; default: "
        f"{FINAL_PATIENCE} for images, {TABLE_PATIENCE} for tables).",
    ),
]
FinalRefitOpt = Annotated[
    bool | None,
    typer.Option(
        "--final-refit/--no-final-refit",
        rich_help_panel="Final training",
        help="Where early stopping kept an epoch past the start, train the same start again "
        "on the training and validation rows together for that many epochs (no held-out "
        f"check of the result; not under --time-limit; default: {FINAL_REFIT} for images, "
        f"{TABLE_REFIT} for tables).",
        metavar=FLAG,
    ),
]
PrintConfigOpt = Annotated[
    bool,
    typer.Option(
        "--print-config",
        help="Print the resolved configuration as JSON and exit (no work; the data is not "
        "read, so what it decides, such as a table's epochs and batch size, shows as null).",
        metavar=FLAG,
    ),
]

# The defaults of the options above, from the config dataclasses.
D_SPACE = SpaceOptions.name
D_DATA = DataOptions.source
D_VAL_FRACTION = DataOptions.val_fraction
D_SEED = TrainConfig.seed
D_THREADS = THREADS
D_EPOCHS = TrainConfig.epochs
D_BATCH = TrainConfig.batch_size
D_WEIGHTS = TrainConfig.weights
D_OPTIMIZER = TrainConfig.optimizer
D_SMOOTHING = TrainConfig.label_smoothing
D_SHRINK_AT = shrink_at_text(ShrinkConfig.at)
D_SHRINK_RATIO = ShrinkConfig.ratio
D_DIVERSITY = ShrinkConfig.diversity_weight
D_MIN_OPS = ShrinkConfig.min_ops
D_SHRINK_SAMPLES = ShrinkConfig.samples
D_BUDGET = SearchOptions.budget
D_STRATEGY = SearchOptions.strategy
D_POPULATION = SearchOptions.population
D_GENERATIONS = SearchOptions.generations
D_LATENCY_BATCH = SearchOptions.latency_batch
D_LATENCY = SearchOptions.latency
D_SEARCH_MEMBERS = SearchOptions.search_members
D_ENSEMBLE_SIZE = SearchOptions.ensemble_size
D_SURROGATE = SearchOptions.surrogate
D_FINAL_EPOCHS = FinalOptions.epochs
D_FINAL_INIT = FinalOptions.init
D_FINAL_PATIENCE = FinalOptions.patience
D_FINAL_REFIT = FinalOptions.refit
TimeLimitOpt = Annotated[
    str | None,
    typer.Option(
        "--time-limit",
        help="Wall-clock limit for the whole job, e.g. 30m, 1h30m or 900s (off by default). "
        "neas times a training step and a scoring, then splits the limit among the stages "
        "(training, search, final training of the best ensemble, export): epochs, proposals "
        "and final epochs come from the plan instead of --epochs/--evaluations/"
        "--final-epochs (a --final-epochs above 0 caps the final stage). Each stage stops at "
        "a clean point when its share is spent; the best found is always exported. Plan and "
        "seconds per stage: time_limit.json and the report. --resume counts the time spent.",
        metavar="DURATION",
    ),
]


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

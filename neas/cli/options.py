"""The options the commands share, each an ``Annotated`` type with its help, and their
defaults (``D_*``), read from the config dataclasses (``neas.config``): no number is written
here.
"""

from __future__ import annotations

from typing import Annotated

import typer

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
    SearchOptions,
    ShrinkConfig,
    SpaceOptions,
    TrainConfig,
)
from neas.search_spaces import mbconv, mlp

#: The ``metavar`` of an on/off flag: none (typer would print ``<bool>`` beside ``--x/--no-x``).
FLAG = ""


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

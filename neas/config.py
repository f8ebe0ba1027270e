"""The configuration dataclasses: the one place where every default of a neas job is written.

The CLI takes its option defaults from these classes, and ``neas.search(out=...)`` with nothing
else runs exactly what ``neas search --space mbconv --budget 600M`` runs (a test compares the
two resolved configurations). Every class is frozen, JSON-serialisable through ``asdict`` and
validates itself on construction, so bad input fails before any work is done.

>>> RunConfig().with_seed(3).train.seed, RunConfig().shrink.at
(3, (0.3, 0.5, 0.7))
>>> RunConfig.from_dict(RunConfig().to_dict()) == RunConfig()
True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from neas.budget import parse_budget
from neas.errors import ConfigError, UnknownSpaceError
from neas.search_spaces import list_spaces
from neas.search_spaces.mlp import EMBEDDINGS

if TYPE_CHECKING:  # the data readers (pandas, scikit-learn) load only when data does
    from neas.data import Dataset

__all__ = [
    "CALIBRATION_IMAGES",
    "ESTIMATOR_THREADS",
    "SMALL_IMAGE",
    "SHRINK_SAMPLES",
    "SMALL_PRESETS",
    "WEIGHT_MODES",
    "DataOptions",
    "FinalOptions",
    "RunConfig",
    "SearchOptions",
    "ShrinkConfig",
    "SpaceOptions",
    "TrainConfig",
    "parse_shrink_at",
]

#: Weight-sharing modes of the supernet (``neas.nn.Supernet``).
WEIGHT_MODES: tuple[str, ...] = ("entangled", "separate", "members")
#: Training images used to recalibrate BN statistics per architecture before it is scored.
#: 256 was tried (digits, 10-epoch supernet, 20 random ensembles: Kendall tau 0.64 against
#: calibrating on all 1077 images, 512 gave 0.57; scoring 29% faster; main job 105-116x the
#: reference instead of 118-138x) but the main job's best-val test accuracy over seeds 0-2 fell
#: from 98.06% to 97.41% mean: within the noise of a 360-image test split, yet not shown harmless.
#: A validation split of no more images (not table rows) is scored without it, under its own
#: statistics (``neas.evaluate.scores_in_one_batch``).
CALIBRATION_IMAGES = 512
#: Images per forward when scoring and recalibrating (no gradients). On a CPU, 128 ran the
#: validation pass 1.4-1.8x faster than 512 (cache-sized activations; Fashion-MNIST, 1 thread);
#: a GPU wants large batches.
EVAL_BATCH_CPU, EVAL_BATCH_CUDA = 128, 1024
#: torch CPU threads of a job: N, "auto" (the fastest of 1, 2, 4, ... cores over a few timed
#: training steps) or None (torch's own default). ``neas.device.resolve_threads`` resolves it.
THREADS = "auto"
#: ``NEASClassifier``'s threads: one, so that its fits repeat bit for bit (a timed ``auto``
#: choice, and float sums with it, can differ between fits) and a grid search's parallel fits
#: do not compete for the cores. The README's grid (7 fits on breast_cancer), 2-core machine
#: beside one busy process, 2026-12-05: 35 s at one thread, 113 s at torch's default (two).
ESTIMATOR_THREADS = 1
AUTO = "auto"
Threads = int | str | None
"""``N``, ``"auto"`` or ``None`` (torch's default)."""
#: Upper limits of options, far above any job this tool is for and low enough that a typo is
#: refused before it can exhaust memory (the same checks for the CLI, the API, the estimator
#: and ``config.json`` on resume).
MAX_MEMBERS = 16
MAX_WIDTH_MULT = 16.0
MAX_WIDTH = 8192  # --head-width, --feature-width
MAX_EPOCHS = 100_000
MAX_BATCH = 65_536
MAX_THREADS = 1024
MAX_SEED = 2**32 - 1  # numpy's seed range
MAX_SAMPLES = 100_000  # shrink and summary samples, population, evaluations
#: Parameters a supernet may hold (4 GB of float32 weights).
MAX_SUPERNET_PARAMS = 10**9
MAX_TRAIN = 2**62  # --max-train: any count a machine could hold
#: Share of the training data held out for validation (search and shrinking score on it).
VAL_FRACTION = 0.2
#: The cascade's chosen threshold may lose at most this much val accuracy (half a point).
CASCADE_TOLERANCE = 0.005
#: Starting weights of the final training stage (``neas.deploy.final``): every weight from the
#: supernet, the trunk from the supernet and each member's branch fresh, the trunk from the
#: supernet and each member's branch a blend of its inherited and its own fresh weights, or
#: all fresh.
FINAL_INITS: tuple[str, ...] = ("inherit", "branches", "perturb", "scratch")
#: ``perturb``: a member's branch starts at (1 - FINAL_PERTURB) x inherited + FINAL_PERTURB x
#: its own fresh weights (shrink and perturb, Ash & Adams 2020: a warm start that can still
#: move apart from the other members').
FINAL_PERTURB = 0.5
#: The main job's final stage (``neas search``, ``neas.search``, ``NEASClassifier`` on
#: images): the front's best ensemble trained FINAL_EPOCHS epochs from FINAL_INIT. Chosen from
#: README "Final training": on digits 4 epochs took the best-validation ensemble from 98.33 %
#: to 98.70 % test (mean of seeds 0-2); on Fashion-MNIST (12,000 training images) it beat a deep
#: ensemble trained as long.
FINAL_EPOCHS = 4
FINAL_INIT = "inherit"
FINAL_PATIENCE = 0
FINAL_REFIT = False
#: ``neas export`` (and ``export_run``) exports the supernet's weights unless asked to train:
#: re-exporting a front is not the place to train every ensemble again.
EXPORT_FINAL_EPOCHS = 0
#: ``--space auto``: ``mlp`` for tables (N x F), ``mbconv`` for images, picked from the data.
AUTO_SPACE = "auto"
#: The NEAS paper's space, what ``neas cost`` prices by default.
PAPER_SPACE = "mbconv"
#: Tables train by optimizer steps, not epochs (``table_schedule``): a 150-row table gets as
#: many updates as a 3,000-row one, batches of TABLE_BATCH rows (fewer on small tables, so that
#: an epoch has at least TABLE_MIN_STEPS of them), about TABLE_STEPS steps but at least
#: TABLE_MIN_EPOCHS epochs, and at most TABLE_ROW_PASSES rows seen in all (the cap that bounds
#: large tables' time). 120 steps and 10 epochs at least, was 400 steps (2026-12-05), on 18
#: real tables (a probe on ``benchmarks/tables.py``'s splits, neas alone, one thread; RESULTS.md,
#: notes on real tables): seeds 0-2 +0.70 points of mean accuracy (accuracy rank 3.08 against
#: 3.83 of 6), held-out seeds 3-5 -0.08, so +0.31 over the six; fits 7.1 s against 10.5 s.
#: Noisy mid-sized tables gain (cells +1.0, vehicle +1.0, wa_churn +0.8: a trunk trained 15
#: epochs, not 50), larger ones lose a little (satellite -0.6, hpc -0.4, letter -0.4). 120
#: steps without the floor cost letter 3.1 points (6 epochs, was 11); a floor of 16 epochs
#: +0.18 points, fits 9.4 s.
TABLE_BATCH = 256
TABLE_MIN_BATCH = 32
TABLE_MIN_STEPS = 8
TABLE_STEPS = 120
TABLE_MIN_EPOCHS = 10
TABLE_ROW_PASSES = 60_000
#: Images' supernet training (``TrainConfig`` with ``epochs``/``batch_size`` left ``None``).
#: 12 epochs, was 20: the digits main job, seeds 0-2, each seed at 20 and at 12 one after the
#: other on one machine, ran 114 s instead of 149 s on average, and the ensemble the final stage
#: trained (the search's best-validation one, 4 more epochs) scored 98.80 % test on average
#: instead of 98.52 % (the search's own pick before final training 97.78 % against 97.96 %;
#: 360 test images, one is 0.28 points). The final stage gives back what the shorter supernet
#: training leaves. 9 epochs, was 12 (2026-12-05): the same job over seeds 0-5, the two run one
#: after the other per seed: the user's ensemble 98.66 % test against 98.43 % (the search's own
#: pick 97.27 % against 98.15 %), supernet stage 19.9 s against 24.5 s; with 4 search
#: generations as well 98.52 %, 54 s a job against 64 s (RESULTS.md, "Main job vs reference
#: workload", notes).
IMAGE_EPOCHS = 9
IMAGE_BATCH = 64
#: Tables' final training (``neas search`` on a table, ``NEASClassifier``): as many epochs as
#: the supernet's, from
#: TABLE_FINAL_INIT, stopped after TABLE_PATIENCE epochs without a better validation score.
TABLE_FINAL_INIT = "branches"
TABLE_PATIENCE = 16
#: ... then, where it stopped early at an epoch past the start, trained again from the same
#: starting weights on the training and validation rows together for the epochs it kept (the
#: refit of AutoGluon's ``refit_full``: a fifth more rows, no held-out check of the result).
#: Measured on 18 real tables x 3 seeds (``benchmarks/tables_variants.py``, paired with the
#: same code without it): +0.20 points of mean accuracy (11 tables better, 4 worse, 3 equal),
#: accuracy rank 3.81 -> 3.67 and log-loss rank 4.06 -> 3.67 of 6; fits ~8 % longer.
TABLE_REFIT = True
#: A training checkpoint is written after an epoch once this many seconds have passed since the
#: last one (and always after the first and the last epoch, a shrink step or a ``stop_after``
#: cut): the many short epochs of a small table would otherwise spend most of their time writing.
CHECKPOINT_SECONDS = 10.0
#: ``--time-limit`` (``neas.time_limit``): when a stage starts it gets its share of the time
#: left, divided by the shares of the stages still to run, so a stage that ends early leaves
#: its time to the later ones and export and final training are reserved from the start. The
#: export stage (the front but its best, whose seconds are then known) comes before the final
#: stage, which takes all that is left but the report's (``TIME_REPORT_S``): with the final
#: stage before it, keeping back an estimate of the export for each other front ensemble left
#: 79 of 2,400 s unused on Fashion-MNIST at 40 min (they took 7 s).
#: Final training half the time, was 12 % (training 60 %, search 22 %, export 6 %): on
#: Fashion-MNIST at 20 min (11.5M MACs, one thread, seed 0, two jobs side by side) the old
#: shares never bought a final epoch (2 supernet epochs, 86 proposals: 87.91 % test); these
#: bought 1 supernet epoch, 12 proposals and 2 final epochs: 89.93 % (README "A time limit").
TIME_SHARES: tuple[tuple[str, float], ...] = (
    ("train", 0.30),
    ("search", 0.10),
    ("export", 0.08),
    ("final", 0.52),
)
#: Seconds the last stage leaves for the report and the last writes.
TIME_REPORT_S = 5.0
#: One epoch of final training in supernet epochs per member (each member runs the trunk on
#: its own batches); a time limit whose final share cannot buy one epoch gives that share to
#: training instead.
FINAL_EPOCH_COST = 1.0
#: The least final training a time limit plans, in estimated epochs (less: the stage is left
#: out and its share goes to training). Its learning rate anneals by the stage's clock, so a
#: window shorter than one epoch still ends annealed.
TIME_FINAL_MIN_EPOCHS = 0.5
#: An export's cost in the search's scorings (BN calibration, validation and test splits scored,
#: the graphs written and checked), until one export has been timed.
EXPORT_SCORINGS = 3
#: Times per epoch a training loop under a time limit reads the clock (and at the epoch's end):
#: one Fashion-MNIST supernet epoch is minutes long on a CPU, too coarse a point to stop at.
STOP_CHECKS = 50
MIN_TIME_LIMIT, MAX_TIME_LIMIT = 60.0, 30 * 24 * 3600.0  # one minute .. thirty days
#: The most of a training's epochs its linear warm-up takes (``TrainConfig.warmup_epochs`` is
#: cut to it): a supernet trained one epoch under a time limit once warmed up the whole epoch
#: and ended at its peak learning rate, never annealed.
WARMUP_MAX_SHARE = 0.25
#: Fraction of a dataset without an official test split held out for test.
TEST_FRACTION = 0.2
#: CPU threads of an export (torch and ONNX Runtime) and of its reported ONNX latency: tiny
#: models run fastest on one, and a shared machine is not oversubscribed.
EXPORT_THREADS = 1
#: Samples per forward when a deployed ``model.pt`` predicts (``neas.deploy.DeployedEnsemble``).
SERVE_BATCH = 256
#: Random whole ensembles timed to calibrate a latency table's block sums.
LATENCY_CALIBRATION_ENSEMBLES = 10
#: ``neas rank``: random ensembles ranked, and the stand-alone training epochs of each.
RANK_SAMPLES, RANK_EPOCHS = 16, 10
SMALL_IMAGE = 32  # at or below this size a space's compact preset applies by default
SMALL_PRESETS: dict[str, dict[str, float | int]] = {
    "mbconv": {"width_mult": 0.5, "head_width": 256, "feature_width": 256},
}


def table_schedule(rows: int) -> tuple[int, int]:
    """(epochs, batch size) for training on a table of ``rows`` training rows (see
    ``TABLE_STEPS``).

    >>> table_schedule(120), table_schedule(1_000), table_schedule(5_000), table_schedule(8_000)
    ((40, 32), (15, 125), (10, 256), (8, 256))
    """
    batch = max(TABLE_MIN_BATCH, min(TABLE_BATCH, rows // TABLE_MIN_STEPS))
    steps = max(1, rows // batch)
    epochs = max(math.ceil(TABLE_STEPS / steps), TABLE_MIN_EPOCHS)
    return min(epochs, math.ceil(TABLE_ROW_PASSES / max(1, rows))), batch


def check_int(name: str, value: object, low: int, high: int) -> None:
    """A one-line ``ConfigError`` unless ``value`` is a whole number in ``low..high``.

    >>> check_int("--epochs", 2.5, 1, 10)
    Traceback (most recent call last):
    ...
    neas.errors.ConfigError: --epochs must be a whole number, got 2.5
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    if value < low:
        raise ConfigError(f"{name} must be at least {low}, got {value}")
    if value > high:
        raise ConfigError(f"{name} must be at most {high:,}, got {value:,}")


def check_float(
    name: str, value: object, low: float, high: float, *, open_low: bool = False, open_high=False
) -> None:
    """A one-line ``ConfigError`` unless ``value`` is a finite number in the range ``low`` to
    ``high`` (either end open when asked).

    >>> check_float("--lr", float("nan"), 0, 10, open_low=True)
    Traceback (most recent call last):
    ...
    neas.errors.ConfigError: --lr must be a number in (0, 10], got nan
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    number = float(value) if ok else math.nan  # type: ignore[arg-type]
    above = number > low if open_low else number >= low
    below = number < high if open_high else number <= high
    if not (ok and math.isfinite(number) and above and below):
        span = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        raise ConfigError(f"{name} must be a number in {span}, got {value!r}")


def check_seed(value: object) -> None:
    check_int("--seed", value, 0, MAX_SEED)


def parse_threads(value: Threads) -> Threads:
    """``None``, ``"auto"`` or a positive int (also given as text); anything else is an error."""
    if value is None or value == AUTO:
        return value
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or (isinstance(value, float) and value != n):
        raise ConfigError(f"threads must be a positive integer or 'auto', got {value!r}")
    if n > MAX_THREADS:
        raise ConfigError(f"threads must be at most {MAX_THREADS}, got {n:,}")
    return n


@dataclass(frozen=True)
class DataOptions:
    """Where the data comes from and how it is split (``target``: a CSV file's label column)."""

    source: str = "digits"
    data_dir: str | None = None
    max_train: int | None = None
    seed: int = 0
    target: str | None = None
    val_fraction: float = VAL_FRACTION

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or not self.source:
            raise ConfigError(f"--data must name a dataset, got {self.source!r}")
        check_float("--val-fraction", self.val_fraction, 0, 1, open_low=True, open_high=True)
        if self.max_train is not None:
            check_int("--max-train", self.max_train, 1, MAX_TRAIN)
        check_seed(self.seed)


@dataclass(frozen=True)
class SpaceOptions:
    """A registered space (or ``auto``: ``mlp`` for tables, ``mbconv`` for images) and its
    overrides; ``None`` keeps the space's (or preset's) default.

    Images of at most 32x32 get a compact preset (width 0.5, head 256) unless overridden, so
    the default job runs in minutes on a CPU; the NEAS-exact space is ``width_mult=1``,
    ``head_width=960``, ``feature_width=1280``.
    """

    name: str = AUTO_SPACE
    members: int | None = None
    width_mult: float | None = None
    head_width: int | None = None
    feature_width: int | None = None
    embedding: str | None = None

    def __post_init__(self) -> None:
        if self.embedding is not None and self.embedding not in EMBEDDINGS:
            raise ConfigError(
                f"unknown --embedding {self.embedding!r}; valid: {', '.join(EMBEDDINGS)}"
            )
        if self.name != AUTO_SPACE and self.name not in list_spaces():
            raise UnknownSpaceError(
                f"unknown search space {self.name!r}; valid spaces: {AUTO_SPACE} (from the "
                f"data), {', '.join(list_spaces())}"
            )
        if self.members is not None:
            check_int("--members", self.members, 1, MAX_MEMBERS)
        if self.width_mult is not None:
            check_float("--width-mult", self.width_mult, 0, MAX_WIDTH_MULT, open_low=True)
        for name, value in (
            ("--head-width", self.head_width),
            ("--feature-width", self.feature_width),
        ):
            if value is not None:
                check_int(name, value, 1, MAX_WIDTH)

    def resolved(self, dataset: Dataset) -> str:
        """The space's name, with ``auto`` picked from the data (tables: ``mlp``)."""
        if self.name != AUTO_SPACE:
            return self.name
        return "mlp" if dataset.is_table else "mbconv"


@dataclass(frozen=True)
class TrainConfig:
    """Supernet training (and stand-alone / fine-tune training) hyper-parameters.

    ``epochs`` and ``batch_size`` left ``None`` are the data's schedule (``settled``): images
    ``IMAGE_EPOCHS`` of ``IMAGE_BATCH``; tables by optimizer steps (``table_schedule``). A job
    settles them once the data is read and stores the numbers in ``config.json``. ``lr=None``
    picks the optimizer's default; ``summary_samples`` random ensembles are scored on
    validation after training (``train_summary.json``) when no search follows (``neas train``);
    a search's own first generation is its random baseline.

    >>> table, images = dict(rows=1_000, table=True), dict(rows=1_000, table=False)
    >>> TrainConfig().settled(**table).epochs, TrainConfig().settled(**images).epochs
    (15, 9)
    >>> TrainConfig(epochs=3).settled(**table).epochs
    3
    """

    epochs: int | None = None
    batch_size: int | None = None
    weights: str = "entangled"
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float | None = None
    weight_decay: float = 0.01
    momentum: float = 0.9
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    augment: bool = True
    seed: int = 0
    amp: bool = True
    channels_last: bool = True
    summary_samples: int = 8

    def __post_init__(self) -> None:
        if self.epochs is not None:
            check_int("--epochs", self.epochs, 1, MAX_EPOCHS)
        if self.batch_size is not None:
            check_int("--batch-size", self.batch_size, 1, MAX_BATCH)
        if self.lr is not None:
            check_float("--lr", self.lr, 0, 10, open_low=True)
        check_float("weight decay", self.weight_decay, 0, 1)
        check_float("momentum", self.momentum, 0, 1, open_high=True)
        check_float("--label-smoothing", self.label_smoothing, 0, 1, open_high=True)
        check_seed(self.seed)
        check_int("summary samples", self.summary_samples, 0, MAX_SAMPLES)
        if self.weights not in WEIGHT_MODES:
            raise ConfigError(
                f"unknown weight mode {self.weights!r}; valid: {', '.join(WEIGHT_MODES)}"
            )
        if self.optimizer not in ("sgd", "adamw"):
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; valid: sgd, adamw")
        check_float("warm-up epochs", self.warmup_epochs, 0, MAX_EPOCHS)

    def settled(self, *, rows: int, table: bool) -> TrainConfig:
        """``epochs`` and ``batch_size`` that are ``None`` filled in for ``rows`` training
        rows of a table (``table_schedule``) or of images (``IMAGE_EPOCHS``, ``IMAGE_BATCH``)."""
        epochs, batch = table_schedule(rows) if table else (IMAGE_EPOCHS, IMAGE_BATCH)
        return replace(
            self,
            epochs=self.epochs if self.epochs is not None else epochs,
            batch_size=self.batch_size if self.batch_size is not None else batch,
        )

    @property
    def is_settled(self) -> bool:
        return self.epochs is not None and self.batch_size is not None

    @property
    def base_lr(self) -> float:
        return self.lr if self.lr is not None else (0.1 if self.optimizer == "sgd" else 3e-3)


#: Ensembles sampled and scored at each shrink step. 8 instead of 16 halves the shrink steps
#: (about 20 s of the main job's ~245 s on 1 thread); the main job over seeds 0-2 kept its
#: best-val ensemble's test accuracy: 98.24% mean (98.15% with 4 search generations) vs 98.06%
#: with 16 (benchmarks/RESULTS.md, "Main job vs reference workload").
SHRINK_SAMPLES = 8


@dataclass(frozen=True)
class ShrinkConfig:
    """When and how hard to shrink (``at=()``: never); see ``neas.shrink`` for the score.

    >>> ShrinkConfig(at=(0.25, 0.5)).epochs(10), ShrinkConfig(at=()).enabled
    ((2, 5), False)
    """

    at: tuple[float, ...] = (0.3, 0.5, 0.7)
    ratio: float = 0.25
    diversity_weight: float = 1.0
    min_ops: int = 2
    samples: int = SHRINK_SAMPLES
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.at, (tuple, list)):
            raise ConfigError(f"shrink points must be a list of fractions, got {self.at!r}")
        for a in self.at:
            check_float("shrink points", a, 0, 1, open_low=True, open_high=True)
        at = tuple(float(a) for a in self.at)
        object.__setattr__(self, "at", at)
        if not all(0.0 < a < 1.0 for a in at):
            raise ConfigError(f"shrink points must be fractions of training in (0, 1), got {at}")
        if any(b <= a for a, b in zip(at, at[1:])):
            raise ConfigError(f"shrink points must be strictly increasing, got {at}")
        if not 0.0 <= self.ratio < 1.0:
            raise ConfigError(
                f"shrink ratio must be in [0, 1) (1 would empty a layer), got {self.ratio}"
            )
        check_int("--min-ops", self.min_ops, 1, 1000)
        check_int("--shrink-samples", self.samples, 2, MAX_SAMPLES)
        if not isinstance(self.diversity_weight, (int, float)) or not math.isfinite(
            self.diversity_weight
        ):
            raise ConfigError(f"diversity weight must be finite, got {self.diversity_weight}")
        check_seed(self.seed)

    @property
    def enabled(self) -> bool:
        return bool(self.at)

    def epochs(self, total_epochs: int) -> tuple[int, ...]:
        """Epoch counts after which to shrink: rounded, in 1..total-1, deduplicated."""
        picked = {min(max(round(a * total_epochs), 1), total_epochs - 1) for a in self.at}
        return tuple(sorted(e for e in picked if 1 <= e < total_epochs))


def parse_shrink_at(text: str) -> tuple[float, ...]:
    """``"0.3,0.5,0.7"`` -> ``(0.3, 0.5, 0.7)``; ``""`` or ``"none"`` -> ``()`` (no shrinking).

    >>> parse_shrink_at("0.3, 0.6"), parse_shrink_at("none")
    ((0.3, 0.6), ())
    """
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(
            f"--shrink-at takes comma-separated fractions like 0.3,0.5,0.7, got {text!r}"
        ) from None


@dataclass(frozen=True)
class SearchOptions:
    """Search settings. ``evaluations`` defaults to ``population * generations``.

    K is fixed to the space's K by default: with K searched, single networks took the whole
    digits front (1-2 points, all K=1; README "Search"); ``search_members`` turns it on.
    ``ensemble_size`` fixes K to a smaller value instead (1: single-network NAS on the same
    supernet, the baseline an ensemble search has to beat).
    ``latency=False`` leaves measured latency out (objectives: error and MACs), so that the
    search gives the same front in every run with the same seed.
    """

    budget: str | int = "600M"
    strategy: str = "nsga2"
    population: int = 16
    #: 4, was 6 (2026-12-05): on the digits main job, seeds 0-5 one after the other, the user's
    #: ensemble 98.70 % test against 98.43 %, the search 16.0 s against 21.0 s (the search's
    #: validation ranking barely predicts test there: Kendall tau 0.07-0.20 over the ~90 ensembles
    #: a search scores, RESULTS.md "BN recalibration images"); on the 18 real tables (seed 0,
    #: `NEASClassifier()`) mean accuracy +0.00 points, log-loss 0.372 -> 0.364.
    generations: int = 4
    evaluations: int | None = None
    search_members: bool = False
    ensemble_size: int | None = None
    latency: bool = True
    latency_batch: int = 1
    storage: str | None = None
    surrogate: bool = False
    seed: int = 0
    calibration_images: int = CALIBRATION_IMAGES

    def __post_init__(self) -> None:
        self.budget_macs  # noqa: B018  (parses, or raises BudgetError)
        check_int("--population", self.population, 2, MAX_SAMPLES)
        check_int("--generations", self.generations, 1, MAX_SAMPLES)
        if self.evaluations is not None:
            check_int("--evaluations", self.evaluations, 1, MAX_SAMPLES * 10)
        check_seed(self.seed)
        if self.total_evaluations < self.population:
            raise ConfigError(
                f"--evaluations ({self.total_evaluations}) is smaller than the population "
                f"({self.population})"
            )
        if self.ensemble_size is not None and self.ensemble_size < 1:
            raise ConfigError(f"--ensemble-size must be at least 1, got {self.ensemble_size}")
        if self.ensemble_size is not None and self.search_members:
            raise ConfigError(
                "--ensemble-size fixes K; it cannot be combined with --search-members"
            )
        check_int("--latency-batch", self.latency_batch, 1, MAX_BATCH)
        check_int("calibration images", self.calibration_images, 1, 10**7)

    @property
    def budget_macs(self) -> int:
        return parse_budget(self.budget)

    @property
    def total_evaluations(self) -> int:
        return (
            self.evaluations
            if self.evaluations is not None
            else (self.population * self.generations)
        )


@dataclass(frozen=True)
class FinalOptions:
    """The final training stage of the main job's best ensemble (``neas.deploy.final``):
    ``epochs`` (0: export the supernet's weights as they are) from the starting weights ``init``
    (``FINAL_INITS``); ``patience`` > 0 stops early when the ensemble's validation score has
    not improved for that many epochs, and keeps its best epoch (the start included);
    ``refit`` then trains the same start again on the training and validation rows together
    for the epochs kept (``neas.deploy.final``; not under a time limit).

    Left ``None``, each is the data's (``settled``): images ``FINAL_EPOCHS`` from
    ``FINAL_INIT``, ``FINAL_PATIENCE``, ``FINAL_REFIT``; tables as many epochs as the
    supernet's schedule from ``TABLE_FINAL_INIT``, stopped after ``TABLE_PATIENCE``, refit
    as ``TABLE_REFIT``.

    >>> FinalOptions().settled(rows=1_000, table=True)
    FinalOptions(epochs=15, init='branches', patience=16, refit=True)
    """

    epochs: int | None = None
    init: str | None = None
    patience: int | None = None
    refit: bool | None = None

    def __post_init__(self) -> None:
        if self.epochs is not None:
            check_int("--final-epochs", self.epochs, 0, MAX_EPOCHS)
        if self.patience is not None:
            check_int("--final-patience", self.patience, 0, MAX_EPOCHS)
        if self.init is not None and self.init not in FINAL_INITS:
            raise ConfigError(
                f"unknown --final-init {self.init!r}; valid: {', '.join(FINAL_INITS)}"
            )
        if self.refit is not None and not isinstance(self.refit, bool):
            raise ConfigError(f"--final-refit must be true or false, got {self.refit!r}")

    def settled(self, *, rows: int, table: bool) -> FinalOptions:
        """The ``None`` fields filled in for ``rows`` training rows of a table or images."""
        if table:
            data = (table_schedule(rows)[0], TABLE_FINAL_INIT, TABLE_PATIENCE, TABLE_REFIT)
        else:
            data = (FINAL_EPOCHS, FINAL_INIT, FINAL_PATIENCE, FINAL_REFIT)
        given = (self.epochs, self.init, self.patience, self.refit)
        epochs, init, patience, refit = (g if g is not None else d for g, d in zip(given, data))
        return FinalOptions(epochs=epochs, init=init, patience=patience, refit=refit)


@dataclass(frozen=True)
class RunConfig:
    """What a trained run is: data, space, supernet training and shrinking (``config.json``)."""

    data: DataOptions = field(default_factory=DataOptions)
    space: SpaceOptions = field(default_factory=SpaceOptions)
    train: TrainConfig = field(default_factory=TrainConfig)
    shrink: ShrinkConfig = field(default_factory=ShrinkConfig)

    def settled(self, *, rows: int, table: bool) -> RunConfig:
        """The training schedule the data decides filled in (``TrainConfig.settled``)."""
        return replace(self, train=self.train.settled(rows=rows, table=table))

    def with_seed(self, seed: int) -> RunConfig:
        """The same configuration with one seed for splits, init, sampling and shrinking."""
        return RunConfig(
            data=replace(self.data, seed=seed),
            space=self.space,
            train=replace(self.train, seed=seed),
            shrink=replace(self.shrink, seed=seed),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"format": 2, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Read ``config.json`` (format 2, or format 1 with a top-level ``weights``)."""
        try:
            train = dict(data["train"])
            if "weights" in data:  # format 1
                train["weights"] = data["weights"]
            shrink = data.get("shrink") or {"at": ()}
            return cls(
                data=DataOptions(**data["data"]),
                space=SpaceOptions(**data["space"]),
                train=TrainConfig(**train),
                shrink=ShrinkConfig(**shrink),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(
                f"not a neas run configuration ({type(exc).__name__}: {exc})"
            ) from None

"""``neas search`` (the main job) and ``neas evolve`` (search only, on a trained run)."""

from __future__ import annotations

import time
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from neas.cli.common import (
    app,
    console,
    print_config,
    quiet_libraries,
    run_config_from,
    user_errors,
)
from neas.cli.options import (
    D_BATCH,
    D_BUDGET,
    D_DATA,
    D_DIVERSITY,
    D_ENSEMBLE_SIZE,
    D_EPOCHS,
    D_FINAL_EPOCHS,
    D_FINAL_INIT,
    D_FINAL_PATIENCE,
    D_FINAL_REFIT,
    D_GENERATIONS,
    D_LATENCY,
    D_LATENCY_BATCH,
    D_MIN_OPS,
    D_OPTIMIZER,
    D_POPULATION,
    D_SEARCH_MEMBERS,
    D_SEED,
    D_SHRINK_AT,
    D_SHRINK_RATIO,
    D_SHRINK_SAMPLES,
    D_SMOOTHING,
    D_SPACE,
    D_STRATEGY,
    D_SURROGATE,
    D_THREADS,
    D_VAL_FRACTION,
    D_WEIGHTS,
    FLAG,
    BatchOpt,
    DataDirOpt,
    DataOpt,
    DeviceOpt,
    DiversityOpt,
    EmbeddingOpt,
    EpochsOpt,
    FeatureOpt,
    FinalEpochsOpt,
    FinalInitOpt,
    FinalPatienceOpt,
    FinalRefitOpt,
    HeadOpt,
    LrOpt,
    MaxTrainOpt,
    MembersOpt,
    MinOpsOpt,
    OptimizerOpt,
    PrintConfigOpt,
    SeedOpt,
    ShrinkAtOpt,
    ShrinkRatioOpt,
    ShrinkSamplesOpt,
    SmoothingOpt,
    SpaceOpt,
    TargetOpt,
    ThreadsOpt,
    TimeLimitOpt,
    ValFractionOpt,
    WeightsOpt,
    WidthOpt,
)
from neas.cli.resume import command_line, kept_options, resume_on_interrupt
from neas.config import FinalOptions, SearchOptions, parse_threads
from neas.time_limit import parse_duration

BudgetOpt = Annotated[
    str,
    typer.Option(
        "--budget",
        "-b",
        rich_help_panel="Search",
        help="MACs budget per ensemble: 600M, 1.2G, 500k, 3e8.",
        metavar="MACS",
    ),
]
StrategyOpt = Annotated[
    str,
    typer.Option(
        "--strategy",
        rich_help_panel="Search",
        help="Search strategy: nsga2 (default), optuna, random.",
        metavar="NAME",
    ),
]
PopulationOpt = Annotated[
    int, typer.Option("--population", rich_help_panel="Search", help="Individuals per generation.")
]
GenerationsOpt = Annotated[
    int, typer.Option("--generations", rich_help_panel="Search", help="Generations to run.")
]
EvaluationsOpt = Annotated[
    int | None,
    typer.Option(
        "--evaluations",
        rich_help_panel="Search",
        help="Total proposals (default population x generations). With optuna and --storage "
        "it is the study's total: all workers and earlier runs together; a worker stops "
        "asking once the study holds that many trials.",
    ),
]
SearchKOpt = Annotated[
    bool,
    typer.Option(
        "--search-members/--fixed-members",
        rich_help_panel="Search",
        help="Also search K in 1..--members, so single networks compete on the front "
        "(default: K fixed to --members).",
        metavar=FLAG,
    ),
]
EnsembleSizeOpt = Annotated[
    int | None,
    typer.Option(
        "--ensemble-size",
        rich_help_panel="Search",
        help="Search only ensembles of this many members, at most --members (1: single "
        "networks on the same supernet, the baseline an ensemble has to beat).",
    ),
]
LatencyOpt = Annotated[
    bool,
    typer.Option(
        "--latency/--no-latency",
        rich_help_panel="Search",
        help="Measure latency and make it the third objective (--no-latency: error and MACs "
        "only, the same front in every run with the same seed).",
        metavar=FLAG,
    ),
]
LatencyBatchOpt = Annotated[
    int,
    typer.Option(
        "--latency-batch", rich_help_panel="Search", help="Batch size of the latency lookup table."
    ),
]
SurrogateOpt = Annotated[
    bool,
    typer.Option(
        "--surrogate/--no-surrogate",
        rich_help_panel="Search",
        help="nsga2 only: a random-forest accuracy surrogate pre-screens offspring.",
        metavar=FLAG,
    ),
]
StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage",
        rich_help_panel="Search",
        help="optuna storage: a journal file path or an RDB URL (sqlite:///study.db). Resumable; "
        "several `neas evolve` workers on one storage share the study and never score an "
        "architecture twice (README: Distributed search).",
        metavar="PATH|URL",
    ),
]


RUNS = Path("runs")  # where `neas search` without --out puts its run folders


def _default_out(*, resume: bool) -> Path:
    """The next free ``runs/search-NNN``; with ``resume``, the most recent one whose job did
    not finish (it has no report yet), said on the console."""
    from neas.errors import RunDirError
    from neas.layout import MARKER, REPORT

    folders = sorted(RUNS.glob("search-[0-9][0-9][0-9]"))
    if resume:
        unfinished = [f for f in folders if (f / MARKER).is_file() and not (f / REPORT).exists()]
        if not unfinished:
            latest = f"; the latest, {folders[-1]}, is finished" if folders else ""
            raise RunDirError(
                f"--resume without --out: no unfinished run in {RUNS}/{latest}; pass "
                "--out RUN to reopen one"
            )
        typer.echo(f"resuming {unfinished[-1]} (the most recent unfinished run)")
        return unfinished[-1]
    i = 1
    while (RUNS / f"search-{i:03d}").exists():
        i += 1
    return RUNS / f"search-{i:03d}"


#: What each column of the printed front means (the report says the same at more length).
FRONT_LEGEND = (
    "split s/L: the members share their first s of L layers (L/L: one network with K heads). "
    "pred. ms: latency predicted from a per-layer table timed on this machine (PyTorch, "
    "search batch); the exported ONNX graphs' measured times are in the report. val NLL breaks "
    "ties between equal val accuracies (lower is better). disagree: share of val images on "
    "which the members' predicted classes differ (0: the members are copies, averaging gains "
    "nothing)."
)


def print_front(front, *, budget: int, run_dir: Path) -> None:
    import json
    import math

    from neas.budget import format_macs

    table = Table(title=f"Pareto front ({len(front)} ensembles, budget {format_macs(budget)})")
    columns = ("id", "K", "split s/L", "MACs", "params", "pred. ms", "val acc", "val NLL")
    for col in (*columns, "test acc", "disagree"):
        table.add_column(col, justify="right")
    for row in front.itertuples():
        arch = json.loads(row.arch)
        layers = len(arch["shared"]) + len(arch["members"][0])
        latency = getattr(row, "latency_ms", math.nan)
        nll = getattr(row, "val_nll", math.nan)
        table.add_row(
            row.id,
            str(row.members),
            f"{row.split}/{layers}",
            format_macs(row.macs),
            format_macs(row.params),
            "-" if not math.isfinite(latency) or latency <= 0 else f"{latency:.2f}",
            f"{100 * row.val_accuracy:.2f}%",
            "-" if not math.isfinite(nll) else f"{nll:.3f}",
            f"{100 * row.test_accuracy:.2f}%",
            f"{row.disagreement:.3f}",
        )
    console.print(table)
    console.print(FRONT_LEGEND, style="dim")
    console.print(f"results in {run_dir} (pareto.csv, pareto.png, search/, ensembles/)")
    from neas.front import describe_best
    from neas.results import load_run

    # pareto.csv as the run left it: with the final stage's scores, which the table above lacks
    console.print(
        f"best: {describe_best(load_run(run_dir).best())}; "
        f"in Python: neas.load_run({str(run_dir)!r}).best()"
    )


def search_options_from(options: dict[str, Any]) -> SearchOptions:
    """``SearchOptions`` from a command's ``locals()``: every field the command has an option
    for, by name (the others keep their defaults)."""
    names = {f.name for f in fields(SearchOptions)}
    return SearchOptions(**{k: v for k, v in options.items() if k in names})


@app.command("search")
@user_errors
def search_cmd(
    ctx: typer.Context,
    space: SpaceOpt = D_SPACE,
    budget: BudgetOpt = D_BUDGET,
    data: DataOpt = D_DATA,
    data_dir: DataDirOpt = None,
    max_train: MaxTrainOpt = None,
    val_fraction: ValFractionOpt = D_VAL_FRACTION,
    target: TargetOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Run folder (default: the next free runs/search-NNN; with --resume, the most "
            "recent unfinished one).",
        ),
    ] = None,
    strategy: StrategyOpt = D_STRATEGY,
    population: PopulationOpt = D_POPULATION,
    generations: GenerationsOpt = D_GENERATIONS,
    evaluations: EvaluationsOpt = None,
    epochs: EpochsOpt = D_EPOCHS,
    batch_size: BatchOpt = D_BATCH,
    members: MembersOpt = None,
    search_members: SearchKOpt = D_SEARCH_MEMBERS,
    ensemble_size: EnsembleSizeOpt = D_ENSEMBLE_SIZE,
    weights: WeightsOpt = D_WEIGHTS,
    optimizer: OptimizerOpt = D_OPTIMIZER,
    lr: LrOpt = None,
    label_smoothing: SmoothingOpt = D_SMOOTHING,
    width_mult: WidthOpt = None,
    head_width: HeadOpt = None,
    feature_width: FeatureOpt = None,
    embedding: EmbeddingOpt = None,
    latency: LatencyOpt = D_LATENCY,
    latency_batch: LatencyBatchOpt = D_LATENCY_BATCH,
    storage: StorageOpt = None,
    surrogate: SurrogateOpt = D_SURROGATE,
    export: Annotated[
        bool, typer.Option(help="Export the front (ONNX + PyTorch).", metavar=FLAG)
    ] = True,
    final_epochs: FinalEpochsOpt = D_FINAL_EPOCHS,
    final_init: FinalInitOpt = D_FINAL_INIT,
    final_patience: FinalPatienceOpt = D_FINAL_PATIENCE,
    final_refit: FinalRefitOpt = D_FINAL_REFIT,
    shrink_at: ShrinkAtOpt = D_SHRINK_AT,
    shrink_ratio: ShrinkRatioOpt = D_SHRINK_RATIO,
    diversity_weight: DiversityOpt = D_DIVERSITY,
    min_ops: MinOpsOpt = D_MIN_OPS,
    shrink_samples: ShrinkSamplesOpt = D_SHRINK_SAMPLES,
    seed: SeedOpt = D_SEED,
    device: DeviceOpt = None,
    threads: ThreadsOpt = D_THREADS,
    resume: Annotated[
        bool,
        typer.Option(
            help="Reuse the stages already done in --out and continue the one a kill "
            "interrupted (training from its last epoch, the search from its last generation).",
            metavar=FLAG,
        ),
    ] = False,
    force: Annotated[bool, typer.Option(help="Start over, clearing --out.", metavar=FLAG)] = False,
    time_limit: TimeLimitOpt = None,
    show_config: PrintConfigOpt = False,
) -> None:
    """The main job: train (with shrinking), search under the budget, export, report."""
    started = time.monotonic()  # a time limit counts loading torch and the data
    config = run_config_from(locals())
    limit = parse_duration(time_limit) if time_limit is not None else None
    options = search_options_from(locals())
    final = FinalOptions(
        epochs=final_epochs, init=final_init, patience=final_patience, refit=final_refit
    )
    if show_config:
        print_config(config, options, final)
        return
    threads = parse_threads(threads)
    out = out or _default_out(resume=resume)
    from neas import pipeline  # after the options are checked: bad input needs no torch

    quiet_libraries(strategy)
    if resume and (note := kept_options(ctx, config, out)):
        typer.echo(note)
    with resume_on_interrupt(command_line(ctx, out=out, resume=True, force=None)):
        result = pipeline.search(
            out=out,
            config=config,
            options=options,
            final=final,
            device=device,
            threads=threads,
            resume=resume,
            force=force,
            export=export,
            time_limit=limit,
            started=started,
        )
    if result is None:  # torchrun: ranks other than 0 stop after training
        return
    print_front(result.search.front, budget=options.budget_macs, run_dir=result.run_dir)
    console.print(f"report: {result.report_path}")


@app.command("evolve")
@user_errors
def evolve_cmd(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="A run folder with a trained supernet.")],
    budget: BudgetOpt = D_BUDGET,
    strategy: StrategyOpt = D_STRATEGY,
    population: PopulationOpt = D_POPULATION,
    generations: GenerationsOpt = D_GENERATIONS,
    evaluations: EvaluationsOpt = None,
    search_members: SearchKOpt = D_SEARCH_MEMBERS,
    ensemble_size: EnsembleSizeOpt = D_ENSEMBLE_SIZE,
    latency: LatencyOpt = D_LATENCY,
    latency_batch: LatencyBatchOpt = D_LATENCY_BATCH,
    storage: StorageOpt = None,
    surrogate: SurrogateOpt = D_SURROGATE,
    seed: SeedOpt = D_SEED,
    device: DeviceOpt = None,
    threads: ThreadsOpt = D_THREADS,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--fresh",
            help="--resume (default): continue a search that was killed, from the scores "
            "checkpointed after each generation, and return a finished search with the same "
            "options as it is; the result is the one a fresh search gives, so rerunning the "
            "command after an interruption is all it takes. --fresh: score every architecture "
            "again.",
            metavar=FLAG,
        ),
    ] = True,
) -> None:
    """Run only the search on an already trained supernet (results replace earlier ones)."""
    options = search_options_from(locals())
    threads = parse_threads(threads)
    from neas import pipeline  # after the options are checked: bad input needs no torch

    quiet_libraries(strategy)
    with resume_on_interrupt(command_line(ctx, resume=True)):
        result = pipeline.evolve(
            run_dir, options=options, device=device, threads=threads, resume=resume
        )
    print_front(result.front, budget=options.budget_macs, run_dir=Path(run_dir))
    from neas.layout import REPORT

    console.print(f"report: {Path(run_dir) / REPORT}")

"""``neas search`` (the main job) and ``neas evolve`` (search only, on a trained run)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from neas.cli.common import (
    DataDirOpt,
    DataOpt,
    DeviceOpt,
    DiversityOpt,
    FeatureOpt,
    HeadOpt,
    MaxTrainOpt,
    MembersOpt,
    MinOpsOpt,
    SeedOpt,
    ShrinkAtOpt,
    ShrinkRatioOpt,
    ShrinkSamplesOpt,
    SpaceOpt,
    WidthOpt,
    app,
    console,
    shrink_config,
    user_errors,
)

BudgetOpt = Annotated[
    str, typer.Option("--budget", "-b", help="MACs budget per ensemble: 600M, 1.2G, 500k, 3e8.")
]
StrategyOpt = Annotated[
    str, typer.Option("--strategy", help="Search strategy: nsga2 (default), optuna, random.")
]
PopulationOpt = Annotated[int, typer.Option("--population", help="Individuals per generation.")]
GenerationsOpt = Annotated[int, typer.Option("--generations", help="Generations to run.")]
EvaluationsOpt = Annotated[
    int | None,
    typer.Option("--evaluations", help="Total proposals (default population x generations)."),
]
SearchKOpt = Annotated[
    bool,
    typer.Option(
        "--search-members/--fixed-members",
        help="Also search K in 1..--members, so single networks compete on the front "
        "(default: K fixed to --members).",
    ),
]
LatencyBatchOpt = Annotated[
    int, typer.Option("--latency-batch", help="Batch size of the latency lookup table.")
]
SurrogateOpt = Annotated[
    bool,
    typer.Option(
        "--surrogate/--no-surrogate",
        help="nsga2 only: a random-forest accuracy surrogate pre-screens offspring.",
    ),
]
StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help="optuna storage: a journal file path or an RDB URL (resumable, shareable).",
    ),
]


def _options(**kw):
    from neas.search_stage import SearchOptions

    return SearchOptions(**kw)


def _default_out() -> Path:
    root = Path("runs")
    i = 1
    while (root / f"search-{i:03d}").exists():
        i += 1
    return root / f"search-{i:03d}"


def print_front(front, *, budget: int, run_dir: Path) -> None:
    from neas.budget import format_macs

    table = Table(title=f"Pareto front ({len(front)} ensembles, budget {format_macs(budget)})")
    for col in (
        "id",
        "K",
        "split",
        "MACs",
        "params",
        "latency ms",
        "val acc",
        "test acc",
        "disagree",
    ):
        table.add_column(col, justify="right")
    for row in front.itertuples():
        table.add_row(
            row.id,
            str(row.members),
            str(row.split),
            format_macs(row.macs),
            format_macs(row.params),
            f"{row.latency_ms:.2f}",
            f"{100 * row.val_accuracy:.2f}",
            f"{100 * row.test_accuracy:.2f}",
            f"{row.disagreement:.3f}",
        )
    console.print(table)
    console.print(f"results in {run_dir} (pareto.csv, pareto.png, search/)")


@app.command("search")
@user_errors
def search_cmd(
    space: SpaceOpt = "mbconv",
    budget: BudgetOpt = "600M",
    data: DataOpt = "digits",
    data_dir: DataDirOpt = None,
    max_train: MaxTrainOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run folder (default runs/search-NNN).")
    ] = None,
    strategy: StrategyOpt = "nsga2",
    population: PopulationOpt = 16,
    generations: GenerationsOpt = 6,
    evaluations: EvaluationsOpt = None,
    epochs: Annotated[int, typer.Option(help="Supernet training epochs.")] = 20,
    members: MembersOpt = None,
    search_members: SearchKOpt = False,
    weights: Annotated[str, typer.Option(help="entangled (default) or separate.")] = "entangled",
    width_mult: WidthOpt = None,
    head_width: HeadOpt = None,
    feature_width: FeatureOpt = None,
    latency_batch: LatencyBatchOpt = 1,
    storage: StorageOpt = None,
    surrogate: SurrogateOpt = False,
    export: Annotated[bool, typer.Option(help="Export the front (ONNX + PyTorch).")] = True,
    shrink_at: ShrinkAtOpt = "0.3,0.5,0.7",
    shrink_ratio: ShrinkRatioOpt = 0.25,
    diversity_weight: DiversityOpt = 1.0,
    min_ops: MinOpsOpt = 2,
    shrink_samples: ShrinkSamplesOpt = 16,
    seed: SeedOpt = 0,
    device: DeviceOpt = None,
    resume: Annotated[bool, typer.Option(help="Reuse the stages already done in --out.")] = False,
    force: Annotated[bool, typer.Option(help="Start over, clearing --out.")] = False,
) -> None:
    """Train a supernet, search ensembles under the MACs budget, export and report the front."""
    from neas import pipeline
    from neas.train import TrainConfig

    options = _options(
        budget=budget,
        strategy=strategy,
        population=population,
        generations=generations,
        evaluations=evaluations,
        search_members=search_members,
        latency_batch=latency_batch,
        storage=storage,
        surrogate=surrogate,
        seed=seed,
    )
    result = pipeline.search(
        out=out or _default_out(),
        data=pipeline.DataOptions(source=data, data_dir=data_dir, max_train=max_train, seed=seed),
        space=pipeline.SpaceOptions(
            name=space,
            members=members,
            width_mult=width_mult,
            head_width=head_width,
            feature_width=feature_width,
        ),
        weights=weights,
        config=TrainConfig(epochs=epochs, seed=seed),
        shrink=shrink_config(
            at=shrink_at,
            ratio=shrink_ratio,
            diversity_weight=diversity_weight,
            min_ops=min_ops,
            samples=shrink_samples,
            seed=seed,
        ),
        options=options,
        device=device,
        resume=resume,
        force=force,
        export=export,
    )
    print_front(result.search.front, budget=options.budget_macs, run_dir=result.run_dir)


@app.command("evolve")
@user_errors
def evolve_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run folder with a trained supernet.")],
    budget: BudgetOpt = "600M",
    strategy: StrategyOpt = "nsga2",
    population: PopulationOpt = 16,
    generations: GenerationsOpt = 6,
    evaluations: EvaluationsOpt = None,
    search_members: SearchKOpt = False,
    latency_batch: LatencyBatchOpt = 1,
    storage: StorageOpt = None,
    surrogate: SurrogateOpt = False,
    seed: SeedOpt = 0,
    device: DeviceOpt = None,
) -> None:
    """Run only the search on an already trained supernet (results replace earlier ones)."""
    from neas import pipeline

    options = _options(
        budget=budget,
        strategy=strategy,
        population=population,
        generations=generations,
        evaluations=evaluations,
        search_members=search_members,
        latency_batch=latency_batch,
        storage=storage,
        surrogate=surrogate,
        seed=seed,
    )
    result = pipeline.evolve(run_dir, options=options, device=device, resume=False)
    print_front(result.front, budget=options.budget_macs, run_dir=Path(run_dir))

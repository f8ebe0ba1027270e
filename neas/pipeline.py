"""The orchestration that the CLI, the Python API and the estimator call; no printing, no parsing.

Stages take plain values and return plain values; everything lands in one run folder (file
names in ``neas.run``): train (with shrinking) -> search -> export. Defaults come from the
config dataclasses (``neas.config``) alone, so ``search(out=...)`` runs what
``neas search --space mbconv --budget 600M`` runs.

Under ``torchrun`` the training stage runs data parallel (``neas.training.distributed``): every
rank trains, only rank 0 writes the run folder; ``search`` then goes on with rank 0 alone and
returns ``None`` on the other ranks.

>>> config, options = resolve(seed=1)
>>> config.train.seed, options.seed, options.budget_macs
(1, 1, 600000000)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neas.config import THREADS, FinalOptions, RunConfig, SearchOptions
from neas.data import Dataset
from neas.deploy import export_run
from neas.device import Threads, parse_threads, resolve_device, torch_threads
from neas.errors import NeasError
from neas.evaluate import calibration_images, evaluate_arch
from neas.evolution import (
    SearchResult,
    check_search,
    load_search,
    preflight_search,
    run_search,
)
from neas.nn.supernet import Supernet
from neas.report import write_report
from neas.results import RunResults
from neas.run import (
    CHECKPOINT,
    CONFIG,
    SPACE,
    TRAIN_SUMMARY,
    TrainedRun,
    load_checkpoint,
    open_trained,
    prepare_run_dir,
    read_config,
    read_json,
    supernet_from_checkpoint,
    write_config,
    write_json,
)
from neas.search_spaces import SearchSpace, sample
from neas.shrink import Shrinker
from neas.training import TrainState, train_supernet, training_threads
from neas.training.distributed import World, data_parallel


def resolve(
    *,
    config: RunConfig | None = None,
    options: SearchOptions | None = None,
    seed: int | None = None,
) -> tuple[RunConfig, SearchOptions]:
    """The configuration a job runs with: defaults for what is missing, one ``seed`` for all."""
    config, options = config or RunConfig(), options or SearchOptions()
    if seed is not None:
        config, options = config.with_seed(seed), replace(options, seed=seed)
    return config, options


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    supernet: Supernet
    state: TrainState
    dataset: Dataset
    summary: dict[str, Any]
    threads: int | None = None  # the torch thread count training ran with (None: torch's)

    def opened(self, config: RunConfig) -> TrainedRun:
        return TrainedRun(
            self.run_dir, config, self.supernet, self.dataset, self.state.epoch, self.state.history
        )


@dataclass(frozen=True)
class TrainPlan:
    """Everything settled before a run folder is touched: bad input fails here."""

    out: Path
    config: RunConfig
    dataset: Dataset
    search_space: SearchSpace
    resuming: bool


def plan_training(*, out: str | Path, config: RunConfig, resume: bool) -> TrainPlan:
    """Read the run's stored configuration when resuming, load the data, build the space."""
    out = Path(out)
    resuming = resume and (out / CONFIG).exists()
    if resuming:
        config = read_config(out)
    dataset = config.data.load()
    return TrainPlan(out, config, dataset, config.space.build(dataset), resuming)


def train(
    *,
    out: str | Path,
    config: RunConfig | None = None,
    seed: int | None = None,
    device: str | None = None,
    threads: Threads = THREADS,
    resume: bool = False,
    force: bool = False,
    show_progress: bool = True,
) -> TrainResult:
    """Train a supernet (shrinking the space on the way) into the run folder ``out``.

    ``resume`` continues the run in ``out`` with its stored configuration; ``force`` starts
    over. ``threads`` sets torch's CPU thread count for the job: ``N``, ``"auto"`` (the fastest
    over a few timed training steps) or ``None`` (torch's default).

    >>> result = train(out="runs/demo", config=RunConfig(train=TrainConfig(epochs=1)))
    ... # doctest: +SKIP
    >>> result.summary["random_val_accuracy_mean"]  # doctest: +SKIP
    0.93
    """
    config, _ = resolve(config=config, seed=seed)
    threads = parse_threads(threads)
    with data_parallel(resolve_device(device)) as (world, dev):
        plan = plan_training(out=out, config=config, resume=resume)
        return train_planned(
            plan,
            device=dev,
            resume=resume,
            force=force,
            show_progress=show_progress,
            world=world,
            threads=threads,
        )


def train_planned(
    plan: TrainPlan,
    *,
    device: str | torch.device | None,
    resume: bool,
    force: bool,
    show_progress: bool = True,
    world: World | None = None,
    threads: Threads = THREADS,
    plots: bool = True,
) -> TrainResult:
    """Run (or resume, or reuse) the training stage of ``plan`` with ``threads`` (timed for
    ``auto`` once the run folder and any checkpoint have been checked).

    Under ``torchrun`` (``world``) every rank trains; only rank 0 writes the run folder and
    shows progress, and only rank 0's summary has the random ensembles' scores.
    """
    world = world or World()
    dev = resolve_device(device)
    cfg, dataset = plan.config, plan.dataset
    ckpt_path = plan.out / CHECKPOINT
    run = prepare_on_main(plan, resume=resume, force=force, world=world)
    show_progress = show_progress and world.is_main
    if plan.resuming and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        if ckpt["epoch"] >= cfg.train.epochs and (run / TRAIN_SUMMARY).exists():
            state = TrainState(epoch=int(ckpt["epoch"]), history=list(ckpt["history"]))
            net = supernet_from_checkpoint(ckpt, ckpt_path).to(dev)
            return TrainResult(run, net, state, dataset, read_json(run / TRAIN_SUMMARY))
    # threads are timed only now: bad input (an occupied folder, a damaged checkpoint) has failed
    n_threads = training_threads(threads, plan.search_space, dataset, config=cfg.train, device=dev)
    with torch_threads(n_threads):
        supernet, state, summary = _train_stage(
            plan, run, device=dev, show_progress=show_progress, world=world, plots=plots
        )
    return TrainResult(run, supernet, state, dataset, summary, threads=n_threads)


def _train_stage(
    plan: TrainPlan,
    run: Path,
    *,
    device: torch.device,
    show_progress: bool,
    world: World,
    plots: bool = True,
) -> tuple[Supernet, TrainState, dict[str, Any]]:
    cfg, dataset, dev = plan.config, plan.dataset, device
    ckpt_path = plan.out / CHECKPOINT
    torch.manual_seed(cfg.train.seed)
    supernet = Supernet(plan.search_space, weights=cfg.train.weights)
    shrinker = (
        Shrinker(
            cfg.shrink,
            dataset=dataset,
            device=dev,
            run_dir=run,
            show_progress=show_progress,
            plot=plots,
        )
        if cfg.shrink.enabled  # only rank 0 calls it; train_supernet broadcasts the result
        else None
    )
    t0 = time.perf_counter()
    supernet, state = train_supernet(
        supernet,
        torch.from_numpy(dataset.x_train),
        torch.from_numpy(dataset.y_train),
        config=cfg.train,
        device=dev,
        checkpoint=ckpt_path,
        resume=plan.resuming,
        show_progress=show_progress,
        shrink_epochs=cfg.shrink.epochs(cfg.train.epochs),
        shrink=shrinker,
        world=world,
    )
    summary = {
        "epochs": state.epoch,
        "train_seconds": time.perf_counter() - t0,
        "history": state.history,
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "weights": cfg.train.weights,
        "supernet_params": sum(p.numel() for p in supernet.parameters()),
        "split_sizes": {
            "train": len(dataset.y_train),
            "val": len(dataset.y_val),
            "test": len(dataset.y_test),
        },
    }
    if world.distributed:
        summary["processes"] = world.size
    if world.is_main:
        summary.update(
            random_ensemble_accuracy(
                supernet, dataset, n=cfg.train.summary_samples, seed=cfg.train.seed, device=dev
            )
        )
        write_json(run / TRAIN_SUMMARY, summary)
    return supernet, state, summary


def prepare_on_main(plan: TrainPlan, *, resume: bool, force: bool, world: World) -> Path:
    """Rank 0 creates (or clears, or reopens) the run folder and writes the configuration;
    the other ranks wait, and raise rank 0's error if it refused (e.g. an occupied folder)."""
    world.barrier()  # every rank has read the folder (plan_training) before rank 0 writes
    error: NeasError | None = None
    if world.is_main:
        try:
            run = prepare_run_dir(plan.out, resume=resume, force=force)
            if not plan.resuming:  # config.json last: a run with one has all written before it
                write_json(run / SPACE, plan.search_space.to_dict())
                write_config(run, plan.config)
        except NeasError as exc:
            error = exc
    error = world.broadcast(error)
    if error is not None:
        raise error
    return plan.out


def random_ensemble_accuracy(
    supernet: Supernet, dataset: Dataset, *, n: int, seed: int, device: torch.device
) -> dict[str, float]:
    """Validation accuracy, member disagreement and ensemble gain (ensemble accuracy minus
    mean member accuracy) of ``n`` uniformly sampled ensembles (BN recalibrated for each)."""
    if n < 1:
        return {}
    rng = np.random.default_rng([seed, 7919])
    calib = calibration_images(dataset, seed=seed)
    x, y = torch.from_numpy(dataset.x_val), torch.from_numpy(dataset.y_val)
    accs = [
        evaluate_arch(supernet, sample(supernet.space, rng), x_calib=calib, x=x, y=y, device=device)
        for _ in range(n)
    ]
    return {
        "random_val_accuracy_mean": float(np.mean([m.accuracy for m in accs])),
        "random_val_accuracy_max": float(np.max([m.accuracy for m in accs])),
        "random_val_disagreement_mean": float(np.mean([m.disagreement for m in accs])),
        "random_val_ensemble_gain_mean": float(
            np.mean([m.accuracy - np.mean(m.member_accuracy) for m in accs])
        ),
        "random_val_samples": n,
    }


class RunResult(RunResults):
    """What ``search`` produced: the run folder, training and search results, exported
    folders and the report, plus the notebook view of ``neas.results.RunResults`` (``front``,
    ``best``, ``ensemble``, ``export``, ``report``)."""

    def __init__(
        self,
        run_dir: Path,
        train: TrainResult,
        search: SearchResult,
        exported: list[Path],
        report_path: Path | None,
    ) -> None:
        super().__init__(run_dir)
        self.train, self.search, self.exported = train, search, exported
        self.report_path = report_path


def search(
    *,
    out: str | Path,
    config: RunConfig | None = None,
    options: SearchOptions | None = None,
    final: FinalOptions | None = None,
    seed: int | None = None,
    device: str | None = None,
    threads: Threads = THREADS,
    resume: bool = False,
    force: bool = False,
    export: bool = True,
    show_progress: bool = True,
    plots: bool = True,
) -> RunResult | None:
    """The main job: train (with shrinking), search under the MACs budget, export the front.

    Stages already finished in ``out`` are reused with ``resume=True`` (a search with the same
    options is not run again, nor a finished export). ``final`` trains each exported ensemble
    as an ensemble first (``neas.deploy.final``; default ``FinalOptions()``). ``seed`` sets
    every stage's seed. ``plots=False`` draws no figure and writes no ``report.html`` (the
    estimator's fits: nobody looks at them; ``report_path`` is then ``None``). Under
    ``torchrun`` every rank trains; ranks other than 0 return ``None`` after training, rank 0
    goes on alone.

    >>> result = search(out="runs/digits", options=SearchOptions(budget="600M"))  # doctest: +SKIP
    >>> result.search.front[["id", "members", "macs", "test_accuracy"]]  # doctest: +SKIP
    """
    config, options = resolve(config=config, options=options, seed=seed)
    final = final or FinalOptions()
    threads = parse_threads(threads)
    with data_parallel(resolve_device(device)) as (world, dev):
        plan = plan_training(out=out, config=config, resume=resume)
        check_search(options, plan.search_space)  # before anything is trained or written
        trained = train_planned(
            plan,
            device=dev,
            resume=resume,
            force=force,
            show_progress=show_progress,
            world=world,
            threads=threads,
            plots=plots,
        )
    if not world.is_main:
        return None
    # the count training ran with; when training was already done, evolve resolves ``threads``
    later = trained.threads if trained.threads is not None else threads
    with torch_threads(later if isinstance(later, int) else None):
        result = evolve(
            trained.run_dir,
            options=options,
            device=dev,
            threads=later,
            resume=resume,
            show_progress=show_progress,
            trained=trained.opened(plan.config),
            report=False,
            plots=plots,
        )
        exported = (
            export_run(
                trained.run_dir,
                select="all",
                final_epochs=final.epochs,
                final_init=final.init,
                final_patience=final.patience,
                device=str(dev),
                show_progress=show_progress,
                resume=resume,
                calibrated=result.calibrated,
            )
            if export
            else []
        )
    report = write_report(trained.run_dir) if plots else None
    return RunResult(trained.run_dir, trained, result, exported, report)


def evolve(
    run_dir: str | Path,
    *,
    options: SearchOptions | None = None,
    device: str | torch.device | None = None,
    threads: Threads = THREADS,
    resume: bool = True,
    show_progress: bool = True,
    trained: TrainedRun | None = None,
    report: bool = True,
    plots: bool = True,
) -> SearchResult:
    """Only the search, on the trained supernet in ``run_dir``; ``report`` rewrites
    ``report.html`` after it (a new front removes the exports of the old one); ``plots=False``
    draws no figure.

    With ``resume`` a finished search with the same options is returned as it is, and an
    unfinished one (killed) continues from its checkpoint (``search/scores.json``); either
    way the result is the one a fresh search gives. ``resume=False`` scores everything again.
    """
    result = _evolve(
        run_dir,
        options=options,
        device=device,
        threads=threads,
        resume=resume,
        show_progress=show_progress,
        trained=trained,
        plots=plots,
    )
    if report:
        write_report(run_dir)
    return result


def _evolve(
    run_dir: str | Path,
    *,
    options: SearchOptions | None,
    device: str | torch.device | None,
    threads: Threads,
    resume: bool,
    show_progress: bool,
    trained: TrainedRun | None,
    plots: bool = True,
) -> SearchResult:
    options = options or SearchOptions()
    threads = parse_threads(threads)
    dev = resolve_device(device)
    run = trained or open_trained(run_dir, device=dev)
    check_search(options, run.space)
    previous = load_search(run.path) if resume else None
    if previous is not None and previous.summary.get("options") == asdict(options):
        return previous
    preflight_search(run.path, options, run.space)  # bad input fails before threads are timed
    n_threads = training_threads(
        threads, run.space, run.dataset, config=run.config.train, device=dev
    )
    with torch_threads(n_threads):
        return run_search(
            run.path,
            run.supernet,
            run.dataset,
            options=options,
            device=dev,
            resume=resume,
            show_progress=show_progress,
            plots=plots,
        )

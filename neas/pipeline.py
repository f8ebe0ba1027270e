"""The orchestration that the CLI, the Python API and the estimator call; no printing, no parsing.

Stages take plain values and return plain values; everything lands in one run folder (file
names in ``neas.run``): train (with shrinking) -> search -> export. Defaults come from the
config dataclasses (``neas.config``) alone, so ``search(out=...)`` runs what
``neas search --space mbconv --budget 600M`` runs.

Under a time limit (``time_limit``, ``neas.time_limit``) a ``JobClock`` splits the limit among
the stages: training's epochs, the search's proposals and the best ensemble's final-training
epochs are planned from timed probes, each stage stops at a clean point when its time is spent,
and the export takes the front's ensembles (the best first) as long as time is left.

Under ``torchrun`` the training stage runs data parallel (``neas.training.distributed``): every
rank trains, only rank 0 writes the run folder; ``search`` then goes on with rank 0 alone and
returns ``None`` on the other ranks.

>>> config, options = resolve(seed=1)
>>> config.train.seed, options.seed, options.budget_macs
(1, 1, 600000000)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neas.checkpoint import load_checkpoint, supernet_from_checkpoint
from neas.config import (
    EXPORT_SCORINGS,
    FINAL_EPOCH_COST,
    THREADS,
    FinalOptions,
    RunConfig,
    SearchOptions,
)
from neas.data import Dataset
from neas.deploy import export_run
from neas.device import Threads, parse_threads, resolve_device, torch_threads
from neas.errors import NeasError
from neas.evaluate import (
    calibration_images,
    evaluate_arch,
)
from neas.evolution import (
    SearchResult,
    check_search,
    load_search,
    preflight_search,
    run_search,
)
from neas.evolution.stage import latency_table_for
from neas.files import file_lock, read_json, write_json
from neas.front import best as best_row
from neas.layout import CHECKPOINT, CONFIG, SEARCH_LOCK, SPACE, TRAIN_SUMMARY
from neas.limited import finish_in_time, plan_search_time, probe_seconds
from neas.nn.supernet import Supernet
from neas.report import write_report
from neas.results import RunResults
from neas.run import (
    TrainedRun,
    open_trained,
    prepare_run_dir,
    read_config,
    read_pareto,
    write_config,
)
from neas.search_spaces import SearchSpace, sample
from neas.shrink import Shrinker
from neas.time_limit import (
    JobClock,
    parse_duration,
    plan_epochs,
)
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
    config: RunConfig | None = None  # the configuration it trained with, when it trained

    def opened(self, config: RunConfig) -> TrainedRun:
        return TrainedRun(
            self.run_dir,
            self.config or config,
            self.supernet,
            self.dataset,
            self.state.epoch,
            self.state.history,
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

    Example (not run as a doctest: it trains or needs a run folder)::

        result = train(out="runs/demo", config=RunConfig(train=TrainConfig(epochs=1)))
        result.summary["random_val_accuracy_mean"]
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
    clock: JobClock | None = None,
) -> TrainResult:
    """Run (or resume, or reuse) the training stage of ``plan`` with ``threads`` (timed for
    ``auto`` once the run folder and any checkpoint have been checked).

    Under a time limit (``clock``) the epochs are planned from a timed probe when the stage
    starts (and written into the run's ``config.json``), and training stops after the epoch in
    which the stage's time runs out.

    Under ``torchrun`` (``world``) every rank trains; only rank 0 writes the run folder and
    shows progress, and only rank 0's summary has the random ensembles' scores.
    """
    world = world or World()
    dev = resolve_device(device)
    cfg, dataset = plan.config, plan.dataset
    ckpt_path = plan.out / CHECKPOINT
    run = prepare_on_main(plan, resume=resume, force=force, world=world)
    if clock is not None and world.is_main:
        clock.attach(run)
    show_progress = show_progress and world.is_main
    if plan.resuming and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        done = ckpt["epoch"] >= cfg.train.epochs or (clock is not None and clock.ended("train"))
        if done and (run / TRAIN_SUMMARY).exists():
            state = TrainState(epoch=int(ckpt["epoch"]), history=list(ckpt["history"]))
            net = supernet_from_checkpoint(ckpt, ckpt_path).to(dev)
            return TrainResult(run, net, state, dataset, read_json(run / TRAIN_SUMMARY))
    # threads are timed only now: bad input (an occupied folder, a damaged checkpoint) has failed
    n_threads = training_threads(threads, plan.search_space, dataset, config=cfg.train, device=dev)
    with torch_threads(n_threads):
        if clock is not None:
            plan = plan_training_time(plan, clock, device=dev, world=world)
        supernet, state, summary = _train_stage(
            plan,
            run,
            device=dev,
            show_progress=show_progress,
            world=world,
            plots=plots,
            stop_when=clock.stopper("train") if clock is not None else None,
        )
    if clock is not None:
        clock.end("train", epochs=state.epoch, stopped_early=state.stop)
    return TrainResult(
        run, supernet, state, dataset, summary, threads=n_threads, config=plan.config
    )


def plan_training_time(
    plan: TrainPlan, clock: JobClock, *, device: torch.device, world: World
) -> TrainPlan:
    """Start (or go on with) the training stage under ``clock``; a fresh stage times the
    probe and plans its epochs and shrink steps: the epochs the allowance holds after the
    summary's and as many shrink steps' scorings as leave at least as many epochs to shrink
    at (the later steps are dropped). Rank 0 decides; the plan goes into ``config.json``."""
    clock.begin("train")
    epochs = clock.planned("train", "epochs")
    if epochs is None:
        cfg = plan.config
        probe = clock.record.get("probe") or probe_seconds(
            plan.search_space,
            plan.dataset,
            plan.config,
            device=device,
            calibration=SearchOptions().calibration_images,
        )
        clock.record["probe"] = probe
        epoch_s = probe["step_s"] * probe["steps_per_epoch"]
        final_s = FINAL_EPOCH_COST * plan.search_space.num_members * epoch_s
        final_s += EXPORT_SCORINGS * probe["eval_s"]  # one final epoch and the export
        if clock.expected("final") < final_s and not clock.skipped("final"):
            clock.skip(
                "final",
                because=f"one epoch of final training would take about {final_s:.0f} s",
                running="train",
            )
        left = clock.left("train")
        at = cfg.shrink.at
        for shrinks in range(len(at), -1, -1):  # as many shrink steps as the time pays for
            scorings = cfg.train.summary_samples + shrinks * cfg.shrink.samples
            epochs = plan_epochs(left, epoch_s=epoch_s, fixed_s=scorings * probe["eval_s"])
            if len(cfg.shrink.epochs(epochs)) >= shrinks:
                break
        epochs, at = world.broadcast((epochs, at[:shrinks]))
        clock.plan("train", epochs=epochs, shrink_at=list(at))
    at = tuple(clock.planned("train", "shrink_at") or ())
    config = plan.config
    if (epochs, at) == (config.train.epochs, config.shrink.at):
        return plan
    config = replace(
        config,
        train=replace(config.train, epochs=int(epochs)),
        shrink=replace(config.shrink, at=at),
    )
    if world.is_main:
        write_config(plan.out, config)
    return replace(plan, config=config)


def _train_stage(
    plan: TrainPlan,
    run: Path,
    *,
    device: torch.device,
    show_progress: bool,
    world: World,
    plots: bool = True,
    stop_when: Callable[[], bool] | None = None,
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
        stop_when=stop_when,
    )
    summary = {
        "epochs": state.epoch,
        "stopped_by_time_limit": state.stop,
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
                supernet,
                dataset,
                n=cfg.train.summary_samples,
                seed=cfg.train.seed,
                device=dev,
                stop_when=stop_when,
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
    supernet: Supernet,
    dataset: Dataset,
    *,
    n: int,
    seed: int,
    device: torch.device,
    stop_when: Callable[[], bool] | None = None,
) -> dict[str, float]:
    """Validation accuracy, member disagreement and ensemble gain (ensemble accuracy minus
    mean member accuracy) of ``n`` uniformly sampled ensembles (BN recalibrated for each);
    fewer (perhaps none) when ``stop_when()`` says time is up."""
    rng = np.random.default_rng([seed, 7919])
    calib = calibration_images(dataset, seed=seed)
    x, y = torch.from_numpy(dataset.x_val), torch.from_numpy(dataset.y_val)
    accs = []
    for _ in range(n):
        if stop_when is not None and stop_when():
            break
        arch = sample(supernet.space, rng)
        accs.append(evaluate_arch(supernet, arch, x_calib=calib, x=x, y=y, device=device))
    if not accs:
        return {}
    return {
        "random_val_accuracy_mean": float(np.mean([m.accuracy for m in accs])),
        "random_val_accuracy_max": float(np.max([m.accuracy for m in accs])),
        "random_val_disagreement_mean": float(np.mean([m.disagreement for m in accs])),
        "random_val_ensemble_gain_mean": float(
            np.mean([m.accuracy - np.mean(m.member_accuracy) for m in accs])
        ),
        "random_val_samples": len(accs),
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
        clock: JobClock | None = None,
    ) -> None:
        super().__init__(run_dir)
        self.train, self.search, self.exported = train, search, exported
        self.report_path, self.clock = report_path, clock


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
    time_limit: float | str | None = None,
    clock: Callable[[], float] = time.monotonic,
    started: float | None = None,
) -> RunResult | None:
    """The main job: train (with shrinking), search under the MACs budget, export the front.

    ``time_limit`` (seconds, or a duration such as ``"30m"``) splits that much wall-clock time
    among the stages (module doc; ``clock`` is the time it reads, a fake one in tests): the
    epochs, proposals and final-training epochs come from the plan, not from ``config``,
    ``options`` and ``final`` (a ``final.epochs`` > 0 caps the final stage's), only the best
    ensemble is trained by the final stage, and what the clock leaves of the front is exported.
    The plan and the seconds each stage took are in ``time_limit.json``; a resumed run counts
    the time the killed one spent. The clock starts before the data are read, or at
    ``started`` (a reading of ``clock``: the CLI's start, so that loading torch counts too).

    Stages already finished in ``out`` are reused with ``resume=True`` (a search with the same
    options is not run again, nor a finished export). ``final`` trains the best ensemble of the
    front as an ensemble before it is exported (``neas.deploy.final``; default
    ``FinalOptions()``); the others are exported with the supernet's weights. ``seed`` sets
    every stage's seed. ``plots=False`` draws no figure and writes no ``report.html`` (the
    estimator's fits: nobody looks at them; ``report_path`` is then ``None``). Under
    ``torchrun`` every rank trains; ranks other than 0 return ``None`` after training, rank 0
    goes on alone.

    Example (not run as a doctest: it trains or needs a run folder)::

        result = search(out="runs/digits", options=SearchOptions(budget="600M"))
        result.search.front[["id", "members", "macs", "test_accuracy"]]
    """
    config, options = resolve(config=config, options=options, seed=seed)
    final = final or FinalOptions()
    threads = parse_threads(threads)
    limit = parse_duration(time_limit) if time_limit is not None else None
    job = None
    if limit is not None:
        resuming = resume and (Path(out) / CONFIG).exists()
        job = JobClock.for_run(out, limit, resume=resuming, now=clock, started=started)
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
            clock=job,
        )
    if not world.is_main:
        return None
    # the count training ran with; when training was already done, evolve resolves ``threads``
    later = trained.threads if trained.threads is not None else threads
    opened = trained.opened(plan.config)
    with torch_threads(later if isinstance(later, int) else None):
        if job is not None:

            def latency_table() -> None:  # measured (once) before the proposals are planned
                with file_lock(opened.path / SEARCH_LOCK):
                    latency_table_for(
                        opened.path,
                        opened.supernet,
                        device=dev,
                        batch=options.latency_batch,
                        show_progress=show_progress,
                    )

            options = plan_search_time(job, options, first=latency_table)
        result = evolve(
            trained.run_dir,
            options=options,
            device=dev,
            threads=later,
            resume=resume,
            show_progress=show_progress,
            trained=opened,
            report=False,
            plots=plots,
            stop_when=job.stopper("search") if job is not None else None,
        )
        if job is not None and not job.ended("search"):
            stopped = bool(result.summary.get("stopped_by_time_limit"))
            job.end("search", proposals=result.summary["proposals"], stopped_early=stopped)
        if not export:
            exported = []
        elif job is not None:
            exported = finish_in_time(
                opened,
                job,
                final=final,
                device=dev,
                show_progress=show_progress,
                resume=resume,
                calibrated=result.calibrated,
            )
        else:  # the final stage trains the best ensemble; the rest are exported as they are
            table = read_pareto(trained.run_dir)
            ids, best = table["id"].astype(str).tolist(), str(best_row(table)["id"])
            exported = []
            for select, epochs in (([best], final.epochs), ([i for i in ids if i != best], 0)):
                if select:
                    exported += export_run(
                        trained.run_dir,
                        select=select,
                        final_epochs=epochs,
                        final_init=final.init,
                        final_patience=final.patience if epochs else 0,
                        device=str(dev),
                        show_progress=show_progress,
                        resume=resume,
                        trained=opened,
                        calibrated=result.calibrated,
                    )
    report = write_report(trained.run_dir) if plots else None
    if job is not None:
        job.save()
    return RunResult(trained.run_dir, trained, result, exported, report, clock=job)


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
    stop_when: Callable[[], bool] | None = None,
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
        stop_when=stop_when,
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
    stop_when: Callable[[], bool] | None = None,
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
            stop_when=stop_when,
        )

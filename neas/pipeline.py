"""The orchestration that the CLI, the Python API and the estimator call; no printing, no parsing.

The job is the stages of ``neas.stages`` run in order over one ``neas.run.Run``: train (with
shrinking) -> search -> final training and export -> report; every stage's preflight runs
before any stage works. Defaults come from the config dataclasses (``neas.config``) alone, so
``search(out=...)`` runs what ``neas search --space mbconv --budget 600M`` runs.

Under a time limit (``time_limit``, ``neas.time_limit``) a ``JobClock`` splits the limit among
the stages: training's epochs, the search's proposals and the best ensemble's final-training
epochs are planned from timed probes, each stage stops at a clean point when its time is spent,
the front's other ensembles are exported as long as their stage has time, and the best,
final-trained in all that is then left, is exported last (``neas.limited.finish_in_time``).

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
from dataclasses import replace
from pathlib import Path

import torch

from neas.config import THREADS, FinalOptions, RunConfig, SearchOptions
from neas.data import Dataset
from neas.device import Threads, parse_threads, resolve_device, torch_threads
from neas.evolution import SearchResult
from neas.evolution.stage import latency_table_for
from neas.files import file_lock
from neas.layout import SEARCH_LOCK
from neas.limited import plan_search_time
from neas.report import write_report
from neas.results import RunResults
from neas.run import Run, TrainedRun, resumes
from neas.stages import ExportStage, SearchStage, TrainStage
from neas.time_limit import JobClock, parse_duration
from neas.training.distributed import data_parallel


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
    dataset: Dataset | None = None,
) -> TrainedRun:
    """Train a supernet (shrinking the space on the way) into the run folder ``out``.

    ``resume`` continues the run in ``out`` with its stored configuration; ``force`` starts
    over. ``threads`` sets torch's CPU thread count for the job: ``N``, ``"auto"`` (the fastest
    over a few timed training steps) or ``None`` (torch's default). ``dataset``: the data in
    memory, instead of loading ``config.data``.

    Example (not run as a doctest: it trains or needs a run folder)::

        result = train(out="runs/demo", config=RunConfig(train=TrainConfig(epochs=1)))
        result.summary["random_val_accuracy_mean"]
    """
    config, _ = resolve(config=config, seed=seed)
    threads = parse_threads(threads)
    with data_parallel(resolve_device(device)) as (world, dev):
        run = Run.for_job(out, config=config, resume=resume, dataset=dataset)
        stage = TrainStage(
            device=dev,
            resume=resume,
            force=force,
            threads=threads,
            show_progress=show_progress,
            world=world,
        )
        stage.preflight(run)
        return stage.run(run)


class JobResult(RunResults):
    """What ``search`` produced: the run (``neas.run.Run``, its trained supernet in memory),
    training and search results, exported folders and the report, plus the notebook view of
    ``neas.results.RunResults`` (``front``, ``best``, ``ensemble``, ``export``, ``report``)."""

    def __init__(
        self,
        run: Run,
        train: TrainedRun,
        search: SearchResult,
        exported: list[Path],
        report_path: Path | None,
        clock: JobClock | None = None,
    ) -> None:
        super().__init__(run.path)
        self.run, self.train, self.search, self.exported = run, train, search, exported
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
    dataset: Dataset | None = None,
) -> JobResult | None:
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
    goes on alone. ``dataset``: the data in memory, instead of loading ``config.data`` (which
    the run still records).

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
        job = JobClock.for_run(out, limit, resume=resumes(out, resume), now=clock, started=started)
    with data_parallel(resolve_device(device)) as (world, dev):
        run = Run.for_job(out, config=config, resume=resume, dataset=dataset)
        training = TrainStage(
            device=dev,
            resume=resume,
            force=force,
            threads=threads,
            show_progress=show_progress,
            plots=plots,
            world=world,
            clock=job,
            random_summary=False,  # the search's first generation is the random baseline
        )
        searching = SearchStage(
            options, device=dev, resume=resume, show_progress=show_progress, plots=plots
        )
        exporting = ExportStage(
            device=dev, final=final, resume=resume, show_progress=show_progress, clock=job
        )
        for stage in (training, searching, exporting):  # before anything is trained or written
            stage.preflight(run)
        trained = training.run(run)
    if not world.is_main:
        return None
    # the count training ran with; when training was already done, the search resolves it
    later = trained.threads if trained.threads is not None else threads
    with torch_threads(later if isinstance(later, int) else None):
        if job is not None:

            def latency_table() -> None:  # measured (once) before the proposals are planned
                with file_lock(run / SEARCH_LOCK):
                    latency_table_for(
                        run.path,
                        trained.supernet,
                        device=dev,
                        batch=options.latency_batch,
                        show_progress=show_progress,
                    )

            options = plan_search_time(job, options, first=latency_table)
        searching = replace(
            searching,
            options=options,
            threads=later,
            stop_when=job.stopper("search") if job is not None else None,
        )
        result = searching.run(run)
        if job is not None and not job.ended("search"):
            stopped = bool(result.summary.get("stopped_by_time_limit"))
            job.end("search", proposals=result.summary["proposals"], stopped_early=stopped)
        exported = []
        if export:
            exported = replace(exporting, calibrated=result.calibrated).run(run)
    report = write_report(run.path) if plots else None
    if job is not None:
        job.save()
    return JobResult(run, trained, result, exported, report, clock=job)


def evolve(
    run_dir: str | Path,
    *,
    options: SearchOptions | None = None,
    device: str | torch.device | None = None,
    threads: Threads = THREADS,
    resume: bool = True,
    show_progress: bool = True,
    report: bool = True,
    plots: bool = True,
) -> SearchResult:
    """Only the search stage, on the trained supernet in ``run_dir``; ``report`` rewrites
    ``report.html`` after it (a new front removes the exports of the old one); ``plots=False``
    draws no figure.

    With ``resume`` a finished search with the same options is returned as it is, and an
    unfinished one (killed) continues from its checkpoint (``search/scores.json``); either
    way the result is the one a fresh search gives. ``resume=False`` scores everything again.
    """
    run = Run(run_dir)
    stage = SearchStage(
        options or SearchOptions(),
        device=resolve_device(device),
        threads=parse_threads(threads),
        resume=resume,
        show_progress=show_progress,
        plots=plots,
    )
    result = stage.run(run)
    if report:
        write_report(run.path)
    return result

"""The time-limited parts of the main job (``--time-limit``, ``neas.time_limit``): the probe
a plan is made from, the search's plan, and the export and final stages under the clock.
``neas.pipeline`` calls them; they take plain values and a ``JobClock``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neas.config import EXPORT_SCORINGS, TIME_REPORT_S, FinalOptions, RunConfig, SearchOptions
from neas.data import Dataset
from neas.deploy import export_run
from neas.deploy.export import FORMATS, select_rows
from neas.deploy.final import epoch_seconds
from neas.evaluate import (
    CalibratedEnsemble,
    calibration_images,
    member_logits,
    own_statistics_logits,
    recalibrate_bn,
    scores_in_one_batch,
)
from neas.layout import ENSEMBLES
from neas.nn.ensemble import build_ensemble
from neas.nn.supernet import Supernet
from neas.run import TrainedRun, read_pareto
from neas.search_spaces import SearchSpace, sample
from neas.search_spaces.arch import EnsembleArch
from neas.time_limit import JobClock, plan_evaluations, plan_final_epochs
from neas.training import probe_step


def probe_seconds(
    space: SearchSpace,
    dataset: Dataset,
    config: RunConfig,
    *,
    device: torch.device,
    calibration: int,
) -> dict[str, float]:
    """What a time limit is planned from, timed here at the current thread count: one
    supernet training step (``step_s``), the steps of an epoch, and one ensemble scored as the
    search scores it (``eval_s``: the validation split, after BN recalibration on
    ``calibration`` images unless ``scores_in_one_batch``). Torch's RNG is left as it was."""
    cfg = config
    x, y = torch.from_numpy(dataset.x_train), torch.from_numpy(dataset.y_train)
    with torch.random.fork_rng(devices=[]):
        step = probe_step(space, x, y, config=cfg.train, device=device)
        step()  # warm-up
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        net = Supernet(space, weights=cfg.train.weights)
        net = net.to(device, memory_format=torch.channels_last)  # as the search scores
        rng = np.random.default_rng([cfg.train.seed, 31])
        calib = calibration_images(dataset, n=calibration, seed=cfg.train.seed)
        x_val = torch.from_numpy(dataset.x_val[:calibration])
        one_batch = scores_in_one_batch(dataset.x_val, len(calib))  # x_val: all of it
        evals = []
        for _ in range(3):  # the first warms up; ensembles differ in cost: the mean of two
            arch = sample(space, rng)
            t0 = time.perf_counter()
            if one_batch:  # the search's score: the whole split in one pass
                own_statistics_logits(net, arch, x_val, device=device)
                evals.append(time.perf_counter() - t0)
                continue
            recalibrate_bn(net, arch, calib, device=device)
            t1 = time.perf_counter()
            member_logits(net, arch, x_val, device=device)
            t2 = time.perf_counter()  # scoring scales with the validation images: timed on
            evals.append(t1 - t0 + (t2 - t1) * len(dataset.x_val) / len(x_val))  # a part
        eval_s = float(np.mean(evals[1:]))
    return {
        "step_s": float(np.median(times)),
        "steps_per_epoch": max(1, len(x) // cfg.train.batch_size),
        "eval_s": eval_s,
    }


def plan_search_time(
    job: JobClock, options: SearchOptions, *, first: Callable[[], None]
) -> SearchOptions:
    """Start (or go on with) the search stage under ``job``: ``first()`` (the latency table)
    runs, then the proposals are what the rest of the allowance holds at the probe's seconds
    per scoring, less a population's worth for the front's test accuracy (planned once; a
    resumed run keeps the plan)."""
    evaluations = job.planned("search", "evaluations")
    if evaluations is None:
        job.begin("search")
        if options.latency:
            first()
        probe = job.record["probe"]
        evaluations = plan_evaluations(
            job.left("search"), eval_s=probe["eval_s"], reserve=options.population
        )
        job.plan("search", evaluations=evaluations)
    elif not job.ended("search"):
        job.begin("search")  # resumed inside the stage: its deadline stands
    population = max(2, min(options.population, int(evaluations)))
    return replace(options, population=population, evaluations=max(population, int(evaluations)))


def finish_in_time(
    run: TrainedRun,
    job: JobClock,
    *,
    final: FinalOptions,
    device: torch.device,
    show_progress: bool,
    resume: bool,
    select: str = "best",
    rest: bool = True,
    formats: tuple[str, ...] = FORMATS,
    cascade: bool = True,
    calibrated: Mapping[str, CalibratedEnsemble] | None = None,
) -> list[Path]:
    """The export and final stages under ``job``. With ``rest``, the front's other ensembles
    are exported first, without final training, while the export stage has time; then the
    ``select``-ed ensemble (``"best"`` or an id) is final-trained until all that is left but
    its own export (and, with ``rest``, the report's ``TIME_REPORT_S``) is spent, its
    learning rate annealed by that clock (``final.epochs`` > 0 given caps the epochs; none
    when not even ``TIME_FINAL_MIN_EPOCHS`` fit at the probe's estimate; ``final.init`` and
    ``final.patience`` as given), and exported. With the final stage skipped (too slow for an
    epoch) the selected ensemble is exported first, then the others while time is left.
    ``calibrated``: the search's front ensembles, as ``export_run`` takes them. Returns the
    exported folders, the selected ensemble's first."""
    table = read_pareto(run.path)
    row = select_rows(table, select).iloc[0]
    first = str(row["id"])
    others = [i for i in table["id"].astype(str) if i != first] if rest else []
    common: dict[str, Any] = dict(
        formats=formats,
        cascade=cascade,
        device=str(device),
        show_progress=show_progress,
        trained=run,
        calibrated=calibrated,
    )
    # what the last stage keeps for the job's report (the estimator's fit writes none)
    report_s = TIME_REPORT_S if rest else 0.0
    if job.skipped("final"):  # the selected one before the rest, untrained
        best = export_run(run.path, select=[first], final_epochs=0, resume=True, **common)
        return best + _export_the_rest(run, job, others, resume=resume, keep_s=report_s, **common)
    folders = _export_the_rest(run, job, others, resume=resume, keep_s=0.0, **common)
    arch = EnsembleArch.from_json(str(row["arch"]), run.space)
    return _final_stage(run, job, first, arch, final=final, keep_s=report_s, **common) + folders


def _export_the_rest(
    run: TrainedRun,
    job: JobClock,
    others: list[str],
    *,
    resume: bool,
    keep_s: float,
    **common: Any,
) -> list[Path]:
    """The export stage: ``others`` exported in turn while its allowance holds another and
    ``keep_s`` more (the report's, when it is the last stage); the ids it exported are
    recorded, so a job resumed after the stage finds them without a new allowance."""
    if not others:
        return []
    if job.ended("export"):  # resumed after this stage
        folders = [run.path / ENSEMBLES / str(i) for i in job.stage("export").get("ensembles", [])]
        return [f for f in folders if f.is_dir()]
    job.begin("export")
    # an export's seconds: first guessed (EXPORT_SCORINGS), then the last one's; the next
    # starts only if that much (and ``keep_s``) is left of the stage
    since: dict[str, float | None] = {"at": None, "took": _export_estimate(job)}

    def no_time_for_another() -> bool:
        now = job.elapsed()
        if since["at"] is not None:  # called before each export: the gap is the last one
            since["took"] = now - since["at"]
        since["at"] = now
        return job.passed("export") or job.left("export") <= keep_s + float(since["took"])

    folders = export_run(
        run.path, select=others, resume=resume, stop_when=no_time_for_another, **common
    )
    job.end("export", exported=len(folders), ensembles=[f.name for f in folders])
    return folders


def _export_estimate(job: JobClock) -> float:
    """An export's seconds before one is timed: ``EXPORT_SCORINGS`` of the probe's scorings."""
    return EXPORT_SCORINGS * float(job.record["probe"]["eval_s"])


def _final_stage(
    run: TrainedRun,
    job: JobClock,
    first: str,
    arch: EnsembleArch,
    *,
    final: FinalOptions,
    keep_s: float,
    **common: Any,
) -> list[Path]:
    """The final stage: ensemble ``first`` (``arch``) trained in the window the clock leaves
    it, all that is left but ``keep_s`` and its export (planned once; a resumed job keeps the
    plan), then exported."""
    ds = run.dataset  # what ``final`` leaves open is the data's (``FinalOptions.settled``)
    # the epochs the user gave cap the window's (0 or none given: no cap; the data's own
    # count is for a job without a clock, where it capped 40 minutes at 4 of 6 epochs' time)
    cap = final.epochs or 0
    final = final.settled(rows=len(ds.y_train), table=ds.is_table)
    export_s = _export_estimate(job)
    if not job.ended("final"):
        job.begin("final", keep_s=keep_s)
    epochs = job.planned("final", "epochs")
    if epochs is None:
        epoch_s = epoch_seconds(
            build_ensemble(run.supernet, arch),
            run.space,
            arch,
            ds.x_train,
            ds.y_train,
            init=final.init,
            config=run.config.train,
            device=torch.device(common["device"]),
            val=(ds.x_val, ds.y_val) if final.patience else None,
        )
        # training's window, which its learning rate anneals over: from now to the stage's
        # deadline less the export of this ensemble
        now, until = job.elapsed(), float(job.stage("final")["deadline_s"]) - export_s
        epochs = plan_final_epochs(until - now, epoch_s=epoch_s, cap=cap)
        job.plan("final", epochs=epochs, epoch_s=epoch_s, from_s=now, until_s=until)
    epochs = int(epochs)
    stage = job.stage("final")  # a record from before the window was planned: the stage's
    window = (
        job.planned("final", "from_s") or stage.get("start_s", 0.0),
        job.planned("final", "until_s") or stage.get("deadline_s", job.limit_s),
    )
    folders = export_run(
        run.path,
        select=[first],
        final_epochs=epochs,
        final_init=final.init,
        final_patience=final.patience if epochs else 0,
        final_refit=False,  # a time limit plans one training (``final_train``)
        resume=True,  # a finished export of this plan is kept (a resumed job)
        final_time_share=job.share("final", *window) if epochs else None,
        **common,
    )
    if not job.ended("final"):
        job.end("final", ensemble=first)
    return folders

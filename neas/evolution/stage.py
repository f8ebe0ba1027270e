"""The search stage: a trained run folder in, a Pareto front of ensembles out.

Writes into the run folder:

    latency_table.json        per-(layer, op) latency on this device (reused when present)
    search/history.csv        every proposal: generation, arch, objectives, feasibility
    search/hypervolume.csv    hypervolume and best val accuracy per generation
    search/summary.json       options, wall time, front size, best accuracies, the first
                              generation's (random ensembles within the budget) scores
    search/scores.json        every architecture scored so far, after each generation: a killed
                              search resumes from it (``neas.evolution.checkpoint``)
    pareto.csv / pareto.png   the feasible non-dominated ensembles, with test accuracy

Workers searching one shared optuna study into one folder take turns on ``.search.lock`` for
the latency table and for the results: each writes the front of the whole study as it reads
it, so the last to finish leaves the complete front.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from neas.config import SearchOptions
from neas.cost import CostTable
from neas.data import Dataset
from neas.errors import RunDirError
from neas.evaluate import (
    CalibratedEnsemble,
    EnsembleMetrics,
    bn_statistics,
    calibrate_ensemble,
    calibration_images,
    ensemble_metrics,
    evaluate_arch,
    scores_in_one_batch,
)
from neas.evolution._base import propose
from neas.evolution.checkpoint import ScoreCheckpoint, score_fingerprint
from neas.evolution.hypervolume import hypervolume, latency_reference
from neas.evolution.problem import (
    Evaluation,
    SearchProblem,
    check_budget,
    fewest_members,
    pareto_front,
)
from neas.evolution.strategies import create_strategy
from neas.files import atomic_write_text, file_lock, read_json, write_json
from neas.layout import (
    HYPERVOLUME,
    HYPERVOLUME_PLOT,
    LATENCY_TABLE,
    PARETO,
    PARETO_PLOT,
    SEARCH_DIR,
    SEARCH_HISTORY,
    SEARCH_LOCK,
    SEARCH_SCORES,
    SEARCH_SUMMARY,
)
from neas.nn.supernet import Supernet
from neas.plots import plot_hypervolume, plot_pareto
from neas.predictors.latency import LatencyTable, measure_latency_table
from neas.progress import make_progress
from neas.run import real_dir, remove_stale_exports, writable_dir
from neas.search_spaces import SearchSpace
from neas.search_spaces.arch import EnsembleArch


@dataclass(frozen=True)
class SearchResult:
    front: pd.DataFrame
    history: pd.DataFrame
    progress: pd.DataFrame
    summary: dict[str, Any]
    #: The front's ensembles as the search calibrated and scored them, by architecture JSON
    #: (empty for a search read back from its folder): ``neas.deploy.export_run`` reuses them.
    calibrated: dict[str, CalibratedEnsemble] = field(default_factory=dict)


#: Columns of ``search/hypervolume.csv`` (one row per finished generation; a search stopped by
#: a time limit inside its first generation has none).
PROGRESS_COLUMNS = ("generation", "evaluations", "hypervolume", "best_val_accuracy")


class _Stopped(Exception):
    """Raised after a proposal to end the search early (``stop_when``)."""


def _rows(evaluations: list[Evaluation], space) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "generation": [e.generation for e in evaluations],
            "arch": [e.arch.to_json(space) for e in evaluations],
            "members": [e.arch.num_members for e in evaluations],
            "split": [e.arch.split for e in evaluations],
            "val_accuracy": [1.0 - e.val_error if e.feasible else np.nan for e in evaluations],
            "val_nll": [e.val_nll if e.feasible else np.nan for e in evaluations],
            "macs": [e.macs for e in evaluations],
            "params": [e.params for e in evaluations],
            "latency_ms": [e.latency_ms for e in evaluations],
            "disagreement": [e.disagreement for e in evaluations],
            "feasible": [e.feasible for e in evaluations],
        }
    )


def first_generation(history: pd.DataFrame) -> dict[str, float | int] | None:
    """Validation accuracy (mean, best) and member disagreement (mean) of the search's first
    generation, ensembles drawn at random within the budget: what the search starts from, the
    random baseline of a search run (``None`` without a scored one).

    >>> h = pd.DataFrame({"generation": [0, 0, 1], "val_accuracy": [0.8, 0.9, 0.95],
    ...                   "disagreement": [0.1, 0.3, 0.0], "feasible": [True, True, True]})
    >>> first_generation(h)
    {'ensembles': 2, 'val_accuracy_mean': 0.85, 'val_accuracy_max': 0.9, 'disagreement_mean': 0.2}
    """
    g = history[(history["generation"] == 0) & history["feasible"].astype(bool)]
    g = g[np.isfinite(g["val_accuracy"])]
    if g.empty:
        return None
    return {
        "ensembles": len(g),
        "val_accuracy_mean": round(float(g["val_accuracy"].mean()), 6),
        "val_accuracy_max": round(float(g["val_accuracy"].max()), 6),
        "disagreement_mean": round(float(g["disagreement"].mean()), 6),
    }


def latency_table_for(
    run_dir: Path, supernet: Supernet, *, device: torch.device, batch: int, show_progress: bool
) -> LatencyTable:
    """The run's latency table for (device, batch), measured once and then reused."""
    path = run_dir / LATENCY_TABLE
    if path.exists():
        table = LatencyTable.load(path)
        same = table.device == str(device) and table.batch == batch
        if same and len(table.layers) == supernet.space.num_layers:
            return table
    table = measure_latency_table(
        supernet.space, device=device, batch=batch, show_progress=show_progress
    )
    table.save(path)
    return table


def check_search(options: SearchOptions, space: SearchSpace) -> None:
    """Fail early (before training): an unknown strategy, or a budget below the space's
    cheapest ensemble."""
    create_strategy(options.strategy, storage=None, surrogate=options.surrogate)
    k = fewest_members(
        space, search_members=options.search_members, ensemble_size=options.ensemble_size
    )
    check_budget(options.budget_macs, space, CostTable.from_space(space), min_members=k)


def preflight_search(run_dir: Path, options: SearchOptions, space: SearchSpace) -> None:
    """The cheap checks a search makes before any work: options against the space, a run
    folder that can take the results, a ``search/`` that is a folder, a readable latency table."""
    check_search(options, space)
    writable_dir(run_dir)
    if (run_dir / SEARCH_DIR).exists() and not (run_dir / SEARCH_DIR).is_dir():
        raise RunDirError(f"{run_dir / SEARCH_DIR} is not a folder; move it away and search again")
    real_dir(run_dir / SEARCH_DIR)  # never written through a symbolic link
    if options.latency and (run_dir / LATENCY_TABLE).exists():
        LatencyTable.load(run_dir / LATENCY_TABLE)


def run_search(
    run_dir: Path,
    supernet: Supernet,
    dataset: Dataset,
    *,
    options: SearchOptions,
    device: torch.device,
    resume: bool = False,
    show_progress: bool = True,
    plots: bool = True,
    stop_when: Callable[[], bool] | None = None,
) -> SearchResult:
    """Search ensembles on ``supernet`` and write the results into ``run_dir`` (with the
    Pareto and hypervolume plots unless ``plots=False``). ``stop_when()`` (a time limit) is
    asked after every proposal: when it says so, the search ends there with what it found.

    Every scored architecture is checkpointed after each generation; with ``resume`` the
    scores a killed (or earlier) search of the same supernet left are looked up instead of
    evaluated again, and the result equals an uninterrupted run's. The caller has made the
    checks of :func:`preflight_search` (``neas.stages.SearchStage`` does).
    """
    t0 = time.perf_counter()
    space = supernet.space
    # One memory format whichever way the supernet arrived (fresh from training, or loaded from
    # supernet.pt when resuming): the two give scores that differ in the last bits.
    supernet = supernet.to(device, memory_format=torch.channels_last).eval()
    with file_lock(run_dir / SEARCH_LOCK):  # workers in one folder measure the table once
        latency = (
            latency_table_for(
                run_dir,
                supernet,
                device=device,
                batch=options.latency_batch,
                show_progress=show_progress,
            )
            if options.latency
            else LatencyTable.unmeasured(space)
        )
    calib = calibration_images(dataset, n=options.calibration_images, seed=options.seed)
    x_val, y_val = torch.from_numpy(dataset.x_val), torch.from_numpy(dataset.y_val)

    checkpoint = ScoreCheckpoint(
        run_dir / SEARCH_DIR / SEARCH_SCORES,
        fingerprint=score_fingerprint(supernet, tensors=(x_val, y_val, calib), device=device),
        resume=resume,
    )
    # the BN statistics each scored architecture left, for those still on the front: its test
    # accuracy at the end puts them back instead of recalibrating (the same numbers). A score
    # in one batch leaves the validation split's statistics, not the calibration's: none kept
    calibrated_scores = not scores_in_one_batch(x_val, len(calib))
    statistics: dict[EnsembleArch, dict[str, torch.Tensor]] = {}

    def evaluate(arch: EnsembleArch) -> EnsembleMetrics:
        metrics = evaluate_arch(supernet, arch, x_calib=calib, x=x_val, y=y_val, device=device)
        if calibrated_scores:
            statistics[arch] = bn_statistics(supernet)
        return metrics

    score = checkpoint.wrap(evaluate, key=lambda arch: arch.to_json(space))

    total = options.total_evaluations
    with make_progress(show=show_progress) as progress:
        task = progress.add_task(f"search ({options.strategy})", total=total, info="")
        best = [0.0]

        def on_evaluation(ev: Evaluation) -> None:
            if ev.feasible:
                best[0] = max(best[0], 1.0 - ev.val_error)
            progress.update(task, advance=1, info=f"best val acc {best[0]:.4f}")
            if stop_when is not None and len(problem.history) < total and stop_when():
                raise _Stopped

        problem = SearchProblem(
            space=space,
            score=score,
            costs=CostTable.from_space(space),
            latency=latency,
            budget=options.budget_macs,
            search_members=options.search_members,
            ensemble_size=options.ensemble_size,
            on_evaluation=on_evaluation,
            error_step=1.0 / len(y_val),
        )
        lat_ref = latency_reference(space, latency)
        progress_rows: list[dict[str, float]] = []

        def on_generation(generation: int) -> None:
            checkpoint.save()
            seen = problem.history
            on_front = {e.arch for e in pareto_front(seen)}  # a dominated one stays dominated
            for arch in [a for a in statistics if a not in on_front]:
                del statistics[arch]
            feasible = [e for e in seen if e.feasible]
            progress_rows.append(
                {
                    "generation": generation,
                    "evaluations": len(seen),
                    "hypervolume": hypervolume(
                        seen, budget=options.budget_macs, latency_ref=lat_ref
                    ),
                    "best_val_accuracy": max((1 - e.val_error for e in feasible), default=0.0),
                }
            )

        strategy = create_strategy(
            options.strategy, storage=options.storage, surrogate=options.surrogate
        )
        stopped = False
        try:
            propose(
                strategy,
                problem,
                evaluations=total,
                population=options.population,
                seed=options.seed,
                on_generation=on_generation,
            )
        except _Stopped:
            stopped = True
        checkpoint.save()  # a strategy may stop without closing its last generation
    # workers on one study take turns: the last to write read the whole study last
    with file_lock(run_dir / SEARCH_LOCK), make_progress(show=show_progress) as progress:
        strategy.gather(problem)
        front = pareto_front(problem.history)
        test_task = progress.add_task("test accuracy of the front", total=len(front), info="")
        x_test, y_test = torch.from_numpy(dataset.x_test), torch.from_numpy(dataset.y_test)
        # each front ensemble's static network and its val and test logits: its test accuracy
        # here, and what the export of the same ensemble takes instead of computing it again
        calibrated = []
        for ev in front:
            calibrated.append(
                calibrate_ensemble(
                    supernet,
                    ev.arch,
                    x_calib=calib,
                    calibration=(options.calibration_images, options.seed),
                    splits={"val": x_val, "test": x_test},
                    device=device,
                    statistics=statistics.get(ev.arch),
                )
            )
            progress.advance(test_task)
        test_acc = [ensemble_metrics(c.logits["test"], y_test).accuracy for c in calibrated]

        history = _rows(problem.history, space)
        front_df = _rows(front, space).drop(columns=["generation", "feasible"])
        front_df.insert(0, "id", [f"e{i:03d}" for i in range(len(front))])
        front_df.insert(front_df.columns.get_loc("val_accuracy") + 1, "test_accuracy", test_acc)
        progress_df = pd.DataFrame(progress_rows, columns=PROGRESS_COLUMNS)
        search_dir = run_dir / SEARCH_DIR
        search_dir.mkdir(exist_ok=True)
        atomic_write_text(search_dir / SEARCH_HISTORY, history.to_csv(index=False))
        atomic_write_text(search_dir / HYPERVOLUME, progress_df.to_csv(index=False))
        atomic_write_text(run_dir / PARETO, front_df.to_csv(index=False))
        # the ids now name other architectures: exports of the old front must not be served
        remove_stale_exports(run_dir, dict(zip(front_df["id"], front_df["arch"])))
        if plots:
            plot_pareto(history, front_df, budget=options.budget_macs, path=run_dir / PARETO_PLOT)
            plot_hypervolume(progress_df, path=search_dir / HYPERVOLUME_PLOT)
        summary = {
            "options": asdict(options),
            "budget_macs": options.budget_macs,
            "device": str(device),
            "seconds": time.perf_counter() - t0,
            "proposals": len(problem.history),
            "unique_evaluations": len(problem.cache),
            "front_size": len(front_df),
            "best_val_accuracy": float(front_df["val_accuracy"].max()) if len(front_df) else None,
            "best_test_accuracy": (
                float(front_df["test_accuracy"].max()) if len(front_df) else None
            ),
            "test_accuracy_of_best_val": (
                float(front_df.loc[front_df["val_accuracy"].idxmax(), "test_accuracy"])
                if len(front_df)
                else None
            ),
            "first_generation": first_generation(history),
            "final_hypervolume": progress_rows[-1]["hypervolume"] if progress_rows else 0.0,
            "stopped_by_time_limit": stopped,
            "scores_reused": checkpoint.reused,
            "scores_discarded": checkpoint.discarded,
            "surrogate_kendall_tau_per_generation": [],
            "shared_study": None,
        }
        summary.update(strategy.summary())
        write_json(search_dir / SEARCH_SUMMARY, summary)
    return SearchResult(front_df, history, progress_df, summary, {c.arch: c for c in calibrated})


def load_search(run_dir: Path) -> SearchResult | None:
    """A finished search in ``run_dir``, or ``None``."""
    search_dir = run_dir / SEARCH_DIR
    needed = [search_dir / SEARCH_SUMMARY, search_dir / SEARCH_HISTORY, run_dir / PARETO]
    if not all(p.exists() for p in needed):
        return None
    return SearchResult(
        front=pd.read_csv(run_dir / PARETO),
        history=pd.read_csv(search_dir / SEARCH_HISTORY),
        progress=pd.read_csv(search_dir / HYPERVOLUME),
        summary=read_json(search_dir / SEARCH_SUMMARY),
    )

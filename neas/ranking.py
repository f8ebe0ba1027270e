"""Ranking diagnostics: does the supernet order ensembles the way training them from scratch does?

Sample N ensembles from the supernet's current space (seeded), estimate each one's validation
accuracy with inherited weights (the search's score, ``neas.evaluate.evaluate_arch``), train
each from scratch as a stand-alone ensemble for E epochs (sum of the members' cross-entropy,
the run's optimizer, warm-up + cosine), and report Kendall's τ-b and Spearman's ρ between the
two accuracies.

A run folder gets ``ranking.json`` (τ, ρ, settings, one row per ensemble), ``ranking.csv`` (the
rows) and ``ranking.png`` (scatter plot).
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from neas.config import THREADS, TrainConfig
from neas.data import Dataset
from neas.device import Threads, parse_threads, resolve_device, torch_threads
from neas.errors import ConfigError
from neas.evaluate import (
    EnsembleMetrics,
    calibration_images,
    ensemble_logits,
    ensemble_metrics,
    evaluate_arch,
)
from neas.files import atomic_write_text, write_json
from neas.layout import RANKING, RANKING_CSV, RANKING_PLOT
from neas.nn import EnsembleNet, Supernet, build_ensemble
from neas.plots import plot_ranking
from neas.progress import make_progress
from neas.run import open_trained, writable_dir
from neas.search_spaces.arch import EnsembleArch, sample
from neas.search_spaces.spec import SKIP, SearchSpace
from neas.shrink import ops_used
from neas.training.loop import ensemble_loss, fit, seeded_rng
from neas.training.supernet import training_threads


@dataclass(frozen=True)
class RankingResult:
    """Per-ensemble supernet and stand-alone metrics, and the rank correlations between them."""

    space: SearchSpace
    archs: tuple[EnsembleArch, ...]
    supernet: tuple[EnsembleMetrics, ...]
    standalone: tuple[EnsembleMetrics, ...]
    standalone_seconds: tuple[float, ...]
    kendall_tau: float
    spearman_rho: float
    settings: dict[str, Any]

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "index": i,
                "split": a.split,
                "arch": a.to_json(self.space),
                "supernet_accuracy": s.accuracy,
                "supernet_nll": s.nll,
                "supernet_disagreement": s.disagreement,
                "standalone_accuracy": t.accuracy,
                "standalone_nll": t.nll,
                "standalone_disagreement": t.disagreement,
                "standalone_seconds": sec,
            }
            for i, (a, s, t, sec) in enumerate(
                zip(self.archs, self.supernet, self.standalone, self.standalone_seconds)
            )
        ]


def rank_correlations(estimate: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Kendall's τ-b and Spearman's ρ (NaN when either side is constant).

    >>> rank_correlations(np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.7, 0.9]))
    (1.0, 1.0)
    """
    if len(estimate) < 2 or np.ptp(estimate) == 0 or np.ptp(truth) == 0:
        return math.nan, math.nan
    tau = stats.kendalltau(estimate, truth).statistic
    rho = stats.spearmanr(estimate, truth).statistic
    return float(tau), float(rho)


def tau_interval(
    estimate: np.ndarray,
    truth: np.ndarray,
    *,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of Kendall's τ-b: the ensembles are resampled with
    replacement (resamples where either side is constant are dropped).

    >>> low, high = tau_interval(np.arange(30.0), np.arange(30.0) + np.tile([0, 5], 15))
    >>> 0.5 < low < high <= 1.0
    True
    """
    estimate, truth = np.asarray(estimate, float), np.asarray(truth, float)
    n = len(estimate)
    if n < 3:
        return math.nan, math.nan
    rng = np.random.default_rng([seed, 31])
    taus = []
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        e, t = estimate[i], truth[i]
        if np.ptp(e) > 0 and np.ptp(t) > 0:
            taus.append(stats.kendalltau(e, t).statistic)
    taus = np.asarray(taus, float)
    taus = taus[np.isfinite(taus)]
    if len(taus) < n_boot // 2:
        return math.nan, math.nan
    alpha = (1.0 - level) / 2
    low, high = np.quantile(taus, [alpha, 1.0 - alpha])
    return float(low), float(high)


def arch_only_space(space: SearchSpace, arch: EnsembleArch) -> SearchSpace:
    """``space`` restricted to the ops ``arch`` uses (plus one non-skip op where it only skips)."""
    cands = []
    for i, layer in enumerate(space.layers):
        used = ops_used(arch, i)
        if used == {SKIP}:
            used.add(next(c for c in layer.candidates if c != SKIP))
        cands.append(tuple(c for c in layer.candidates if c in used))
    return space.with_candidates(tuple(cands))


def fresh_ensemble(space: SearchSpace, arch: EnsembleArch, *, seed: int) -> EnsembleNet:
    """A freshly initialised static ensemble for ``arch`` (each op initialised at its own size)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_ensemble(Supernet(arch_only_space(space, arch), weights="separate"), arch)


def train_standalone(
    net: EnsembleNet,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    config: TrainConfig,
    seed: int,
    device: torch.device | str = "cpu",
) -> EnsembleNet:
    """Train a static ensemble from scratch for ``config.epochs`` epochs on the one training loop
    (sum of members' cross-entropy, warm-up + cosine); ``seed`` fixes its data order and its
    dropout draws (the global RNG is forked and seeded, so the result does not depend on what ran
    before).

    Example (not run as a doctest: it trains or needs a run folder)::

        net = fresh_ensemble(space, arch, seed=0)
        train_standalone(net, x, y, config=TrainConfig(epochs=5), seed=0)
    """
    with seeded_rng(seed, device):
        net, _, _ = fit(
            net,
            x,
            y,
            config=config,
            loss_fn=ensemble_loss(config),
            device=device,
            seed=seed,
            show_progress=False,
        )
    return net  # type: ignore[return-value]


def sample_archs(space: SearchSpace, n: int, *, seed: int) -> tuple[EnsembleArch, ...]:
    """``n`` uniformly sampled ensembles of ``space`` (the ranking set)."""
    rng = np.random.default_rng([seed, 2718])
    return tuple(sample(space, rng) for _ in range(n))


def arch_seed(space: SearchSpace, arch: EnsembleArch, *, seed: int) -> int:
    """A training seed fixed by ``seed`` and the architecture alone (not by its position)."""
    key = zlib.crc32(arch.to_json(space).encode())
    return int(np.random.default_rng([seed, key]).integers(0, 2**31 - 1))


def supernet_estimates(
    supernet: Supernet,
    archs: Sequence[EnsembleArch],
    dataset: Dataset,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    show_progress: bool = True,
) -> list[EnsembleMetrics]:
    """Validation metrics of each ensemble with inherited weights, as the search scores them."""
    x_calib = calibration_images(dataset, seed=seed)
    x_val, y_val = torch.from_numpy(dataset.x_val), torch.from_numpy(dataset.y_val)
    out = []
    with make_progress(show=show_progress) as progress, torch.random.fork_rng(devices=[]):
        task = progress.add_task("rank: supernet", total=len(archs), info="")
        for arch in archs:
            m = evaluate_arch(supernet, arch, x_calib=x_calib, x=x_val, y=y_val, device=device)
            out.append(m)
            progress.update(task, advance=1, info=f"acc {m.accuracy:.3f}")
    return out


def standalone_metrics(
    space: SearchSpace,
    archs: Sequence[EnsembleArch],
    dataset: Dataset,
    *,
    config: TrainConfig,
    seed: int = 0,
    device: torch.device | str = "cpu",
    show_progress: bool = True,
) -> list[tuple[EnsembleMetrics, float]]:
    """Train each ensemble from scratch (``config.epochs``); its val metrics and seconds."""
    x_train, y_train = torch.from_numpy(dataset.x_train), torch.from_numpy(dataset.y_train)
    x_val, y_val = torch.from_numpy(dataset.x_val), torch.from_numpy(dataset.y_val)
    out = []
    with make_progress(show=show_progress) as progress, torch.random.fork_rng(devices=[]):
        task = progress.add_task("rank: stand-alone", total=len(archs), info="")
        for arch in archs:
            t0, s = time.perf_counter(), arch_seed(space, arch, seed=seed)
            net = fresh_ensemble(space, arch, seed=s)
            net = train_standalone(net, x_train, y_train, config=config, seed=s, device=device)
            m = ensemble_metrics(ensemble_logits(net, x_val, device=device), y_val)
            out.append((m, time.perf_counter() - t0))
            progress.update(task, advance=1, info=f"acc {m.accuracy:.3f}")
    return out


def _check(*, samples: int, epochs: int) -> None:
    if samples < 3:
        raise ConfigError(f"--samples must be at least 3 to rank, got {samples}")
    if epochs < 1:
        raise ConfigError(f"--epochs must be >= 1, got {epochs}")


def rank_supernet(
    supernet: Supernet,
    dataset: Dataset,
    *,
    samples: int,
    epochs: int,
    seed: int = 0,
    config: TrainConfig | None = None,
    device: torch.device | str = "cpu",
    show_progress: bool = True,
) -> RankingResult:
    """Rank ``samples`` random ensembles by supernet and by stand-alone training (``epochs``).

    Example (not run as a doctest: it trains or needs a run folder)::

        result = rank_supernet(net, dataset, samples=16, epochs=10)
        result.kendall_tau
    """
    _check(samples=samples, epochs=epochs)
    config = (config or TrainConfig()).settled(rows=len(dataset.y_train), table=dataset.is_table)
    config = replace(config, epochs=epochs)
    space = supernet.space
    archs = sample_archs(space, samples, seed=seed)
    kw = {"seed": seed, "device": device, "show_progress": show_progress}
    est = supernet_estimates(supernet, archs, dataset, **kw)
    true = standalone_metrics(space, archs, dataset, config=config, **kw)
    tau, rho = rank_correlations(
        np.array([m.accuracy for m in est]), np.array([m.accuracy for m, _ in true])
    )
    return RankingResult(
        space=space,
        archs=archs,
        supernet=tuple(est),
        standalone=tuple(m for m, _ in true),
        standalone_seconds=tuple(sec for _, sec in true),
        kendall_tau=tau,
        spearman_rho=rho,
        settings={"samples": samples, "epochs": epochs, "seed": seed, "train": asdict(config)},
    )


def _num(v: float) -> float | None:
    return None if math.isnan(v) else v


def write_ranking(result: RankingResult, run_dir: str | Path, *, title: str = "") -> dict[str, Any]:
    """Write ``ranking.json``, ``ranking.csv`` and ``ranking.png`` into ``run_dir``."""
    run_dir = Path(run_dir)
    rows = result.rows()
    nll_tau, nll_rho = rank_correlations(
        -np.array([m.nll for m in result.supernet]),
        np.array([m.accuracy for m in result.standalone]),
    )
    low, high = tau_interval(
        np.array([m.accuracy for m in result.supernet]),
        np.array([m.accuracy for m in result.standalone]),
    )
    summary = {
        "kendall_tau": _num(result.kendall_tau),
        "kendall_tau_ci95": [_num(low), _num(high)],
        "spearman_rho": _num(result.spearman_rho),
        "kendall_tau_supernet_nll": _num(nll_tau),
        "spearman_rho_supernet_nll": _num(nll_rho),
        "log10_space_size": result.space.log10_size(),
        **result.settings,
        "rows": rows,
    }
    write_json(run_dir / RANKING, summary)
    atomic_write_text(run_dir / RANKING_CSV, pd.DataFrame(rows).to_csv(index=False))
    plot_ranking(
        [r["supernet_accuracy"] for r in rows],
        [r["standalone_accuracy"] for r in rows],
        path=run_dir / RANKING_PLOT,
        title=f"{title}  τ = {result.kendall_tau:.2f}, ρ = {result.spearman_rho:.2f}".strip(),
    )
    return summary


def rank_run(
    run_dir: str | Path,
    *,
    samples: int,
    epochs: int,
    seed: int = 0,
    device: str | None = None,
    threads: Threads = THREADS,
    show_progress: bool = True,
) -> dict[str, Any]:
    """``neas rank``: rank the trained supernet of ``run_dir`` and write the results there.

    Example (not run as a doctest: it trains or needs a run folder)::

        rank_run("runs/digits", samples=16, epochs=10)["kendall_tau"]
    """
    _check(samples=samples, epochs=epochs)
    threads = parse_threads(threads)
    dev = resolve_device(device)
    run = open_trained(run_dir, device=dev)
    writable_dir(run.path)  # before minutes of training: a folder that cannot take results fails
    n_threads = training_threads(
        threads, run.space, run.dataset, config=run.config.train, device=dev
    )
    with torch_threads(n_threads):
        result = rank_supernet(
            run.supernet,
            run.dataset,
            samples=samples,
            epochs=epochs,
            seed=seed,
            config=run.config.train,
            device=dev,
            show_progress=show_progress,
        )
    return write_ranking(result, run.path)

"""Search strategies at the same evaluation budget, and the latency predictor's error.

For each dataset one supernet is trained (default settings of ``neas search``), then every
strategy searches it with the same number of proposals and the same seeds:

- hypervolume of the final feasible front (error, MACs/budget, latency/slowest; ref (1,1,1)),
- best validation accuracy under the budget and the test accuracy of that ensemble,
- search wall time.

The latency lookup table is validated against measured latency of random static ensembles
(MAPE). Results are printed as markdown and written to ``benchmarks/RESULTS.md``.

    python benchmarks/search.py                       # digits + fashion-mnist
    python benchmarks/search.py --datasets digits --seeds 0
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _results import write_section

from neas.config import DataOptions, RunConfig, SearchOptions, TrainConfig
from neas.cost import CostTable
from neas.evolution import preflight_search, run_search
from neas.evolution.stage import latency_table_for
from neas.nn import build_ensemble
from neas.pipeline import train
from neas.predictors.latency import time_module
from neas.search_spaces import sample

HERE = Path(__file__).parent
STRATEGIES = (("nsga2", False), ("nsga2", True), ("optuna", False), ("random", False))


def subsample(dataset, *, max_val: int, max_test: int, seed: int):
    rng = np.random.default_rng(seed)
    iv = np.sort(rng.permutation(len(dataset.x_val))[:max_val])
    it = np.sort(rng.permutation(len(dataset.x_test))[:max_test])
    return dataclasses.replace(
        dataset,
        x_val=dataset.x_val[iv],
        y_val=dataset.y_val[iv],
        x_test=dataset.x_test[it],
        y_test=dataset.y_test[it],
    )


def latency_mape(supernet, table, *, n: int, seed: int) -> float:
    """Mean absolute percentage error of predicted vs measured (torch, batch 1) latency."""
    rng = np.random.default_rng(seed)
    space = supernet.space
    errors = []
    for _ in range(n):
        arch = sample(space, rng)
        net = build_ensemble(supernet, arch).eval()
        x = torch.randn(table.batch, space.in_channels, space.image_size, space.image_size)
        measured = time_module(net, x, warmup=5, repeats=30)
        errors.append(abs(table.predict(arch) - measured) / measured)
    return 100.0 * float(np.mean(errors))


def run_dataset(name: str, args) -> list[str]:
    cfg = {
        "digits": dict(data=DataOptions(source="digits"), epochs=20, max_val=None),
        "fashion-mnist": dict(
            data=DataOptions(source="fashion-mnist", max_train=args.fashion_train),
            epochs=args.fashion_epochs,
            max_val=1000,
        ),
    }[name]
    evaluations = args.evaluations if name == "digits" else args.fashion_evaluations
    seeds = args.seeds if name == "digits" else args.seeds[:1]
    out = HERE / "runs" / f"search-{name}"
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    trained = train(
        out=out,
        config=RunConfig(
            data=cfg["data"], train=TrainConfig(epochs=cfg["epochs"], summary_samples=0)
        ),
        seed=0,
        show_progress=False,
    )
    train_s = time.perf_counter() - t0
    dataset = trained.dataset
    if cfg["max_val"]:
        dataset = subsample(dataset, max_val=cfg["max_val"], max_test=2000, seed=0)
    supernet = trained.supernet.eval()
    device = torch.device("cpu")
    table = latency_table_for(out, supernet, device=device, batch=1, show_progress=False)
    mape = latency_mape(supernet, table, n=args.latency_samples, seed=0)
    costs = CostTable.from_space(supernet.space)
    rng = np.random.default_rng(0)
    median_macs = int(
        np.median([costs.ensemble(sample(supernet.space, rng)).macs for _ in range(200)])
    )
    lines = [
        f"### {name}",
        "",
        f"Supernet: {len(dataset.x_train)} train images, {cfg['epochs']} epochs, shrinking at "
        f"0.3/0.5/0.7, {train_s:.0f} s. Val {len(dataset.x_val)}, test {len(dataset.x_test)} "
        f"images. Budget {median_macs / 1e6:.1f}M MACs (median of random ensembles, so it "
        f"binds). {evaluations} proposals per strategy, population {args.population}, "
        f"seeds {', '.join(map(str, seeds))} (mean ± std over seeds).",
        "",
        f"Latency lookup table vs measured torch latency (batch 1, {args.latency_samples} "
        f"random ensembles): **MAPE {mape:.1f}%**.",
        "",
        "| strategy | hypervolume | best val acc (%) | its test acc (%) | surrogate τ | search s |",
        "|---|---|---|---|---|---|",
    ]
    for strategy, surrogate in STRATEGIES:
        hv, val, test, secs, taus = [], [], [], [], []
        for seed in seeds:
            options = SearchOptions(
                budget=median_macs,
                strategy=strategy,
                surrogate=surrogate,
                population=args.population,
                evaluations=evaluations,
                seed=seed,
                generations=max(1, evaluations // args.population),
            )
            preflight_search(out, options, supernet.space)
            t1 = time.perf_counter()
            res = run_search(
                out, supernet, dataset, options=options, device=device, show_progress=False
            )
            secs.append(time.perf_counter() - t1)
            hv.append(res.summary["final_hypervolume"])
            best = res.front.loc[res.front["val_accuracy"].idxmax()]
            val.append(100 * best["val_accuracy"])
            test.append(100 * best["test_accuracy"])
            taus += res.summary["surrogate_kendall_tau_per_generation"]
        label = strategy + (" + surrogate" if surrogate else "")
        tau = f"{np.mean(taus):.2f}" if taus else "–"
        lines.append(
            f"| {label} | {np.mean(hv):.4f} ± {np.std(hv):.4f} | {np.mean(val):.2f} ± "
            f"{np.std(val):.2f} | {np.mean(test):.2f} ± {np.std(test):.2f} | {tau} | "
            f"{np.mean(secs):.0f} |"
        )
        print(lines[-1], flush=True)
    return lines + [""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["digits", "fashion-mnist"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--evaluations", type=int, default=96)
    p.add_argument("--population", type=int, default=16)
    p.add_argument("--latency-samples", type=int, default=10)
    p.add_argument("--fashion-train", type=int, default=5000)
    p.add_argument("--fashion-epochs", type=int, default=8)
    p.add_argument("--fashion-evaluations", type=int, default=64, help="first seed only")
    args = p.parse_args()
    t0 = time.perf_counter()
    section = [
        "## Search strategies (Core 3)",
        "",
        "Command: `python benchmarks/search.py "
        + " ".join(sys.argv[1:])
        + "` (2 CPU cores, torch "
        + torch.__version__
        + f", {torch.get_num_threads()} threads).",
        "",
    ]
    for name in args.datasets:
        section += run_dataset(name, args)
    section.append(f"Total wall time {time.perf_counter() - t0:.0f} s.")
    print("\n".join(section))
    write_section(section[0], section[1:])


if __name__ == "__main__":
    main()

"""Does diversity-guided shrinking make the supernet rank ensembles better? (Core 2)

On one dataset (Fashion-MNIST by default) and the default weight mode, train three supernets
with the same budget and seed: (a) no shrinking, (b) potentiality-only shrinking (λ = 0),
(c) diversity-guided shrinking (λ = 1). On each, sample N ensembles from the supernet's *final*
space, estimate their val accuracy with inherited weights, and train each from scratch twice
(two seeds) for E epochs:

- τ: Kendall τ-b between the supernet estimate and the first from-scratch training;
- noise ceiling: τ between the two from-scratch trainings of the same ensembles (what a
  perfect predictor of "accuracy after training" could reach against one noisy training);
- 95% percentile-bootstrap intervals for every τ (ensembles resampled with replacement);
- paired control: τ of supernet (a) on (b)'s and (c)'s very ensembles (shrunk spaces hold
  more similar ensembles, which are harder to rank).

Stand-alone results are cached by architecture and seed. Writes the "Ranking" section of
RESULTS.md and ``results/ranking.json``.

    nice -n 10 python benchmarks/ranking.py
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from neas.config import ShrinkConfig, SpaceOptions, TrainConfig
from neas.data import Dataset, load_dataset
from neas.evaluate import EnsembleMetrics
from neas.job_space import build_space
from neas.nn import Supernet
from neas.ranking import (
    RankingResult,
    rank_correlations,
    sample_archs,
    standalone_metrics,
    supernet_estimates,
    tau_interval,
    write_ranking,
)
from neas.shrink import Shrinker
from neas.training import train_supernet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_json, write_section  # noqa: E402

HEADING = "## Ranking (Core 2)"
NOTES = "<!-- ranking-notes: text below this line is kept when the table is rewritten -->"
VARIANTS = {"no_shrink": None, "lambda_0": 0.0, "lambda_1": 1.0}
LABELS = {"no_shrink": "a: no shrink", "lambda_0": "b: λ = 0", "lambda_1": "c: λ = 1"}


def load(name: str, *, max_train: int | None, max_val: int, seed: int) -> Dataset:
    ds = load_dataset(name, seed=seed, max_train=max_train)
    return replace(ds, x_val=ds.x_val[:max_val], y_val=ds.y_val[:max_val])


def train_variant(
    ds: Dataset, space, *, lam: float | None, args, out: Path
) -> tuple[Supernet, float]:
    torch.manual_seed(args.seed)
    net = Supernet(space, weights=args.weights)
    cfg = TrainConfig(epochs=args.supernet_epochs, batch_size=args.batch_size, seed=args.seed)
    kw = {}
    if lam is not None:
        shrink = ShrinkConfig(
            at=args.shrink_at,
            ratio=args.shrink_ratio,
            diversity_weight=lam,
            samples=args.shrink_samples,
            seed=args.seed,
        )
        kw = {
            "shrink_epochs": shrink.epochs(args.supernet_epochs),
            "shrink": Shrinker(shrink, dataset=ds, run_dir=out, show_progress=False),
        }
    t0 = time.perf_counter()
    net, _ = train_supernet(
        net,
        torch.from_numpy(ds.x_train),
        torch.from_numpy(ds.y_train),
        config=cfg,
        show_progress=False,
        **kw,
    )
    return net, time.perf_counter() - t0


def tau_with_interval(estimate, truth, *, seed: int) -> dict[str, float | None]:
    tau, rho = rank_correlations(np.asarray(estimate), np.asarray(truth))
    low, high = tau_interval(estimate, truth, seed=seed)
    num = lambda v: None if math.isnan(v) else round(float(v), 4)  # noqa: E731
    return {"tau": num(tau), "tau_ci_low": num(low), "tau_ci_high": num(high), "rho": num(rho)}


def fmt_tau(d: dict) -> str:
    if d["tau"] is None:
        return "n/a"
    ci = "" if d["tau_ci_low"] is None else f" [{d['tau_ci_low']:.2f}, {d['tau_ci_high']:.2f}]"
    return f"{d['tau']:.2f}{ci}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--weights", default=TrainConfig().weights, help="supernet weight mode")
    p.add_argument("--samples", type=int, default=30, help="ensembles ranked per supernet (N)")
    p.add_argument("--epochs", type=int, default=4, help="stand-alone epochs per ensemble (E)")
    p.add_argument("--supernet-epochs", type=int, default=8)
    p.add_argument("--max-train", type=int, default=1500, help="training images used")
    p.add_argument("--max-val", type=int, default=1000, help="validation images used")
    p.add_argument("--width-mult", type=float, default=0.25)
    p.add_argument("--head-width", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--shrink-at", type=lambda s: tuple(map(float, s.split(","))), default=(0.3, 0.5, 0.7)
    )
    p.add_argument("--shrink-ratio", type=float, default=0.25)
    p.add_argument("--shrink-samples", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise-seed", type=int, default=1, help="seed of the second scratch training")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("runs/benchmark-ranking"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    command = " ".join(["nice -n 10 python benchmarks/ranking.py", *sys.argv[1:]])
    t_start = time.perf_counter()
    ds = load(args.data, max_train=args.max_train, max_val=args.max_val, seed=args.seed)
    space = build_space(
        SpaceOptions(
            width_mult=args.width_mult, head_width=args.head_width, feature_width=args.head_width
        ),
        ds,
    )
    train_cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    truth: dict[tuple[str, int], tuple[EnsembleMetrics, float]] = {}

    def scratch(archs, seed: int) -> np.ndarray:
        todo = [a for a in archs if (a.to_json(space), seed) not in truth]
        done = standalone_metrics(space, todo, ds, config=train_cfg, seed=seed, show_progress=False)
        truth.update({(a.to_json(space), seed): r for a, r in zip(todo, done)})
        return np.array([truth[(a.to_json(space), seed)][0].accuracy for a in archs])

    variants, base = [], None
    for name, lam in VARIANTS.items():
        out = args.out / args.data / args.weights / name
        out.mkdir(parents=True, exist_ok=True)
        net, sup_s = train_variant(ds, space, lam=lam, args=args, out=out)
        archs = sample_archs(net.space, args.samples, seed=args.seed)
        est = supernet_estimates(net, archs, ds, seed=args.seed, show_progress=False)
        t0 = time.perf_counter()
        acc0, acc1 = scratch(archs, args.seed), scratch(archs, args.noise_seed)
        scratch_s = time.perf_counter() - t0
        acc_est = np.array([m.accuracy for m in est])
        row = {
            "name": name,
            "lambda": lam,
            "n": len(archs),
            **tau_with_interval(acc_est, acc0, seed=args.seed),
            "noise_ceiling": tau_with_interval(acc1, acc0, seed=args.seed),
            "log10_space": round(net.space.log10_size(), 2),
            "supernet_s": round(sup_s, 1),
            "scratch_s_new": round(scratch_s, 1),
            "scratch_accuracy_mean": round(float(acc0.mean()), 4),
            "scratch_accuracy_sd": round(float(acc0.std()), 4),
            "supernet_accuracy_mean": round(float(acc_est.mean()), 4),
        }
        if base is not None:
            base_est = supernet_estimates(base, archs, ds, seed=args.seed, show_progress=False)
            row["no_shrink_supernet_same_ensembles"] = tau_with_interval(
                np.array([m.accuracy for m in base_est]), acc0, seed=args.seed
            )
        else:
            base = net
        result = RankingResult(
            space=net.space,
            archs=archs,
            supernet=tuple(est),
            standalone=tuple(truth[(a.to_json(space), args.seed)][0] for a in archs),
            standalone_seconds=tuple(truth[(a.to_json(space), args.seed)][1] for a in archs),
            kendall_tau=row["tau"] if row["tau"] is not None else math.nan,
            spearman_rho=row["rho"] if row["rho"] is not None else math.nan,
            settings={"samples": args.samples, "epochs": args.epochs, "seed": args.seed},
        )
        write_ranking(result, out, title=f"{args.data} {args.weights} {LABELS[name]}")
        variants.append(row)
        print(
            f"{LABELS[name]}: tau {fmt_tau(row)}, noise ceiling {fmt_tau(row['noise_ceiling'])}, "
            f"supernet {sup_s:.0f} s, scratch {scratch_s:.0f} s",
            flush=True,
        )

    # One pooled noise ceiling: every ensemble ranked in any variant, trained with both seeds.
    keys = sorted({k for k, _ in truth})
    pooled = tau_with_interval(
        np.array([truth[(k, args.noise_seed)][0].accuracy for k in keys]),
        np.array([truth[(k, args.seed)][0].accuracy for k in keys]),
        seed=args.seed,
    )
    total = time.perf_counter() - t_start
    settings = {
        "data": args.data,
        "weights": args.weights,
        "train_images": len(ds.x_train),
        "val_images": len(ds.x_val),
        "samples": args.samples,
        "standalone_epochs": args.epochs,
        "supernet_epochs": args.supernet_epochs,
        "batch_size": args.batch_size,
        "width_mult": args.width_mult,
        "head_width": args.head_width,
        "shrink_at": list(args.shrink_at),
        "shrink_ratio": args.shrink_ratio,
        "shrink_samples": args.shrink_samples,
        "seeds": [args.seed, args.noise_seed],
        "torch_threads": args.threads,
        "bootstrap": "percentile, 2000 resamples of the ensembles, 95%",
    }
    write_json(
        "ranking.json",
        {
            "command": command,
            "wall_s": round(total, 1),
            "settings": settings,
            "noise_ceiling_tau": pooled["tau"],
            "noise_ceiling_ci_low": pooled["tau_ci_low"],
            "noise_ceiling_ci_high": pooled["tau_ci_high"],
            "noise_ceiling_n": len(keys),
            "variants": variants,
        },
    )
    write_results(args, variants, pooled, len(keys), len(ds.x_train), len(ds.x_val), command, total)
    print(f"pooled noise ceiling {fmt_tau(pooled)} over {len(keys)} ensembles")
    print(f"total {total / 60:.1f} min -> benchmarks/RESULTS.md, benchmarks/results/ranking.json")


def write_results(args, variants, pooled, n_pooled, n_train, n_val, command, total) -> None:
    header = (
        "| variant | log10 space | scratch acc (mean ± sd) | τ [95% CI] | noise ceiling τ [95% CI] "
        "| τ / ceiling | τ of (a) on the same ensembles |"
    )
    rows = []
    for v in variants:
        ceiling = v["noise_ceiling"]["tau"]
        ratio = "n/a" if not (v["tau"] is not None and ceiling) else f"{v['tau'] / ceiling:.2f}"
        paired = v.get("no_shrink_supernet_same_ensembles")
        rows.append(
            f"| {LABELS[v['name']]} | {v['log10_space']:.1f} | {v['scratch_accuracy_mean']:.3f} ± "
            f"{v['scratch_accuracy_sd']:.3f} | {fmt_tau(v)} | {fmt_tau(v['noise_ceiling'])} | "
            f"{ratio} | {'—' if paired is None else fmt_tau(paired)} |"
        )
    lines = [
        "",
        f"Command: `{command}` (total wall time {total / 60:.1f} min on the shared 2-core CPU "
        f"machine, {args.threads} torch thread(s)).",
        "",
        f"{args.data}, weights `{args.weights}`: {n_train} training / {n_val} validation images; "
        f"N = {args.samples} ensembles per supernet, each trained from scratch twice (seeds "
        f"{args.seed} and {args.noise_seed}) for E = {args.epochs} epochs; supernets "
        f"{args.supernet_epochs} epochs, batch {args.batch_size}, mbconv width {args.width_mult}, "
        f"head/feature width {args.head_width}; shrink at {','.join(map(str, args.shrink_at))}, "
        f"ratio {args.shrink_ratio}, {args.shrink_samples} sampled ensembles per step. τ is "
        f"Kendall τ-b between the supernet's estimate and the seed-{args.seed} training; the "
        "noise ceiling is τ between the two trainings of the same ensembles; intervals are 95% "
        "percentile bootstrap over ensembles.",
        "",
        header,
        "|" + "---|" * 7,
        *rows,
        "",
        f"Pooled noise ceiling over all {n_pooled} ranked ensembles: {fmt_tau(pooled)}. "
        "Machine-readable: `benchmarks/results/ranking.json`.",
        "",
        NOTES,
    ]
    path = Path(__file__).resolve().parent / "RESULTS.md"
    text = path.read_text() if path.exists() else ""
    notes = ""
    if HEADING in text:  # keep the hand-written notes below the marker
        section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
        if NOTES in section:
            notes = section.split(NOTES, 1)[1].strip("\n")
    write_section(HEADING, lines + ([notes, ""] if notes else [""]))


if __name__ == "__main__":
    main()

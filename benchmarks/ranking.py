"""Does diversity-guided shrinking make the supernet rank ensembles better? (Core 2)

For each dataset (digits, Fashion-MNIST) and weight mode (entangled, separate), train three
supernets with the same budget and seeds: (a) no shrinking, (b) potentiality-only shrinking
(λ = 0), (c) diversity-guided shrinking (λ = 1). Then run the ``neas rank`` protocol on each:
N ensembles sampled from the supernet's *final* space, supernet-estimated val accuracy vs
stand-alone val accuracy after E epochs from scratch, Kendall τ-b and Spearman ρ.

Extra, paired column: τ of supernet (a) on the very same ensembles as (b)/(c). Shrunk spaces
hold more similar ensembles (a narrower accuracy range is harder to rank), so this control
separates "the shrunk supernet ranks better" from "its space is easier to rank".

Stand-alone results are cached by architecture (the training seed depends only on the seed and
the architecture), so (a) shares its ground truth across weight modes.

    nice -n 10 python benchmarks/ranking.py
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from neas.config import ShrinkConfig, SpaceOptions, TrainConfig
from neas.data import Dataset, load_dataset
from neas.evaluate import EnsembleMetrics
from neas.nn import Supernet
from neas.ranking import (
    RankingResult,
    rank_correlations,
    sample_archs,
    standalone_metrics,
    supernet_estimates,
    write_ranking,
)
from neas.shrink import Shrinker
from neas.training import train_supernet

HEADING = "## Ranking (Core 2)"
VARIANTS = {"a: no shrink": None, "b: λ=0": 0.0, "c: λ=1": 1.0}


def load(name: str, *, max_train: int | None, max_val: int, seed: int) -> Dataset:
    ds = load_dataset(name, seed=seed, max_train=max_train)
    return replace(ds, x_val=ds.x_val[:max_val], y_val=ds.y_val[:max_val])


def train_variant(
    ds: Dataset, space, *, weights: str, lam: float | None, args, epochs: int, out: Path
) -> tuple[Supernet, float]:
    torch.manual_seed(args.seed)
    net = Supernet(space, weights=weights)
    cfg = TrainConfig(epochs=epochs, batch_size=args.batch_size, seed=args.seed)
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
            "shrink_epochs": shrink.epochs(epochs),
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--datasets", default="digits,fashion-mnist")
    p.add_argument("--samples", type=int, default=10, help="ensembles ranked per supernet (N)")
    p.add_argument("--epochs", type=int, default=4, help="stand-alone epochs per ensemble (E)")
    p.add_argument("--supernet-epochs", default="digits=12,fashion-mnist=8")
    p.add_argument("--fashion-train", type=int, default=1500, help="Fashion-MNIST train cap")
    p.add_argument("--max-val", type=int, default=500, help="val images used (both datasets)")
    p.add_argument("--width-mult", type=float, default=0.25)
    p.add_argument("--head-width", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--shrink-at", type=lambda s: tuple(map(float, s.split(","))), default=(0.3, 0.5, 0.7)
    )
    p.add_argument("--shrink-ratio", type=float, default=0.25)
    p.add_argument("--shrink-samples", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("runs/benchmark-ranking"))
    p.add_argument("--results", type=Path, default=Path(__file__).parent / "RESULTS.md")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    sup_epochs = dict(kv.split("=") for kv in args.supernet_epochs.split(","))
    command = " ".join(["nice -n 10 python benchmarks/ranking.py", *sys.argv[1:]])
    rows, t_start, train_sizes = [], time.perf_counter(), {}
    header = (
        "| data | weights | variant | log10 space | supernet s | stand-alone s (new) | "
        "stand-alone acc (mean ± sd) | τ | ρ | τ of (a) on same ensembles |"
    )
    print(header + "\n|" + "---|" * 10, flush=True)
    for name in args.datasets.split(","):
        ds = load(
            name,
            max_train=args.fashion_train if name == "fashion-mnist" else None,
            max_val=args.max_val,
            seed=args.seed,
        )
        space = SpaceOptions(
            width_mult=args.width_mult, head_width=args.head_width, feature_width=args.head_width
        ).build(ds)
        train_sizes[name] = (len(ds.x_train), len(ds.x_val))
        train_cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
        truth: dict[str, tuple[EnsembleMetrics, float]] = {}
        for weights in ("entangled", "separate"):
            base: Supernet | None = None
            for variant, lam in VARIANTS.items():
                out = args.out / name / weights / variant[0]
                out.mkdir(parents=True, exist_ok=True)
                net, sup_s = train_variant(
                    ds,
                    space,
                    weights=weights,
                    lam=lam,
                    args=args,
                    epochs=int(sup_epochs[name]),
                    out=out,
                )
                archs = sample_archs(net.space, args.samples, seed=args.seed)
                est = supernet_estimates(net, archs, ds, seed=args.seed, show_progress=False)
                todo = [a for a in archs if a.to_json(space) not in truth]
                done = standalone_metrics(
                    space, todo, ds, config=train_cfg, seed=args.seed, show_progress=False
                )
                truth.update({a.to_json(space): r for a, r in zip(todo, done)})
                true = [truth[a.to_json(space)] for a in archs]
                result = RankingResult(
                    space=net.space,
                    archs=archs,
                    supernet=tuple(est),
                    standalone=tuple(m for m, _ in true),
                    standalone_seconds=tuple(s for _, s in true),
                    kendall_tau=np.nan,
                    spearman_rho=np.nan,
                    settings={"samples": args.samples, "epochs": args.epochs, "seed": args.seed},
                )
                acc_true = np.array([m.accuracy for m in result.standalone])
                tau, rho = rank_correlations(np.array([m.accuracy for m in est]), acc_true)
                result = replace(result, kendall_tau=tau, spearman_rho=rho)
                write_ranking(result, out, title=f"{name} {weights} {variant}")
                if base is None:
                    base, paired = net, "—"
                else:
                    base_est = supernet_estimates(
                        base, archs, ds, seed=args.seed, show_progress=False
                    )
                    t_base, _ = rank_correlations(
                        np.array([m.accuracy for m in base_est]), acc_true
                    )
                    paired = f"{t_base:.2f}"
                row = (
                    f"| {name} | {weights} | {variant} | {net.space.log10_size():.1f} | "
                    f"{sup_s:.0f} | {sum(s for _, s in done):.0f} | "
                    f"{acc_true.mean():.3f} ± {acc_true.std():.3f} | {tau:.2f} | {rho:.2f} | "
                    f"{paired} |"
                )
                rows.append(row)
                print(row, flush=True)
    total = time.perf_counter() - t_start
    write_results(args, rows, header, command, total, train_sizes)
    print(f"total {total / 60:.1f} min -> {args.results}")


NOTES = "<!-- ranking-notes: text below this line is kept when the table is rewritten -->"


def replace_section(text: str, section: str) -> str:
    """Put ``section`` under HEADING, keeping hand-written notes below the NOTES marker."""
    start = text.find(HEADING)
    if start < 0:
        return text.rstrip("\n") + "\n\n" + section + "\n"
    end = text.find("\n## ", start + len(HEADING))
    end = len(text) if end < 0 else end + 1
    old = text[start:end]
    k = old.find(NOTES)
    notes = old[k + len(NOTES) :] if k >= 0 else "\n"
    return text[:start] + section + notes + text[end:]


def write_results(
    args,
    rows: list[str],
    header: str,
    command: str,
    total: float,
    train_sizes: dict[str, tuple[int, int]],
) -> None:
    sizes = (
        f"N = {args.samples} ensembles per supernet, E = {args.epochs} stand-alone epochs, "
        f"supernet epochs {args.supernet_epochs}, batch {args.batch_size}; train/val images "
        + ", ".join(f"{k} {t}/{v}" for k, (t, v) in train_sizes.items())
        + f"; mbconv width {args.width_mult}, head/feature "
        f"width {args.head_width}; shrink at {','.join(map(str, args.shrink_at))}, ratio "
        f"{args.shrink_ratio}, {args.shrink_samples} sampled ensembles per shrink step, min 2 "
        f"ops; seed {args.seed}; {args.threads} torch thread(s)."
    )
    section = "\n".join(
        [
            HEADING,
            "",
            f"Command: `{command}` (total wall time {total / 60:.1f} min on the shared 2-core "
            "CPU machine).",
            "",
            f"Sizes: {sizes}",
            "",
            header,
            "|" + "---|" * 10,
            *rows,
            "",
            NOTES,
        ]
    )
    path = args.results
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    path.write_text(replace_section(text, section))


if __name__ == "__main__":
    main()

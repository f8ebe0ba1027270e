"""Supernet training throughput vs training static ensembles, and accuracy per weight mode.

On digits with the default small-image preset, one torch thread unless ``--threads``:

1. like for like, per weight mode: ``--archs`` sampled ensembles (seeded); for each, images/s
   of training its static ensemble alone and of training the supernet with that ensemble fixed;
   then the supernet cycling through the same ensembles step by step. The ratio that answers
   "what does weight sharing cost per step" is the cycling supernet against the harmonic mean of
   the static ensembles (the same mix of work);
2. after ``--epochs`` of supernet training (a new uniformly sampled ensemble every step): its
   median images/s, wall time, and the validation accuracy of ``--samples`` random ensembles.

Comparing the supernet's training rate with *one* static ensemble (what this script did before)
measures how that one ensemble's cost compares with the average sampled one, not the cost of
weight sharing. Writes the "Supernet training throughput" section of RESULTS.md and
``results/train_throughput.json``.

    python benchmarks/train_throughput.py --epochs 20 --samples 16
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neas.config import SpaceOptions, TrainConfig
from neas.cost import CostTable
from neas.data import load_dataset
from neas.job_space import build_space
from neas.nn import Supernet, build_ensemble
from neas.search_spaces import sample
from neas.stages import random_ensemble_accuracy
from neas.training import train_supernet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_json, write_section  # noqa: E402

WARMUP = 3


def images_per_s(forward, params, x, y, *, batch_size: int, steps: int, seed: int) -> float:
    """Training images/s of ``forward(xb, step) -> member logits`` with AdamW (warm-up excluded)."""
    opt = torch.optim.AdamW(params, lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for step in range(steps + WARMUP):
        if step == WARMUP:
            t0 = time.perf_counter()
        idx = torch.randint(0, len(x), (batch_size,), generator=g)
        xb = x[idx].contiguous(memory_format=torch.channels_last)
        loss = sum(F.cross_entropy(o, y[idx]) for o in forward(xb, step))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * batch_size / (time.perf_counter() - t0)


def like_for_like(space, archs, x, y, *, weights: str, args) -> dict:
    torch.manual_seed(args.seed)
    sup = Supernet(space, weights=weights).train()
    kw = {"batch_size": args.batch_size, "steps": args.steps, "seed": args.seed}
    rows = []
    for arch in archs:
        torch.manual_seed(args.seed)
        static = build_ensemble(Supernet(space, weights=weights), arch).train()
        s = images_per_s(
            lambda xb, _, m=static: m.member_logits(xb), static.parameters(), x, y, **kw
        )
        f = images_per_s(lambda xb, _, a=arch: sup(xb, a), sup.parameters(), x, y, **kw)
        rows.append(
            {
                "macs": CostTable.from_space(space).ensemble(arch).macs,
                "static": s,
                "supernet_fixed": f,
            }
        )
    cyc = images_per_s(
        lambda xb, step: sup(xb, archs[step % len(archs)]), sup.parameters(), x, y, **kw
    )
    hmean = len(rows) / sum(1 / r["static"] for r in rows)
    return {
        "weights": weights,
        "archs": rows,
        "static_harmonic_mean": hmean,
        "supernet_cycling": cyc,
        "ratio": cyc / hmean,
        "fixed_over_static": [r["supernet_fixed"] / r["static"] for r in rows],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--samples", type=int, default=16, help="random ensembles evaluated")
    p.add_argument("--archs", type=int, default=6, help="ensembles of the like-for-like test")
    p.add_argument("--steps", type=int, default=30, help="timed steps per like-for-like rate")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("digits", seed=args.seed)
    space = build_space(SpaceOptions(), data)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train).long()
    rng = np.random.default_rng(args.seed)
    archs = [sample(space, rng) for _ in range(args.archs)]
    results = []
    for weights in ("entangled", "separate"):
        lfl = like_for_like(space, archs, x, y, weights=weights, args=args)
        torch.manual_seed(args.seed)
        net = Supernet(space, weights=weights)
        cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
        t0 = time.perf_counter()
        net, state = train_supernet(net, x, y, config=cfg, show_progress=False)
        seconds = time.perf_counter() - t0
        acc = random_ensemble_accuracy(
            net, data, n=args.samples, seed=args.seed, device=torch.device("cpu")
        )
        results.append(
            lfl
            | {
                "training_images_per_s": float(
                    np.median([h["images_per_s"] for h in state.history])
                ),
                "epochs": args.epochs,
                "train_s": seconds,
                "random_val_accuracy_mean": acc["random_val_accuracy_mean"],
                "random_val_accuracy_max": acc["random_val_accuracy_max"],
            }
        )
        print(results[-1], flush=True)
    command = " ".join(["python benchmarks/train_throughput.py", *sys.argv[1:]])
    write_json(
        "train_throughput.json", {"command": command, "threads": args.threads, "results": results}
    )
    lines = [
        "",
        f"Command: `{command}` (digits, {len(x)} training images, mbconv width 0.5, head/feature "
        f"256, batch {args.batch_size}, {args.threads} torch thread(s), shared 2-core CPU). "
        f"Like for like: {args.archs} sampled ensembles, {args.steps} timed AdamW steps each.",
        "",
        "| weights | static ensembles img/s (harmonic mean) | supernet cycling the same "
        "ensembles img/s | **ratio** | supernet / static, each ensemble fixed | supernet "
        "training img/s (uniform sampling) | epochs | train s | random val acc mean | max |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['weights']} | {r['static_harmonic_mean']:.0f} | {r['supernet_cycling']:.0f} "
            f"| **{r['ratio']:.2f}** | "
            + ", ".join(f"{v:.2f}" for v in r["fixed_over_static"])
            + f" | {r['training_images_per_s']:.0f} | {r['epochs']} | {r['train_s']:.0f} "
            f"| {100 * r['random_val_accuracy_mean']:.1f}% "
            f"| {100 * r['random_val_accuracy_max']:.1f}% |"
            for r in results
        ),
        "",
        "Static ensembles of the like-for-like set (MACs, img/s): "
        + "; ".join(f"{a['macs'] / 1e6:.1f}M {a['static']:.0f}" for a in results[0]["archs"])
        + ".",
        "",
    ]
    write_section("## Supernet training throughput (Core 1)", lines)


if __name__ == "__main__":
    main()

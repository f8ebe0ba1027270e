"""Supernet training throughput vs training one static ensemble, and accuracy per weight mode.

For each weight mode (entangled, separate) on digits with the default small-image preset:
1. images/s of supernet training (a new uniformly sampled ensemble every step);
2. images/s of training one static ensemble alone (a fixed sampled arch, same batch size);
3. after the same number of supernet epochs: wall time and the validation accuracy of random
   ensembles (BN recalibrated), mean and max.

    python benchmarks/train_throughput.py --epochs 20 --samples 16
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from neas.config import SpaceOptions, TrainConfig
from neas.data import load_dataset
from neas.nn import Supernet, build_ensemble
from neas.pipeline import random_ensemble_accuracy
from neas.search_spaces import sample
from neas.training import train_supernet


def static_images_per_s(space, arch, x, y, *, batch_size: int, steps: int) -> float:
    torch.manual_seed(0)
    net = build_ensemble(Supernet(space), arch).train().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    t0, seen = None, 0
    for step in range(steps + 3):
        if step == 3:  # warm-up steps excluded
            t0, seen = time.perf_counter(), 0
        idx = torch.randint(0, len(x), (batch_size,))
        xb = x[idx].contiguous(memory_format=torch.channels_last)
        loss = sum(F.cross_entropy(o, y[idx]) for o in net.member_logits(xb))
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += batch_size
    return seen / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--samples", type=int, default=16, help="random ensembles evaluated")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    data = load_dataset("digits", seed=args.seed)
    space = SpaceOptions().build(data)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    arch = sample(space, np.random.default_rng(args.seed))
    print(
        f"digits train={len(x)} val={len(data.x_val)}; space width 0.5 head 256; "
        f"batch {args.batch_size}; torch threads {torch.get_num_threads()}"
    )
    print(
        "| weights | supernet img/s | static img/s | ratio | epochs | train s | "
        "random val acc mean | max |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for weights in ("entangled", "separate"):
        torch.manual_seed(args.seed)
        net = Supernet(space, weights=weights)
        cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
        t0 = time.perf_counter()
        net, state = train_supernet(net, x, y, config=cfg, show_progress=False)
        seconds = time.perf_counter() - t0
        super_rate = float(np.median([h["images_per_s"] for h in state.history]))
        static_rate = static_images_per_s(space, arch, x, y, batch_size=args.batch_size, steps=30)
        acc = random_ensemble_accuracy(
            net, data, n=args.samples, seed=args.seed, device=torch.device("cpu")
        )
        print(
            f"| {weights} | {super_rate:.0f} | {static_rate:.0f} | "
            f"{super_rate / static_rate:.2f} | {args.epochs} | {seconds:.0f} | "
            f"{acc['random_val_accuracy_mean']:.3f} | {acc['random_val_accuracy_max']:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Are the supernet's members as diverse as the same ensembles trained from scratch? (Wave 2, 2/5)

For each dataset and weight mode (entangled, separate, members): train a supernet with the same
data, epochs and seed (no shrinking, so every mode sees the same space); sample N random
ensembles and score them with inherited weights (BN recalibrated per ensemble): mean pairwise
member disagreement, ensemble gain (ensemble accuracy minus mean member accuracy), validation
accuracy. Then train the first M of those ensembles from scratch for the same number of epochs
(``neas.ranking``'s stand-alone training, cached by architecture and shared by the modes) and
score them the same way. Prints a table, writes RESULTS.md and ``results/diversity.json``.

    nice -n 10 python benchmarks/diversity.py [--datasets digits fashion-mnist] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import numpy as np
import torch
from _results import write_json, write_section

from neas.config import SpaceOptions, TrainConfig
from neas.data import Dataset, load_dataset
from neas.evaluate import EnsembleMetrics, calibration_images, evaluate_arch
from neas.job_space import build_space
from neas.nn import Supernet
from neas.ranking import sample_archs, standalone_metrics
from neas.training import train_supernet

MODES = ("entangled", "separate", "members")


def gain(m: EnsembleMetrics) -> float:
    return m.accuracy - float(np.mean(m.member_accuracy))


def load(name: str, args) -> Dataset:
    cap = args.fashion_train if name == "fashion-mnist" else None
    ds = load_dataset(name, seed=args.seed, max_train=cap)
    return replace(ds, x_val=ds.x_val[: args.max_val], y_val=ds.y_val[: args.max_val])


def run(name: str, args, cache: dict) -> list[dict]:
    ds = load(name, args)
    space = SpaceOptions(width_mult=args.width, head_width=args.head, feature_width=args.head)
    space = build_space(space, ds)
    epochs = args.fashion_epochs if name == "fashion-mnist" else args.epochs
    cfg = TrainConfig(epochs=epochs, batch_size=args.batch_size, seed=args.seed)
    archs = sample_archs(space, args.samples, seed=args.seed)
    x, y = torch.from_numpy(ds.x_train), torch.from_numpy(ds.y_train)
    calib, xv, yv = calibration_images(ds), torch.from_numpy(ds.x_val), ds.y_val
    key = (name, epochs)
    if key not in cache:  # from scratch: the same ensembles for every mode
        cache[key] = standalone_metrics(
            space, archs[: args.scratch], ds, config=cfg, seed=args.seed, show_progress=False
        )
    scratch = [m for m, _ in cache[key]]
    rows = []
    for mode in MODES:
        torch.manual_seed(args.seed)
        t0 = time.perf_counter()
        net, state = train_supernet(
            Supernet(space, weights=mode), x, y, config=cfg, show_progress=False
        )
        seconds = time.perf_counter() - t0
        est = [evaluate_arch(net, a, x_calib=calib, x=xv, y=yv) for a in archs]
        rows.append(
            {
                "data": name,
                "weights": mode,
                "disagreement_supernet": float(np.mean([m.disagreement for m in est])),
                "disagreement_supernet_same": float(
                    np.mean([m.disagreement for m in est[: args.scratch]])
                ),
                "disagreement_scratch": float(np.mean([m.disagreement for m in scratch])),
                "ensemble_gain_supernet": float(np.mean([gain(m) for m in est])),
                "ensemble_gain_scratch": float(np.mean([gain(m) for m in scratch])),
                "val_accuracy_mean": float(np.mean([m.accuracy for m in est])),
                "val_accuracy_scratch_mean": float(np.mean([m.accuracy for m in scratch])),
                "images_per_s": float(np.mean([h["images_per_s"] for h in state.history])),
                "train_seconds": seconds,
                "supernet_params": sum(p.numel() for p in net.parameters()),
                "epochs": epochs,
                "train_images": len(ds.x_train),
                "samples": args.samples,
                "scratch_samples": args.scratch,
            }
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["digits", "fashion-mnist"])
    p.add_argument("--epochs", type=int, default=12, help="digits supernet and scratch epochs")
    p.add_argument("--fashion-epochs", type=int, default=6)
    p.add_argument("--fashion-train", type=int, default=3000)
    p.add_argument("--max-val", type=int, default=1000)
    p.add_argument("--samples", type=int, default=16, help="random ensembles per supernet")
    p.add_argument("--scratch", type=int, default=4, help="of those, trained from scratch")
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--head", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    t0, cache, rows = time.perf_counter(), {}, []
    for name in args.datasets:
        rows += run(name, args, cache)
    lines = [
        "",
        f"Command: `python benchmarks/diversity.py {' '.join(sys.argv[1:])}` (torch "
        f"{torch.__version__}, {args.threads} thread(s), 2-core CPU; total "
        f"{time.perf_counter() - t0:.0f} s). No shrinking; the same epochs for every mode; "
        f"{args.samples} random ensembles per supernet, the first {args.scratch} also trained "
        "from scratch for the same epochs. Disagreement: mean pairwise fraction of val images "
        "whose member argmax differs; gain: ensemble accuracy minus mean member accuracy.",
        "",
        "| data | weights | disagreement supernet (same ensembles) | disagreement scratch | "
        "gain supernet | gain scratch | val acc supernet | val acc scratch | img/s | train s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['data']} | {r['weights']} | {100 * r['disagreement_supernet']:.1f}% "
            f"({100 * r['disagreement_supernet_same']:.1f}%) | "
            f"{100 * r['disagreement_scratch']:.1f}% | {100 * r['ensemble_gain_supernet']:+.1f} | "
            f"{100 * r['ensemble_gain_scratch']:+.1f} | {100 * r['val_accuracy_mean']:.1f}% | "
            f"{100 * r['val_accuracy_scratch_mean']:.1f}% | {r['images_per_s']:.0f} | "
            f"{r['train_seconds']:.0f} |"
        )
    print("\n".join(lines))
    write_section("## Member diversity by weight mode (Wave 2, 2/5)", lines)
    write_json("diversity.json", rows)


if __name__ == "__main__":
    main()

"""NEASClassifier with default settings on digits images: fit wall time and test accuracy.

Digits as a user holds them (N x 8 x 8 pixels, 0..16), one stratified 70/30 split; the
classifier's defaults are the main job's (20 supernet epochs with shrinking, NSGA-II with 96
proposals, 600M MACs). The reference workload ``../shared/tools/ref_workload.py`` runs first
with the same thread count, so the wall time can be compared across machines as a ratio.

    python benchmarks/estimator_digits.py [--threads 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from _results import write_json, write_section
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from neas import NEASClassifier

REF = Path(__file__).resolve().parents[2] / "shared" / "tools" / "ref_workload.py"


def reference_seconds(threads: int) -> float | None:
    if not REF.is_file():
        return None
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, str(REF)], capture_output=True, text=True, env=env)
    return float(out.stdout.split()[-1]) if out.returncode == 0 else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    ref = reference_seconds(args.threads)
    d = load_digits()
    Xtr, Xte, ytr, yte = train_test_split(
        d.images, d.target, test_size=0.3, random_state=args.seed, stratify=d.target
    )
    t0 = time.perf_counter()
    clf = NEASClassifier(random_state=args.seed, threads=args.threads).fit(Xtr, ytr)
    wall = time.perf_counter() - t0
    acc = float(clf.score(Xte, yte))
    chosen = clf.pareto_front_.set_index("id").loc[clf.ensemble_id_]
    ratio = f"{wall / ref:.0f}x the reference workload ({ref:.1f} s)" if ref else "no reference"
    lines = [
        "",
        f"Command: `python benchmarks/estimator_digits.py {' '.join(sys.argv[1:])}` (torch "
        f"{torch.__version__}, {args.threads} thread(s)). `NEASClassifier()` defaults, "
        f"{len(Xtr)} training / {len(Xte)} test images.",
        "",
        "| fit wall time | vs reference | test accuracy | chosen ensemble MACs | K |",
        "|---|---|---|---|---|",
        f"| {wall:.0f} s | {ratio} | {100 * acc:.2f}% | {chosen['macs'] / 1e6:.2f}M | "
        f"{int(chosen['members'])} |",
    ]
    print("\n".join(lines))
    write_section("## NEASClassifier on digits (default settings)", lines)
    write_json(
        "estimator_digits.json",
        {
            "fit_s": wall,
            "reference_s": ref,
            "test_accuracy": acc,
            "macs": int(chosen["macs"]),
            "threads": args.threads,
            "seed": args.seed,
        },  # fmt: skip
    )


if __name__ == "__main__":
    main()

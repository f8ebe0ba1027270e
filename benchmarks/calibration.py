"""How many training images BN recalibration needs to rank the search's ensembles.

Scoring an ensemble on the supernet first re-estimates its BN statistics on ``n`` training
images (``neas.evaluate.recalibrate_bn``; the search's ``calibration_images``); on digits that
forward pass is about two thirds of a scoring and a third of the main job's search. Fewer
images are cheaper and noisier. This script takes the main job's runs (``neas search --space
mbconv --budget 600M --seed S``, run here into ``--work`` unless already there), re-scores
every ensemble its search scored with BN recalibrated on ``n`` images (the same seeded subset
rule as the search: ``calibration_images(dataset, n=n, seed=S)``) and on **every** training
image (the reference), and without calibration: the validation split in one batch under its
own statistics (``neas.evaluate.own_statistics_logits``; what the search does when that split
holds images and no more than the calibration subset, as on digits). It reports per ``n``:

- Kendall tau of the validation accuracy (NLL breaking ties, as the search ranks) against the
  reference's validation ranking, and against the reference's *test* accuracy;
- the test accuracy (reference calibration) of the ensemble each ``n`` would pick (best
  validation accuracy, then NLL), and its rank among them;
- seconds per scoring (recalibration + validation pass, or the one pass), one process,
  ``--threads`` threads.

Writes the "BN recalibration images" section of RESULTS.md and ``results/calibration.json``.

    python benchmarks/calibration.py --seeds 0,1,2 --work /tmp/calib
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _results import HERE, neas_command, write_json, write_section
from scipy.stats import kendalltau

from neas.config import CALIBRATION_IMAGES
from neas.evaluate import (
    calibration_images,
    ensemble_metrics,
    member_logits,
    own_statistics_logits,
    recalibrate_bn,
)
from neas.run import open_trained
from neas.search_spaces.arch import EnsembleArch

#: the row of scores without calibration (``neas.evaluate.own_statistics_logits``)
OWN = "val (one batch)"


def ensure_run(work: Path, seed: int) -> Path:
    out = work / f"s{seed}"
    if not (out / "search" / "history.csv").is_file():
        cmd = neas_command("search", "--space", "mbconv", "--budget", "600M")
        subprocess.run([*cmd, "--seed", str(seed), "--out", str(out), "--force"], check=True)
    return out


def order(acc: np.ndarray, nll: np.ndarray) -> np.ndarray:
    """Ranks (0 = best) by accuracy, then lower NLL: how the search picks its best."""
    return np.lexsort((nll, -acc)).argsort()


def score_seed(run_dir: Path, seed: int, images: list[int], device: str) -> list[dict]:
    run = open_trained(run_dir, device=device)
    ds, net = run.dataset, run.supernet
    hist = pd.read_csv(run_dir / "search" / "history.csv")
    archs = [EnsembleArch.from_json(a, net.space) for a in dict.fromkeys(hist["arch"])]
    x_val, y_val = torch.from_numpy(ds.x_val), torch.from_numpy(ds.y_val)
    x_test, y_test = torch.from_numpy(ds.x_test), torch.from_numpy(ds.y_test)
    n_all = len(ds.x_train)
    sets = {n: calibration_images(ds, n=min(n, n_all), seed=seed) for n in images}
    sets[n_all] = torch.from_numpy(ds.x_train)
    sets[OWN] = x_val  # no calibration: the validation split in one batch, its own statistics
    val = {n: [] for n in sets}
    seconds = {n: 0.0 for n in sets}
    test = []
    for arch in archs:
        for n, xc in sets.items():
            t0 = time.perf_counter()
            if n == OWN:
                logits = own_statistics_logits(net, arch, x_val, device=device)
            else:
                recalibrate_bn(net, arch, xc, device=device)
                logits = member_logits(net, arch, x_val, device=device)
            m = ensemble_metrics(logits, y_val)
            seconds[n] += time.perf_counter() - t0
            val[n].append((m.accuracy, m.nll))
            if n == n_all:  # BN statistics of every training image are still in place
                test.append(
                    ensemble_metrics(
                        member_logits(net, arch, x_test, device=device), y_test
                    ).accuracy
                )
    test_arr = np.asarray(test)
    ref_acc, ref_nll = (np.asarray(v) for v in zip(*val[n_all]))
    ref_rank = order(ref_acc, ref_nll)
    test_rank = (-test_arr).argsort().argsort()
    rows = []
    for n in sets:
        acc, nll = (np.asarray(v) for v in zip(*val[n]))
        rank = order(acc, nll)
        pick = int(rank.argmin())
        rows.append(
            {
                "seed": seed,
                "images": {n_all: "all", OWN: OWN}.get(n, n),
                "calibration_images": 0 if n == OWN else n,
                "ensembles": len(archs),
                "tau_vs_all_val": float(kendalltau(rank, ref_rank).statistic),
                "tau_vs_test": float(kendalltau(rank, test_rank).statistic),
                "pick_test_accuracy": float(test_arr[pick]),
                "pick_test_rank": int((test_arr > test_arr[pick]).sum()) + 1,
                "best_test_accuracy": float(test_arr.max()),
                "seconds_per_scoring": seconds[n] / len(archs),
            }
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--images", default=f"128,256,384,{CALIBRATION_IMAGES}")
    p.add_argument(
        "--work", type=Path, help="run folders (made if missing); needed but with --report"
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--report", action="store_true", help="only rebuild the RESULTS.md section")
    args = p.parse_args()
    if args.report:
        report()
        return
    if args.work is None:
        p.error("--work is required (but with --report)")
    torch.set_num_threads(args.threads)
    images = [int(n) for n in args.images.split(",")]
    rows = []
    for seed in map(int, args.seeds.split(",")):
        run_dir = ensure_run(args.work, seed)
        for row in score_seed(run_dir, seed, images, "cpu"):
            rows.append(row)
            print(json.dumps(row), flush=True)
    saved = {"command": command(args), "torch": torch.__version__, "rows": rows}
    write_json("calibration.json", saved)
    report()


def command(args: argparse.Namespace) -> str:
    return (
        f"python benchmarks/calibration.py --seeds {args.seeds} --images {args.images} "
        f"--threads {args.threads} --work DIR"
    )


def report() -> None:
    """The RESULTS.md section, from ``results/calibration.json``."""
    saved = json.loads((HERE / "results" / "calibration.json").read_text())
    table = pd.DataFrame(saved["rows"])
    lines = [
        "",
        f"Command: `{saved['command']}` (torch {saved['torch']}). The runs are the main "
        "job's (`neas search --space mbconv --budget 600M "
        "--seed S`, digits); every ensemble its search scored is scored again with BN "
        "recalibrated on n training images (the search's seeded subset) and on all of them "
        "(`all`, the reference). tau: Kendall tau of the validation ranking (accuracy, then NLL) "
        "against the reference's validation ranking / against the test accuracy under the "
        "reference calibration. pick: the test accuracy (reference calibration) of the ensemble "
        "each n ranks first, and its place by test accuracy among the ensembles (1 = best). "
        f"`{OWN}`: no calibration, the validation split scored in one batch under its own BN "
        "statistics (`neas.evaluate.own_statistics_logits`: how the search scores when the "
        "validation split holds images and no more than the calibration subset). Means over "
        "the seeds.",
        "",
        "| images | seeds | ensembles | tau vs all (val) | tau vs test | pick test acc | pick's "
        "test place | best test acc | s per scoring |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for images_, g in table.groupby("calibration_images", sort=True):
        label = g["images"].iloc[0]
        lines.append(
            f"| {label if label != 'all' else f'all ({images_})'} | {len(g)} | "
            f"{g['ensembles'].mean():.0f} | "
            f"{g['tau_vs_all_val'].mean():.2f} | {g['tau_vs_test'].mean():.2f} | "
            f"{100 * g['pick_test_accuracy'].mean():.2f}% | "
            f"{statistics.mean(g['pick_test_rank']):.1f} | "
            f"{100 * g['best_test_accuracy'].mean():.2f}% | "
            f"{g['seconds_per_scoring'].mean():.3f} |"
        )
    write_section("## BN recalibration images (digits main job)", lines)


if __name__ == "__main__":
    main()

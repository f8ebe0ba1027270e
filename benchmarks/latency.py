"""How well the latency lookup table predicts a whole ensemble's measured latency.

For each dataset, the main job's search space (default ``SpaceOptions``) is timed block by
block (``measure_latency_table``, batch 1 and 64, torch on the CPU), calibrated on 10 random
whole ensembles (``scale * sum + call_ms * calls + offset``), then checked on ``--samples``
*other* random ensembles (fresh weights; latency does not depend on them): mean absolute
percentage error of the raw block sum and of the calibrated prediction against the measured
median latency of each whole static ensemble. Writes the "Latency predictor" section of
RESULTS.md and ``results/latency.json``.

    python benchmarks/latency.py --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from _results import write_json, write_section

from neas.config import SpaceOptions
from neas.data import load_dataset
from neas.job_space import build_space
from neas.nn.builder import static_ensemble
from neas.predictors.latency import measure_latency_table, time_module
from neas.search_spaces import sample


def mape(pred: list[float], measured: list[float]) -> float:
    p, m = np.asarray(pred), np.asarray(measured)
    return float(100.0 * np.mean(np.abs(p - m) / m))


def run(name: str, batch: int, args) -> dict:
    ds = load_dataset(name, max_train=2000, seed=0)
    space = build_space(SpaceOptions(), ds)
    t0 = time.perf_counter()
    table = measure_latency_table(space, batch=batch, show_progress=False)
    table_s = time.perf_counter() - t0
    rng = np.random.default_rng([args.seed, 77])  # not the calibration's draws
    x = torch.randn(batch, space.in_channels, space.image_size, space.image_size)
    if batch > 1:
        x = x.contiguous(memory_format=torch.channels_last)
    raw, calibrated, measured = [], [], []
    torch.manual_seed(args.seed)
    for _ in range(args.samples):
        arch = sample(space, rng)
        net = static_ensemble(space, arch)
        if batch > 1:
            net = net.to(memory_format=torch.channels_last)
        measured.append(time_module(net, x, warmup=5, repeats=30))
        raw.append(table.block_sum_ms(arch))
        calibrated.append(table.predict(arch))
    row = {
        "data": name,
        "batch": batch,
        "samples": args.samples,
        "mape_raw": round(mape(raw, measured), 2),
        "mape_calibrated": round(mape(calibrated, measured), 2),
        "scale": table.scale,
        "call_ms": table.call_ms,
        "offset_ms": table.offset_ms,
        "measured_ms_median": round(float(np.median(measured)), 3),
        "table_seconds": round(table_s, 1),
    }
    print(row, flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--datasets", default="digits,fashion-mnist")
    p.add_argument("--batches", default="1,64")
    p.add_argument("--samples", type=int, default=20, help="held-out ensembles per table")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    rows = [
        run(name, int(b), args)
        for name in args.datasets.split(",")
        for b in args.batches.split(",")
    ]
    total = time.perf_counter() - t0
    command = " ".join(["python benchmarks/latency.py", *sys.argv[1:]])
    write_json("latency.json", {"command": command, "torch_threads": args.threads, "rows": rows})
    lines = [
        "",
        f"Command: `{command}` ({total / 60:.1f} min, {args.threads} torch thread(s), the shared "
        "2-core CPU machine; other jobs were running, which adds noise to every timing).",
        "",
        "Main-job search space per dataset, torch on the CPU. Raw: the table's sum of blocks timed "
        "alone. Calibrated: `scale * sum + call_ms * calls + offset` (calls: stem, non-skip "
        "blocks, heads), non-negative least squares on 10 random whole ensembles; both checked "
        f"on {args.samples} other random ensembles.",
        "",
        "| data | batch | MAPE raw (%) | MAPE calibrated (%) | scale | per call (ms) | offset (ms) "
        "| median measured (ms) |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['data']} | {r['batch']} | {r['mape_raw']:.1f} | {r['mape_calibrated']:.1f} | "
            f"{r['scale']:.3f} | {r['call_ms']:.4f} | {r['offset_ms']:.3f} | "
            f"{r['measured_ms_median']:.2f} |"
            for r in rows
        ),
        "",
    ]
    write_section("## Latency predictor", lines)


if __name__ == "__main__":
    main()

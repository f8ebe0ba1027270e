"""The main job's wall time against a fixed plain-torch reference workload, on this machine.

Seconds do not compare across machines (one ran 10x slower than another), so the reference
workload (``../shared/tools/ref_workload.py``, 40 training steps of a small CNN) is run just
before and just after the job (``--ref-runs`` times each, the median of each side), at the
thread count the job used, and the job's wall time is divided by the mean of the two. The
job is the README's: ``neas search --space mbconv --budget 600M`` on the built-in digits,
default settings (``--threads auto``), one seed per run. Also reported: the thread count
``auto`` chose, the test accuracy of the search's best-validation ensemble, and of the
ensemble the user gets (``load_run(...).best()``: after final training). Writes the
"Main job vs reference workload" section of RESULTS.md and ``results/main_job.json``.

    python benchmarks/main_job.py --seeds 0
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from _results import HERE, neas_command, write_json, write_section

from neas import load_run

REF = HERE.parent.parent / "shared" / "tools" / "ref_workload.py"


def ref_seconds(threads: int, runs: int = 1) -> float:
    """The reference workload's seconds at ``threads``: the median of ``runs`` runs, each in a
    process of its own (one run on a shared machine can catch a burst of someone else's work)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, str(REF)], env=env, capture_output=True, text=True, check=True
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def run_job(seed: int, out: Path, extra: list[str]) -> tuple[float, str]:
    cmd = neas_command("search", "--space", "mbconv", "--budget", "600M")
    cmd += ["--seed", str(seed), "--out", str(out), *extra]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"the main job failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall, done.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", default="0", help="comma-separated seeds, one job each")
    p.add_argument(
        "--passes",
        type=int,
        default=1,
        help="run every seed this many times, pass after pass (the ratio's spread on a shared "
        "machine)",
    )
    p.add_argument(
        "--job-args", default="", help="options added to the job, as --job-args='--final-epochs 4'"
    )
    p.add_argument(
        "--ref-runs",
        type=int,
        default=3,
        help="reference runs before and after each job (the median of each side is taken)",
    )
    args = p.parse_args()
    if args.ref_runs < 1:
        p.error("--ref-runs must be at least 1")
    if not REF.exists():
        sys.exit(f"reference workload not found at {REF}")
    rows = []
    seeds = [int(s) for s in args.seeds.split(",")]
    for pass_, seed in ((p_, s) for p_ in range(1, args.passes + 1) for s in seeds):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            load = os.getloadavg()[0]  # what else the machine was running, before the job
            ref_before = {n: ref_seconds(n, args.ref_runs) for n in (1, 2)}
            wall, stdout = run_job(seed, out, shlex.split(args.job_args))
            summary = json.loads((out / "train_summary.json").read_text())
            threads = int(summary["torch_threads"])
            ref_after = ref_seconds(threads, args.ref_runs)
            ref = (ref_before[threads] + ref_after) / 2
            search = json.loads((out / "search" / "summary.json").read_text())
            best = load_run(out).best()  # what the user gets: after final training if any
            final = best.get("final_test_accuracy", float("nan"))
            chose = next((x for x in stdout.splitlines() if x.startswith("threads: auto")), "")
            rows.append(
                {
                    "pass": pass_,
                    "seed": seed,
                    "wall_s": round(wall, 1),
                    "torch_threads": threads,
                    "load_before": round(load, 2),
                    "auto_line": chose,
                    "ref_s_1_thread": round(ref_before[1], 2),
                    "ref_s_2_threads": round(ref_before[2], 2),
                    "ref_s_same_threads": round(ref, 2),
                    "ratio": round(wall / ref, 1),
                    "train_s": round(summary["train_seconds"], 1),
                    "search_s": round(search["seconds"], 1),
                    "test_accuracy_of_best_val": search["test_accuracy_of_best_val"],
                    "split_of_best": int(best["split"]),
                    "test_accuracy_exported": float(
                        best["test_accuracy"] if pd.isna(final) else final
                    ),
                }
            )
            print(rows[-1], flush=True)
    command = " ".join(["python benchmarks/main_job.py", *sys.argv[1:]])
    write_json("main_job.json", {"command": command, "rows": rows})
    extra = f", plus `{args.job_args}`" if args.job_args else ""
    lines = [
        "",
        f"Command: `{command}`. The job: `neas search --space mbconv --budget 600M --seed S` "
        f"(digits, every default, `--threads auto`{extra}). "
        "Reference: `../shared/tools/ref_workload.py` "
        f"at the thread count the job chose: the mean of the median of {args.ref_runs} run(s) "
        "just before and of as many just after the job. "
        f"Load average before each job (other work on the {os.cpu_count()}-core machine): "
        + ", ".join(f"{r['load_before']:.2f}" for r in rows)
        + ". The ratio is what compares across machines and days.",
        "",
        "| pass | seed | threads (auto) | job s | train s | search s | reference s | job / "
        "reference | test acc of best-val ensemble (search) | exported best, its split, its "
        "test acc |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {r.get('pass', 1)} | {r['seed']} | {r['torch_threads']} | {r['wall_s']:.0f} | "
            f"{r['train_s']:.0f} | "
            f"{r['search_s']:.0f} | {r['ref_s_same_threads']:.2f} | **{r['ratio']:.0f}x** | "
            f"{100 * r['test_accuracy_of_best_val']:.2f}% | split {r['split_of_best']}: "
            f"{100 * r['test_accuracy_exported']:.2f}% |"
            for r in rows
        ),
        "",
        *summary_lines(rows),
        "`auto` printed: " + "; ".join(f"`{r['auto_line']}`" for r in rows),
        "",
    ]
    write_section("## Main job vs reference workload", lines)


def summary_lines(rows: list[dict]) -> list[str]:
    """Per pass: the ratio's range and mean, and the mean test accuracy the user gets."""
    out = []
    for pass_ in sorted({r.get("pass", 1) for r in rows}):
        rs = [r for r in rows if r.get("pass", 1) == pass_]
        ratios = [r["ratio"] for r in rs]
        acc = sum(r["test_accuracy_exported"] for r in rs) / len(rs)
        refs = [r["ref_s_same_threads"] for r in rs]
        out.append(
            f"Pass {pass_}: job / reference {min(ratios):.0f}-{max(ratios):.0f}x (mean "
            f"{sum(ratios) / len(ratios):.0f}x), reference {min(refs):.2f}-{max(refs):.2f} s; "
            "exported best's test accuracy, "
            f"mean of the seeds: {100 * acc:.2f}%."
        )
    return [*out, ""] if out else []


if __name__ == "__main__":
    main()

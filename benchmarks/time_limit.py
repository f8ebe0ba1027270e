"""Accuracy against wall-clock: neas under ``--time-limit`` beside what the same minutes buy
otherwise (issue 17).

Fashion-MNIST, official split (55,000 train / 5,000 val held out of it / 10,000 test), at most
11.5M MACs per ensemble, one torch thread. For each limit L (minutes) and seed:

- ``neas``: ``neas search --data fashion-mnist --val-fraction 0.0833 --budget 11.5M
  --time-limit L --threads 1 --no-latency --seed S``, run through the CLI as a user runs it;
  its answer is the best-validation ensemble, final-trained by the final stage, read back from
  its exported ``model.pt``;
- ``single_nas``: the same command with ``--ensemble-size 1`` (one network under the budget);
- ``deep_ensemble``: two networks of half the budget each, trained from scratch apart (own
  seeds, the supernet's recipe: AdamW, warm-up + cosine, label smoothing, shifts), one after
  the other, each for a window of what is left of L, its cosine annealed by that window's clock
  and its training ended by it (as neas's final stage trains), probabilities averaged. (Rows
  before 2026-12-03 planned the epochs once from one timed step and could overrun.) The net is
  hand-picked from the same space by a fixed rule, no search: every layer the cheapest op
  (k3, expand 4), then the layers whose removal saves most skipped until it fits the half budget;
- ``hist_gradient_boosting``: scikit-learn's defaults on the pixels, once per seed (it takes
  the time it takes; ``limit_s`` is empty).

Wall time is measured around each method (neas: the whole process, start-up included);
``overrun_s`` is how far it went past L. Rows (``results/time_limit.json``): limit_s, method,
seed, test_accuracy, nll, macs, wall_s, overrun_s. Writes the "Time limit" section of
RESULTS.md and ``results/time_limit.png`` (test accuracy against wall-clock, one line per
method). The reference workload (``../shared/tools/ref_workload.py``, one thread) is timed
before and after, so the seconds can be compared across machines.

    python benchmarks/time_limit.py --limits 10,20 --seeds 0   # about 1.6 h on one CPU core
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from neas.config import DataOptions, SpaceOptions, TrainConfig
from neas.cost import CostTable
from neas.data import Dataset, load_data
from neas.deploy import load_ensemble
from neas.deploy.export import select_rows
from neas.evaluate import ensemble_logits, ensemble_metrics
from neas.job_space import build_space
from neas.ranking import fresh_ensemble
from neas.run import read_pareto
from neas.search_spaces import EnsembleArch, SearchSpace
from neas.search_spaces.spec import SKIP
from neas.time_limit import plan_final_epochs
from neas.training.loop import ensemble_loss, fit, make_optimizer, seeded_rng

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import HERE, neas_command, write_json, write_section  # noqa: E402

REF = HERE.parent.parent / "shared" / "tools" / "ref_workload.py"
BUDGET = "11.5M"
VAL_FRACTION = "0.0833"
METHODS = ("neas", "single_nas", "deep_ensemble", "hist_gradient_boosting")


def ref_seconds() -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(REF)], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def git_commit() -> str:
    """The commit the measured code is at (``+`` when the tree had changes), or ``?``."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=HERE).stdout

    head = git("rev-parse", "--short", "HEAD").strip() or "?"
    return head + ("+" if git("status", "--porcelain", "--untracked-files=no") else "")


def scores(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    p = torch.from_numpy(np.asarray(probs, dtype=np.float64))
    m = ensemble_metrics(p.clamp_min(1e-12).log()[None].float(), y)
    return {"test_accuracy": m.accuracy, "nll": m.nll}


def neas_job(limit_s: float, seed: int, work: Path, extra: list[str], ds: Dataset) -> dict:
    out = work / f"neas-{'-'.join(extra) or 'k2'}-{int(limit_s)}-{seed}"
    cmd = neas_command("search", "--data", "fashion-mnist")
    cmd += ["--val-fraction", VAL_FRACTION, "--budget", BUDGET, "--time-limit", f"{limit_s}s"]
    cmd += ["--threads", "1", "--no-latency", "--seed", str(seed), "--out", str(out), *extra]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"neas failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    best = str(select_rows(read_pareto(out), "best")["id"].iloc[0])
    model = load_ensemble(out / "ensembles" / best / "model.pt")
    probs = model.predict_proba(ds.x_test)
    record = json.loads((out / "time_limit.json").read_text())
    manifest = json.loads((out / "ensembles" / best / "manifest.json").read_text())
    return {
        **scores(probs, ds.y_test),
        "macs": int(manifest["macs"]),
        "wall_s": wall,
        "members": int(manifest["members"]),
        "split": int(manifest["split"]),
        "stages": {
            k: {
                "allowance_s": round(v.get("allowance_s", 0.0), 1),
                "seconds": round(v.get("seconds", 0.0), 1),
                **(v.get("planned") or {}),
            }
            for k, v in record["stages"].items()
        },
        "supernet_epochs": record["stages"]["train"].get("epochs"),
        "final_epochs": (manifest.get("final") or {}).get("epochs_trained", 0),
    }


def half_budget_network(space: SearchSpace, budget: int) -> EnsembleArch:
    """One network of the space under ``budget`` MACs, by the rule in the module doc."""
    table, n = CostTable.from_space(space), space.num_layers
    cheapest = min(
        (o for o in range(len(space.ops)) if all(o in la.candidates for la in space.layers)),
        key=lambda o: (space.ops[o].expand, space.ops[o].kernel),
    )
    ops = [cheapest] * n

    def macs(o: list[int]) -> int:
        return table.ensemble(EnsembleArch(split=n, shared=tuple(o), members=((),))).macs

    while macs(ops) > budget:
        options = [
            i for i, la in enumerate(space.layers) if ops[i] != SKIP and SKIP in la.candidates
        ]
        if not options:
            sys.exit(f"no network of the space fits {budget:,} MACs")
        best = min(options, key=lambda i: macs(ops[:i] + [SKIP] + ops[i + 1 :]))
        ops[best] = SKIP
    return EnsembleArch(split=n, shared=tuple(ops), members=((),))


def step_seconds(net, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> float:
    """Seconds of one training step of ``net`` (a copy is trained; three timed after one)."""
    import copy

    probe = copy.deepcopy(net).train().to(memory_format=torch.channels_last)
    opt = make_optimizer(probe, cfg)
    xb = x[: cfg.batch_size].contiguous(memory_format=torch.channels_last)
    yb = y[: cfg.batch_size]
    times = []
    for _ in range(4):
        t0 = time.perf_counter()
        loss = sum(F.cross_entropy(t.float(), yb) for t in probe.member_logits(xb))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def deep_ensemble(limit_s: float, seed: int) -> dict[str, Any]:
    """Two half-budget networks trained one after the other, each for a window of the time
    left (the first half of it, the second the rest, less the test scoring), its learning rate
    annealed by that window's clock and its training ended by it, as neas's final stage is
    (``fit(time_share=...)``); epochs planned from one timed step by neas's rule
    (``plan_final_epochs``: one more than the estimate fills, so the clock ends training)."""
    t0 = time.perf_counter()
    ds = load_data(DataOptions(source="fashion-mnist", val_fraction=float(VAL_FRACTION)))
    space = build_space(SpaceOptions(), ds)
    from neas.budget import parse_budget

    arch = half_budget_network(space, parse_budget(BUDGET) // 2)
    x, y = torch.from_numpy(ds.x_train), torch.from_numpy(ds.y_train).long()
    base = TrainConfig(seed=seed).settled(rows=len(ds.y_train), table=False)
    nets = [fresh_ensemble(space, arch, seed=1000 * seed + i + 1) for i in range(2)]
    steps = len(x) // base.batch_size
    epoch_s = step_seconds(nets[0], x, y, base) * steps
    scoring_s = 10.0  # the test predictions at the end
    deadline = t0 + limit_s - scoring_s
    trained, epochs = [], []
    for i, net in enumerate(nets):
        start = time.perf_counter()
        end = start + (deadline - start) / (len(nets) - i)
        # the window's epochs as neas's final stage plans them (one more than the estimate)
        cfg = replace(base, epochs=max(1, plan_final_epochs(end - start, epoch_s=epoch_s)))
        member_seed = 1000 * seed + i + 1
        with seeded_rng(member_seed):
            net, _, state = fit(
                net,
                x,
                y,
                config=cfg,
                loss_fn=ensemble_loss(cfg),
                seed=member_seed,
                show_progress=False,
                time_share=lambda s=start, e=end: (time.perf_counter() - s) / (e - s),
            )
        trained.append(net)
        epochs.append(len(state.history))
    logits = torch.cat([ensemble_logits(n, ds.x_test) for n in trained])  # (2, N, C)
    probs = logits.softmax(-1).mean(0).numpy()
    wall = time.perf_counter() - t0
    macs = 2 * CostTable.from_space(space).ensemble(arch).macs
    return {
        **scores(probs, ds.y_test),
        "macs": int(macs),
        "wall_s": wall,
        "members": 2,
        "epochs": epochs,
        "epoch_s_planned": epoch_s,
    }


def hist_gradient_boosting(seed: int) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    t0 = time.perf_counter()
    ds = load_data(DataOptions(source="fashion-mnist", val_fraction=float(VAL_FRACTION)))
    flat = {
        s: getattr(ds, f"x_{s}").reshape(len(getattr(ds, f"x_{s}")), -1) for s in ("train", "test")
    }
    clf = HistGradientBoostingClassifier(random_state=seed).fit(flat["train"], ds.y_train)
    probs = clf.predict_proba(flat["test"])
    return {**scores(probs, ds.y_test), "macs": None, "wall_s": time.perf_counter() - t0}


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    fig = Figure(figsize=(6.4, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for method in METHODS:
        pts = sorted(
            (r["wall_s"] / 60, 100 * r["test_accuracy"]) for r in rows if r["method"] == method
        )
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o", label=method.replace("_", " "))
    ax.set_xlabel("wall-clock (minutes, one thread)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Fashion-MNIST, <= {BUDGET} MACs per ensemble")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| limit | method | seed | test accuracy | NLL | MACs | wall | overrun | notes "
        "| measured |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(
        rows, key=lambda r: (r["limit_s"] or 1e12, METHODS.index(r["method"]), r["seed"])
    ):
        limit = f"{r['limit_s'] / 60:.0f} min" if r["limit_s"] else "none"
        macs = f"{r['macs'] / 1e6:.2f}M" if r["macs"] else "-"
        over = (
            f"{r['overrun_s']:.0f} s ({100 * r['overrun_s'] / r['limit_s']:.1f} %)"
            if r["limit_s"]
            else "-"
        )
        notes = ""
        if r["method"] in ("neas", "single_nas"):
            proposals = r["stages"].get("search", {}).get("evaluations", "?")
            notes = (
                f"supernet {r['supernet_epochs']} epochs, {proposals} proposals, final "
                f"{r['final_epochs']} epochs; K={r['members']}, split {r['split']}"
            )
        elif r["method"] == "deep_ensemble":
            e = r["epochs"]
            notes = (
                f"{' + '.join(map(str, e))} epochs, each member's last cut by its window"
                if isinstance(e, list)
                else f"2 x {e} epochs, planned once"
            )
        lines.append(
            f"| {limit} | {r['method']} | {r['seed']} | {100 * r['test_accuracy']:.2f}% "
            f"| {r['nll']:.3f} | {macs} | {r['wall_s'] / 60:.1f} min | {over} | {notes} "
            f"| {r.get('date', 'not recorded')} {r.get('commit', '')} |"
        )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--limits", default="10,20,40,80", help="minutes, comma-separated")
    p.add_argument("--seeds", default="0")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--work", type=Path, default=None, help="keep the run folders here")
    p.add_argument(
        "--drop-limits",
        default="",
        help="minutes, comma-separated: rows of these limits are removed from the results "
        "(e.g. a smoke run's), then the section is written again without running anything",
    )
    args = p.parse_args()
    if args.drop_limits:
        drop = {60.0 * float(v) for v in args.drop_limits.split(",")}
        saved = json.loads((HERE / "results" / "time_limit.json").read_text())
        saved["rows"] = [r for r in saved["rows"] if r["limit_s"] not in drop]
        report(saved)
        return
    torch.set_num_threads(1)
    methods = [m for m in args.methods.split(",") if m]
    limits = [60.0 * float(v) for v in args.limits.split(",")]
    path = HERE / "results" / "time_limit.json"
    rows: list[dict[str, Any]] = []
    ref_before = ref_seconds()
    work = args.work or Path(tempfile.mkdtemp(prefix="neas-time-limit-"))
    ds = load_data(DataOptions(source="fashion-mnist", val_fraction=float(VAL_FRACTION)))
    measured = {"date": time.strftime("%Y-%m-%d"), "commit": git_commit()}
    for seed in map(int, args.seeds.split(",")):
        if "hist_gradient_boosting" in methods:
            rows.append(
                {
                    "limit_s": None,
                    "method": "hist_gradient_boosting",
                    "seed": seed,
                    **hist_gradient_boosting(seed),
                    "overrun_s": None,
                    **measured,
                }
            )
            print(rows[-1], flush=True)
        for limit in limits:
            for method in methods:
                if method == "hist_gradient_boosting":
                    continue
                if method == "neas":
                    row = neas_job(limit, seed, work, [], ds)
                elif method == "single_nas":
                    row = neas_job(limit, seed, work, ["--ensemble-size", "1"], ds)
                else:
                    row = deep_ensemble(limit, seed)
                rows.append(
                    {
                        "limit_s": limit,
                        "method": method,
                        "seed": seed,
                        **row,
                        "overrun_s": max(0.0, row["wall_s"] - limit),
                        **measured,
                    }
                )
                print({k: v for k, v in rows[-1].items() if k != "stages"}, flush=True)
    ref_after = ref_seconds()
    done = {(r["limit_s"], r["method"], r["seed"]) for r in rows}
    command = " ".join(["python benchmarks/time_limit.py", *sys.argv[1:]])
    ref = {"before_s": round(ref_before, 2), "after_s": round(ref_after, 2)}
    # read at the end, under a lock, so that two runs side by side (e.g. --methods neas and
    # --methods deep_ensemble on two cores) keep each other's rows even if they end together
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = json.loads(path.read_text())["rows"] if path.exists() else []
        rows = [r for r in old if (r["limit_s"], r["method"], r["seed"]) not in done] + rows
        report({"command": command, "reference_workload_1_thread": ref, "rows": rows})


def report(results: dict[str, Any]) -> None:
    """Write the results, the plot and the RESULTS.md section."""
    rows, ref = results["rows"], results["reference_workload_1_thread"]
    write_json("time_limit.json", results)
    plot(rows, HERE / "results" / "time_limit.png")
    lines = [
        "",
        f"Command: `{results['command']}` (its rows; rows of other limits, methods or seeds "
        "from earlier runs are kept). Fashion-MNIST official split, <= 11.5M MACs per "
        "ensemble, one torch thread, on the shared 2-core machine; reference workload "
        f"(1 thread) {ref['before_s']:.2f} s before, {ref['after_s']:.2f} s after. neas and "
        "single-network NAS run `neas search --time-limit L` through the CLI (wall: the whole "
        "process); the deep ensemble trains two half-budget networks of the space, each for "
        "half of what is left of L by the clock; HistGradientBoosting takes its own time.",
        "",
        *table(rows),
        "",
        "![test accuracy against wall-clock](results/time_limit.png)",
        "",
    ]
    write_section("## Time limit: accuracy against wall-clock", lines)


if __name__ == "__main__":
    main()

"""Fashion-MNIST at full scale: neas against what a user would pick instead, at equal MACs.

The official split (55,000 train / 5,000 val held out of the training set / 10,000 test), one
MACs budget per ensemble (11.5M by default: two of the 5.76M-MACs CNNs a user would otherwise
average), side by side in one run per seed:

- ``neas``: ``neas train`` (shrinking) -> ``neas evolve`` -> ``neas export --select best
  --final-epochs F --final-init I``: the best-validation ensemble of the front, trained by the
  final stage (``F`` and ``I`` default to the main job's, ``FINAL_EPOCHS`` and ``FINAL_INIT``);
- ``single_nas``: the same supernet, ``neas evolve --ensemble-size 1`` (K = 1), same number of
  proposals, best by validation, trained by the same final stage;
- ``random_ensemble``: the same supernet, ``neas evolve --strategy random``, same number of
  evaluations, best by validation, trained by the same final stage;
- ``deep_ensemble``: single-network NAS under half the budget on the same supernet (``neas
  evolve --ensemble-size 1``, same number of proposals), its best-validation network trained
  from scratch twice (two seeds, the supernet's recipe, as many epochs as the supernet had plus
  the final stage's: as many passes over the data as neas's members had), probabilities
  averaged: equal MACs (wall time: the two trainings). ``benchmarks/final_training.py`` gives
  it the final stage's epochs instead (the issue's "same final-training epochs");
- ``hist_gradient_boosting``: scikit-learn's HistGradientBoostingClassifier on the pixels.

neas runs through its CLI exactly as a user would; the other methods run in this process with the
thread count ``--threads auto`` chose for the supernet. For each method: test accuracy, NLL, ECE
(15 bins), MACs, ONNX Runtime latency at batch 1 and 64 (one intra-op thread; the deep ensemble's
two graphs run one after another; HistGradientBoosting: scikit-learn's ``predict_proba``, no ONNX)
and wall time (neas, single_nas and random_ensemble each include the one supernet training they
share). Writes the "Fashion-MNIST" section of RESULTS.md and ``results/fashion_mnist.json``.
Each stage keeps a record in ``--work``; a rerun with the same folder reuses finished stages (their
measured times, the deep ensemble's and HistGradientBoosting's rows) and scores the exported
ONNX models again: seeds (or, with ``--methods``, one seed's methods once its supernet is
trained) run as separate processes with one ``--work`` and ``--no-write``, then all of them with
the same ``--work``, which only rescores and writes the results (per seed, and the mean ± std over
seeds).

    python benchmarks/fashion_mnist.py --seeds 0 --threads 1 --work W --no-write   # and 1, 2
    python benchmarks/fashion_mnist.py --seeds 0,1,2 --threads 1 --work W
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from neas.budget import parse_budget
from neas.config import FINAL_EPOCHS, FINAL_INIT, FINAL_INITS, DataOptions
from neas.cost import CostTable
from neas.data import Dataset, load_data
from neas.deploy.onnx_export import INPUT, batch_of, ort_session, time_calls, to_onnx
from neas.device import torch_threads
from neas.evaluate import ensemble_logits, ensemble_metrics
from neas.ranking import fresh_ensemble, train_standalone
from neas.run import open_trained
from neas.search_spaces import EnsembleArch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import neas_command, write_json, write_section  # noqa: E402

HEADING = "## Fashion-MNIST"
DATA = "fashion-mnist"
BATCHES = (1, 64)
#: The methods neas searches for, with the extra ``neas evolve`` options of each; then the others.
SEARCHED = {
    "neas": [],
    "single_nas": ["--ensemble-size", "1"],
    "random_ensemble": ["--strategy", "random"],
}
METHODS = (*SEARCHED, "deep_ensemble", "hist_gradient_boosting")


def neas_cli(*args: str) -> float:
    """Run ``python -m neas ARGS``; its wall time. Exits with its output if it fails."""
    cmd = neas_command(*args)
    print("$ neas " + " ".join(args), flush=True)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"neas {args[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    print(f"  {wall:.0f} s", flush=True)
    return wall


def stage(work: Path, name: str, fn) -> dict[str, Any]:
    """``fn()``'s record, kept in ``work/NAME.json``: a rerun with the same ``--work`` reuses
    every finished stage (its measured times and rows) and redoes only the rest."""
    path = work / f"{name}.json"
    if path.exists():
        print(f"reusing {path}", flush=True)
        return json.loads(path.read_text())
    record = fn()
    path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def metrics(logits: torch.Tensor, y: np.ndarray) -> dict[str, float]:
    m = ensemble_metrics(logits, y)
    return {"test_accuracy": m.accuracy, "nll": m.nll, "ece": m.ece}


def onnx_latency(sessions: list, x: np.ndarray) -> dict[str, float]:
    """Median ms of running every session in turn on a batch of 1 and of 64 real images."""
    out = {}
    for b in BATCHES:
        feed = {INPUT: batch_of(x, b)}
        (t,) = time_calls([lambda f=feed: [s.run(None, f) for s in sessions]], budget_s=0.5)
        out[f"latency_ms_b{b}"] = t["median_ms"]
    return out


def evolve_copy(run: Path, extra: list[str], *, budget: str, trained: Path, args) -> float:
    """``neas evolve`` on a fresh copy of the trained run at ``run``; its wall time."""
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(trained, run, ignore=shutil.ignore_patterns("search", "ensembles"))
    return neas_cli(
        "evolve", str(run), "--budget", budget, "--evaluations", str(args.evaluations),
        "--population", str(args.population), "--no-latency", "--threads",
        str(args.threads_used), "--seed", str(args.seed), *extra,
    )  # fmt: skip


def searched(
    name: str, extra: list[str], *, trained: Path, work: Path, args, train_s: float
) -> dict[str, Any]:
    """One neas search on a copy of the trained run, then export of its best ensemble."""
    run = work / name

    def search_and_export() -> dict[str, float]:
        search_s = evolve_copy(run, extra, budget=args.budget, trained=trained, args=args)
        export_s = neas_cli(
            "export", str(run), "--select", "best", "--final-epochs",
            str(args.final_epochs), "--final-init", args.final_init, "--format", "onnx",
            "--no-cascade", "--device", "cpu",
        )  # fmt: skip
        return {"search_s": search_s, "export_s": export_s}

    times = stage(work, name, search_and_export)
    search_s, export_s = times["search_s"], times["export_s"]
    (manifest_path,) = run.glob("ensembles/*/manifest.json")
    manifest = json.loads(manifest_path.read_text())
    session = ort_session((manifest_path.parent / "model.onnx").read_bytes(), threads=1)
    x_test = np.ascontiguousarray(args.dataset.x_test, dtype=np.float32)
    # outputs: the ensemble's probabilities, then each member's logits
    outputs = session.run(None, {INPUT: x_test})
    logits = torch.from_numpy(np.stack(outputs[1:]))
    return {
        "name": name,
        **metrics(logits, args.dataset.y_test),
        "macs": int(manifest["macs"]),
        **onnx_latency([session], x_test),
        "wall_s": train_s + search_s + export_s,
        "seed": args.seed,
        "members": int(manifest["members"]),
        "split": int(manifest["split"]),
        "val_accuracy": manifest["accuracy"]["val"],
        "test_accuracy_before_final": manifest["accuracy_before_final"]["test"],
        "search_s": search_s,
        "export_s": export_s,
    }


def deep_ensemble(*, trained: Path, work: Path, args) -> dict[str, Any]:
    """Single-network NAS under half the budget on the same supernet (``neas evolve
    --ensemble-size 1``, as many proposals); its best-val network trained twice from scratch."""
    half = work / "single_nas_half"
    budget = str(args.budget_macs // 2)
    search_s = evolve_copy(
        half, ["--ensemble-size", "1"], budget=budget, trained=trained, args=args
    )
    run = open_trained(half, dataset=args.dataset)
    history = pd.read_csv(half / "search" / "history.csv")
    fits = history[(history["members"] == 1) & (history["macs"] <= args.budget_macs // 2)]
    if fits.empty:
        sys.exit("the K = 1 search under half the budget scored no single network")
    row = fits.sort_values(["val_accuracy", "macs"], ascending=[False, True]).iloc[0]
    arch = EnsembleArch.from_json(str(row["arch"]), run.space)
    cfg = replace(
        run.config.train, epochs=run.config.train.epochs + args.final_epochs, seed=args.seed
    )
    ds = args.dataset
    x, y = torch.from_numpy(ds.x_train), torch.from_numpy(ds.y_train).long()
    t0 = time.perf_counter()
    nets = []
    for i in range(2):
        seed = 1000 * args.seed + i + 1
        net = train_standalone(
            fresh_ensemble(run.space, arch, seed=seed), x, y, config=cfg, seed=seed
        )
        nets.append(net.eval())
        print(f"  deep ensemble member {i + 1}/2 trained at {time.perf_counter() - t0:.0f} s")
    wall = time.perf_counter() - t0
    logits = torch.cat([ensemble_logits(n, ds.x_test) for n in nets])  # (2, N, C)
    shape = tuple(ds.x_test.shape[1:])
    sessions = [ort_session(to_onnx(n, input_shape=shape).SerializeToString()) for n in nets]
    macs = 2 * CostTable.from_space(run.space).ensemble(arch).macs
    return {
        "name": "deep_ensemble",
        **metrics(logits, ds.y_test),
        "macs": int(macs),
        **onnx_latency(sessions, np.ascontiguousarray(ds.x_test, dtype=np.float32)),
        "wall_s": wall,
        "seed": args.seed,
        "members": 2,
        "epochs": cfg.epochs,
        "member_val_accuracy_in_supernet": float(row["val_accuracy"]),
        "arch_search_s": search_s,
    }


def hist_gradient_boosting(ds: Dataset, *, seed: int) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    flat = {
        s: getattr(ds, f"x_{s}").reshape(len(getattr(ds, f"x_{s}")), -1) for s in ("train", "test")
    }
    t0 = time.perf_counter()
    clf = HistGradientBoostingClassifier(random_state=seed).fit(flat["train"], ds.y_train)
    wall = time.perf_counter() - t0
    proba = clf.predict_proba(flat["test"])
    logits = torch.from_numpy(np.log(np.clip(proba, 1e-12, None)))[None].float()
    lat = {}
    for b in BATCHES:
        xb = batch_of(flat["test"], b)
        (t,) = time_calls([lambda xb=xb: clf.predict_proba(xb)], budget_s=0.5)
        lat[f"latency_ms_b{b}"] = t["median_ms"]
    return {
        "name": "hist_gradient_boosting",
        **metrics(logits, ds.y_test),
        "macs": None,
        **lat,
        "wall_s": wall,
        "seed": seed,
        "iterations": int(clf.n_iter_),
    }


def one_seed(args, work: Path) -> list[dict[str, Any]]:
    trained = work / "train"

    def train() -> dict[str, float]:
        if trained.exists():
            shutil.rmtree(trained)
        wall = neas_cli(
            "train", "--data", DATA, "--val-fraction", str(args.val_fraction),
            "--epochs", str(args.epochs), "--seed", str(args.seed), "--threads", args.threads,
            "--out", str(trained),
            *(["--max-train", str(args.max_train)] if args.max_train else []),
        )  # fmt: skip
        return {"wall_s": wall}

    train_s = stage(work, "train", train)["wall_s"]
    summary = json.loads((trained / "train_summary.json").read_text())
    args.threads_used = int(summary["torch_threads"])
    args.train_summary = summary
    rows = []
    with torch_threads(args.threads_used):
        for name in args.methods:
            if name in SEARCHED:
                row = searched(
                    name, SEARCHED[name], trained=trained, work=work, args=args, train_s=train_s
                )
            elif name == "deep_ensemble":
                row = stage(
                    work, name, lambda: deep_ensemble(trained=trained, work=work, args=args)
                )
            else:
                row = stage(
                    work, name, lambda: hist_gradient_boosting(args.dataset, seed=args.seed)
                )
            rows.append(row)
            print(row, flush=True)
    return rows


def table(rows: list[dict[str, Any]]) -> list[str]:
    def macs(v: Any) -> str:
        return "—" if v is None else f"{v / 1e6:.2f}M"

    return [
        "| seed | method | test acc | NLL | ECE | MACs | ORT ms b1 | ORT ms b64 | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['seed']} | {r['name']} | **{100 * r['test_accuracy']:.2f}%** | {r['nll']:.3f} "
            f"| {r['ece']:.3f} | {macs(r['macs'])} | {r['latency_ms_b1']:.2f} "
            f"| {r['latency_ms_b64']:.1f} | {r['wall_s']:.0f} |"
            for r in rows
        ),
    ]


def mean_table(rows: list[dict[str, Any]]) -> list[str]:
    """Each method's mean ± the seeds' standard deviation (one seed: no spread), as
    ``final_training.py``'s table shows it."""
    frame = pd.DataFrame(rows)
    lines = [
        "| method | seeds | test acc (mean ± std) | NLL | ECE | MACs | wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, part in frame.groupby("name", sort=False):
        acc, macs = 100 * part["test_accuracy"], part["macs"].dropna()
        spread = f" ± {acc.std(ddof=1):.2f}" if len(part) > 1 else ""
        size = f"{macs.mean() / 1e6:.2f}M" if len(macs) else "—"
        lines.append(
            f"| {name} | {len(part)} | **{acc.mean():.2f}**{spread}% "
            f"| {part['nll'].mean():.3f} | {part['ece'].mean():.3f} | {size} "
            f"| {part['wall_s'].mean():.0f} |"
        )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", default="0", help="comma-separated seeds, one full run each")
    p.add_argument("--budget", default="11.5M", help="MACs budget per ensemble")
    p.add_argument("--epochs", type=int, default=3, help="supernet epochs")
    p.add_argument(
        "--final-epochs", type=int, default=FINAL_EPOCHS, help="final-stage epochs of the best"
    )
    p.add_argument("--final-init", default=FINAL_INIT, choices=FINAL_INITS)
    p.add_argument("--population", type=int, default=16)
    p.add_argument("--evaluations", type=int, default=48, help="proposals per search")
    p.add_argument("--val-size", type=int, default=5000, help="val images held out of 60k")
    p.add_argument("--max-train", type=int, default=None, help="cap train (smoke runs only)")
    p.add_argument("--threads", default="auto", help="torch threads for neas: N or auto")
    p.add_argument(
        "--methods",
        default=",".join(METHODS),
        help="comma-separated methods to run (default: all); with --no-write, one seed's "
        "methods can run as separate processes once its supernet is trained",
    )
    p.add_argument(
        "--work",
        type=Path,
        default=None,
        help="keep the runs here (default: temp); a rerun reuses the stages finished there",
    )
    p.add_argument(
        "--no-write",
        dest="write",
        action="store_false",
        help="leave the results files alone (one seed of several processes sharing --work)",
    )
    args = p.parse_args()
    args.methods = list(dict.fromkeys(args.methods.split(",")))  # each once, in the order given
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        p.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if args.write and set(args.methods) != set(METHODS):
        p.error("--methods with fewer than all methods needs --no-write")
    args.budget_macs = parse_budget(args.budget)
    args.val_fraction = args.val_size / 60000
    rows: list[dict[str, Any]] = []
    info: dict[str, Any] = {}
    for seed in map(int, args.seeds.split(",")):
        args.seed = seed
        data = DataOptions(
            source=DATA, val_fraction=args.val_fraction, seed=seed, max_train=args.max_train
        )
        args.dataset = load_data(data)
        with tempfile.TemporaryDirectory() as tmp:
            work = (args.work or Path(tmp)) / f"seed{seed}"
            work.mkdir(parents=True, exist_ok=True)
            rows += one_seed(args, work)
        info[str(seed)] = {
            k: args.train_summary.get(k)
            for k in ("train_seconds", "random_val_accuracy_mean", "random_val_disagreement_mean")
        }
    if not args.write:
        return
    command = " ".join(["python benchmarks/fashion_mnist.py", *sys.argv[1:]])
    write_json(
        "fashion_mnist.json",
        {
            "command": command,
            "budget_macs": args.budget_macs,
            "train_images": len(args.dataset.y_train),
            "val_images": len(args.dataset.y_val),
            "test_images": len(args.dataset.y_test),
            "torch_threads": args.threads_used,
            "supernet_epochs": args.epochs,
            "final_epochs": args.final_epochs,
            "final_init": args.final_init,
            "evaluations": args.evaluations,
            "train_summary": info,
            "methods": rows,
        },
    )
    ds = args.dataset
    lines = [
        "",
        f"Command: `{command}` ({len(ds.y_train)} train / {len(ds.y_val)} val / "
        f"{len(ds.y_test)} test images, budget {args.budget} MACs per ensemble, supernet "
        f"{args.epochs} epochs + {args.final_epochs} final-stage epoch(s) (`{args.final_init}`) "
        f"of the chosen ensemble, {args.evaluations} proposals per search, {args.threads_used} "
        f"torch thread(s){' chosen by `--threads auto`' if args.threads == 'auto' else ''}, shared "
        "2-core machine). neas, single_nas and "
        "random_ensemble share one supernet; their wall time each includes its training.",
        "",
        *table(rows),
        "",
        *mean_table(rows),
        "",
    ]
    write_section(HEADING, lines)


if __name__ == "__main__":
    main()

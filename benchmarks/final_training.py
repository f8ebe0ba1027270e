"""The final training stage measured: each starting-weight mode and epoch count against a deep
ensemble and single-network NAS, with the same final-training recipe, paired per seed.

Per seed (one supernet and one search per seed, shared by every method, so the comparison is
paired): ``neas train`` (with shrinking) -> three searches on copies of the run (no latency, the
same proposals): K = 2 ensembles under the budget (neas's choice: the best-validation
ensemble), K = 1 under the budget (single-network NAS) and K = 1 under half the budget (the
network a user would train twice: the deep ensemble). Then, from the same supernet:

- ``neas`` with each ``--final-init`` of ``--inits`` for each E in ``--epochs-list``;
- ``neas_early``: the best-validation K = 2 ensemble of the same search whose split is at most
  ``--early-split`` (members that share few layers can differ), with the same inits and E;
- ``single_nas``: its network, the same recipe and E, ``inherit`` (its best start here);
- ``deep_ensemble``: the half-budget network trained from scratch twice (two seeds, each as
  the final stage trains a member), probabilities averaged: about equal MACs.

``--tau N`` (on ``--tau-seed``): N ensembles of the neas search spread over its splits (the
best-validation one of each split band), each trained by the final stage (``--tau-init``,
``--tau-epochs``); Kendall tau between the search's validation accuracy and the validation
accuracy after final training says whether the search ranks what the final stage yields.

Each seed's rows are appended to ``--work``/seed<S>/rows.jsonl as they are measured (and its
searches kept): a stopped run resumes at the next row, a row's final training from its last
epoch checkpoint (``--work``/seed<S>/final/; its ``final_wall_s`` is then the seconds after
the resume scaled to all its epochs, and the row says ``final_resumed_from``), ``--methods``
picks which rows to measure, seeds can run as separate processes (``--no-write``), and a last
call with every seed (``--collect``) writes the table from their rows.

Rows (``results/<--name>.json``, ``final_training`` by default): seed, method, init, epochs,
test_accuracy, nll, ece, member_accuracy_mean, disagreement, ensemble_gain (ensemble
accuracy minus mean member accuracy), macs, split, search_val_accuracy, final_wall_s (the final
stage alone), total_wall_s (plus the supernet training and the method's search). Writes the
"Final training" section of RESULTS.md with a table (means over seeds) and
``results/<--name>.png`` (test accuracy vs final-stage wall time, one line per method).

    python benchmarks/final_training.py --data digits --seeds 0,1,2 --threads 1
    python benchmarks/final_training.py --data fashion-mnist --val-fraction 0.0833 \\
        --budget 11.5M --supernet-epochs 3 --seeds 0,1,2 --threads 1   # hours on a CPU
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from neas import pipeline
from neas.config import IMAGE_EPOCHS, DataOptions, RunConfig, SearchOptions, TrainConfig
from neas.cost import CostTable
from neas.deploy.final import final_train
from neas.device import torch_threads
from neas.evaluate import calibration_images, ensemble_logits, ensemble_metrics, recalibrate_bn
from neas.files import atomic_write_text
from neas.nn import build_ensemble
from neas.run import open_trained
from neas.search_spaces import EnsembleArch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import HERE, write_json, write_section  # noqa: E402

from neas.config import FINAL_INITS  # noqa: E402

METHODS = ("neas", "neas_early", "single_nas", "deep_ensemble", "tau")


def searched_copy(
    trained: Path, dest: Path, options: SearchOptions, threads: int
) -> tuple[pd.Series, pd.DataFrame]:
    """The best-validation row of a search on a copy of the trained run (with its seconds),
    and the search's history."""
    if not (dest / "search" / "summary.json").is_file():  # else resumed: a finished search
        if dest.exists():  # with the same options is returned as it is
            shutil.rmtree(dest)
        shutil.copytree(trained, dest, ignore=shutil.ignore_patterns("search", "ensembles"))
    result = pipeline.evolve(dest, options=options, threads=threads, report=False)
    best = result.front.sort_values(["val_accuracy", "macs"], ascending=[False, True]).iloc[0]
    extra = pd.Series({"search_s": float(result.summary["seconds"])})
    return pd.concat([best, extra]), result.history


def feasible(history: pd.DataFrame, budget: int) -> pd.DataFrame:
    """Distinct scored proposals within ``budget``, best validation first."""
    rows = history[history["feasible"] & (history["macs"] <= budget)]
    rows = rows.drop_duplicates("arch")
    return rows.sort_values(["val_accuracy", "macs"], ascending=[False, True])


def spread_over_splits(history: pd.DataFrame, budget: int, n: int) -> pd.DataFrame:
    """Up to ``n`` proposals: the best-validation one of each of ``n`` split bands; where the
    search scored fewer distinct splits than ``n``, the best of the others fill up to ``n``."""
    rows = feasible(history, budget)
    bands = np.array_split(np.sort(rows["split"].unique()), min(n, rows["split"].nunique()))
    chosen = pd.DataFrame([rows[rows["split"].isin(b)].iloc[0] for b in bands if len(b)])
    more = rows[~rows["arch"].isin(chosen["arch"])].head(max(0, n - len(chosen)))
    return pd.concat([chosen, more])


def scores(logits: torch.Tensor, y: np.ndarray) -> dict[str, float]:
    m = ensemble_metrics(logits, y)
    members = float(np.mean(m.member_accuracy))
    return {
        "test_accuracy": m.accuracy,
        "nll": m.nll,
        "ece": m.ece,
        "member_accuracy_mean": members,
        "disagreement": m.disagreement,
        "ensemble_gain": m.accuracy - members,
    }


def trained_net(
    run, arch: EnsembleArch, *, epochs: int, init: str, seed: int, checkpoint: Path
) -> tuple[Any, float, int]:
    """The final stage on ``arch`` built from ``run``'s supernet, resumed from ``checkpoint``
    where a stopped process left one; (network, seconds, epochs the checkpoint held). The
    seconds of a resumed training are those after the resume scaled to all its epochs. A
    finished network keeps its checkpoint and its seconds (``finished_file``) until the caller
    keeps its row, so a deep ensemble stopped in its second network resumes there."""
    finished = finished_file(checkpoint)
    earlier = (
        json.loads(finished.read_text()) if finished.is_file() and checkpoint.is_file() else None
    )
    ds = run.dataset
    recalibrate_bn(run.supernet, arch, calibration_images(ds, seed=seed))
    net = build_ensemble(run.supernet, arch)  # ``scratch`` replaces it with fresh weights
    cfg = replace(run.config.train, seed=seed)
    done = final_train(
        net,
        run.space,
        arch,
        ds.x_train,
        ds.y_train,
        epochs=epochs,
        init=init,
        config=cfg,
        checkpoint=checkpoint,
    )
    if earlier is not None:  # trained before the stop: its checkpoint held every epoch
        return done.net, float(earlier["seconds"]), int(earlier["resumed_from"])
    seconds = done.seconds * epochs / max(1, epochs - done.resumed_from)
    atomic_write_text(
        finished, json.dumps({"seconds": seconds, "resumed_from": done.resumed_from}) + "\n"
    )
    return done.net, seconds, done.resumed_from


def finished_file(checkpoint: Path) -> Path:
    """Where a finished final training's seconds are kept beside its ``checkpoint``."""
    return checkpoint.with_suffix(".done.json")


def forget(checkpoint: Path) -> None:
    """Remove a final training's ``checkpoint`` and its seconds once its row is kept."""
    checkpoint.unlink(missing_ok=True)
    finished_file(checkpoint).unlink(missing_ok=True)


def one_seed(seed: int, args) -> list[dict[str, Any]]:
    work = Path(args.work) / f"seed{seed}"
    kept = Rows(work, args)
    if args.collect:
        return kept.rows
    config = RunConfig(
        data=DataOptions(
            source=args.data, max_train=args.max_train, val_fraction=args.val_fraction
        ),
        train=TrainConfig(epochs=args.supernet_epochs),
    ).with_seed(seed)
    pipeline.train(
        out=work / "run", config=config, threads=args.threads, resume=True, show_progress=False
    )
    train_s = json.loads((work / "run" / "train_summary.json").read_text())["train_seconds"]
    options = SearchOptions(
        budget=args.budget,
        population=args.population,
        generations=args.generations,
        latency=False,
        seed=seed,
    )
    half = str(options.budget_macs // 2)
    neas_best, history = searched_copy(work / "run", work / "neas", options, args.threads)
    early = feasible(history[history["split"] <= args.early_split], options.budget_macs)
    rows = {"neas": neas_best}
    if len(early):
        rows["neas_early"] = pd.concat([early.iloc[0], neas_best[["search_s"]]])
    if "single_nas" in args.methods:  # each baseline's search only when its rows are asked
        rows["single_nas"] = searched_copy(
            work / "run", work / "single", replace(options, ensemble_size=1), args.threads
        )[0]
    if "deep_ensemble" in args.methods:
        rows["deep_ensemble"] = searched_copy(
            work / "run",
            work / "half",
            replace(options, ensemble_size=1, budget=half),
            args.threads,
        )[0]
    run = open_trained(work / "run")
    ds, costs = run.dataset, CostTable.from_space(run.space)
    for method, row in rows.items():
        if method not in args.methods:
            continue
        arch = EnsembleArch.from_json(str(row["arch"]), run.space)
        inits = (
            args.inits
            if method.startswith("neas")
            else ("scratch",)
            if method == "deep_ensemble"
            else ("inherit",)
        )
        for init in inits:
            for epochs in args.epochs_list:
                if kept.has(method, init, epochs):
                    continue
                (work / "final").mkdir(exist_ok=True)
                checkpoints = [  # deep_ensemble: two networks, trained apart, averaged
                    work / "final" / f"{method}-{init}-{epochs}-{k}.pt"
                    for k in range(2 if method == "deep_ensemble" else 1)
                ]
                with torch_threads(args.threads):
                    parts = [
                        trained_net(
                            run, arch, epochs=epochs, init=init, seed=seed + 1000 * k, checkpoint=c
                        )
                        for k, c in enumerate(checkpoints)
                    ]
                    logits = torch.cat([ensemble_logits(n, ds.x_test) for n, _, _ in parts])
                    final_s = sum(s for _, s, _ in parts)
                    macs = len(parts) * costs.ensemble(arch).macs
                    resumed = sum(r for _, _, r in parts)
                kept.add(
                    {
                        "seed": seed,
                        "method": method,
                        "init": init,
                        "epochs": epochs,
                        **scores(logits, ds.y_test),
                        "macs": int(macs),
                        "split": int(arch.split),
                        "search_val_accuracy": float(row["val_accuracy"]),
                        "members": 2 if method == "deep_ensemble" else arch.num_members,
                        "final_wall_s": final_s,
                        "total_wall_s": train_s + float(row["search_s"]) + final_s,
                        **({"final_resumed_from": resumed} if resumed else {}),
                    }
                )
                for c in checkpoints:  # the row is kept: its networks are not needed again
                    forget(c)
    if args.tau and seed == args.tau_seed and "tau" in args.methods:
        tau_rows(run, history, options.budget_macs, seed, args, kept)
    return kept.rows


#: Options that change what a seed's rows mean: rows kept under other values are dropped.
SETTINGS = ("data", "max_train", "val_fraction", "budget", "supernet_epochs", "population",
            "generations", "threads", "early_split", "tau", "tau_init", "tau_epochs")  # fmt: skip


class Rows:
    """A seed's rows, each appended to ``<work>/seed<S>/rows.jsonl`` as it is measured: a
    stopped process resumes at the next row, and ``--collect`` reads them. Rows kept under
    other ``SETTINGS`` (``settings.json``) are dropped."""

    def __init__(self, work: Path, args) -> None:
        self.path, settings = work / "rows.jsonl", {k: getattr(args, k) for k in SETTINGS}
        saved = work / "settings.json"
        if saved.is_file() and json.loads(saved.read_text()) != settings:
            if args.collect:
                sys.exit(f"{work}: its rows were measured with other options ({saved})")
            self.path.unlink(missing_ok=True)
        if args.collect and not self.path.is_file():
            sys.exit(f"{work}: no rows kept (not run, or still running?)")
        work.mkdir(parents=True, exist_ok=True)
        atomic_write_text(saved, json.dumps(settings) + "\n")  # read by another seed's process
        lines = self.path.read_text().splitlines() if self.path.is_file() else []
        self.rows = [json.loads(line) for line in lines if line.strip()]

    def has(self, method: str, init: str, epochs: int, **fields: Any) -> bool:
        """A kept row of this method, init and epochs (and ``fields``' values, e.g. split)."""
        want = {"method": method, "init": init, "epochs": epochs, **fields}
        return any(all(r.get(k) == v for k, v in want.items()) for r in self.rows)

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def tau_rows(run, history: pd.DataFrame, budget: int, seed: int, args, kept: Rows) -> None:
    """Ensembles spread over the splits, before (the search's score) and after final training
    (validation accuracy): the rows of the Kendall tau figure."""
    ds = run.dataset
    epochs = args.tau_epochs or max(args.epochs_list)
    final_dir = Path(args.work) / f"seed{seed}" / "final"  # the rows' final-stage checkpoints
    for _, row in spread_over_splits(history, budget, args.tau).iterrows():
        arch = EnsembleArch.from_json(str(row["arch"]), run.space)
        if kept.has("tau", args.tau_init, epochs, split=int(arch.split), macs=int(row["macs"])):
            continue  # measured before (a resumed run)
        tag = f"tau-{args.tau_init}-{epochs}-{arch.split}-{int(row['macs'])}"
        final_dir.mkdir(parents=True, exist_ok=True)
        checkpoint = final_dir / f"{tag}.pt"
        with torch_threads(args.threads):
            net, final_s, resumed = trained_net(
                run, arch, epochs=epochs, init=args.tau_init, seed=seed, checkpoint=checkpoint
            )
            val = ensemble_metrics(ensemble_logits(net, ds.x_val), ds.y_val)
        kept.add(
            {
                "seed": seed,
                "method": "tau",
                "init": args.tau_init,
                "epochs": epochs,
                "split": int(arch.split),
                "macs": int(row["macs"]),
                "search_val_accuracy": float(row["val_accuracy"]),
                "final_val_accuracy": val.accuracy,
                "disagreement": val.disagreement,
                "final_wall_s": final_s,
                **({"final_resumed_from": resumed} if resumed else {}),
            }
        )
        forget(checkpoint)


def tau_lines(rows: list[dict[str, Any]]) -> list[str]:
    from scipy.stats import kendalltau

    frame = pd.DataFrame([r for r in rows if r["method"] == "tau"])
    if len(frame) < 3:
        return []
    tau = kendalltau(frame["search_val_accuracy"], frame["final_val_accuracy"]).statistic
    lines = [
        "",
        f"Does the search rank what the final stage yields? {len(frame)} ensembles of seed "
        f"{int(frame['seed'].iloc[0])}'s search, the best-validation one of each split band "
        "(the next best filling up where it scored fewer distinct splits), each trained "
        f"{int(frame['epochs'].iloc[0])} epochs from `{frame['init'].iloc[0]}`: Kendall tau "
        f"between the search's validation accuracy and the validation accuracy after final "
        f"training = **{tau:.2f}**.",
        "",
        "| split | MACs | search val acc | val acc after final training | disagreement |",
        "|---|---|---|---|---|",
    ]
    for _, r in frame.sort_values("split").iterrows():
        lines.append(
            f"| {r['split']} | {r['macs'] / 1e6:.2f}M | {100 * r['search_val_accuracy']:.2f}% | "
            f"{100 * r['final_val_accuracy']:.2f}% | {100 * r['disagreement']:.1f}% |"
        )
    return lines


def table(rows: list[dict[str, Any]]) -> list[str]:
    frame = pd.DataFrame([r for r in rows if r["method"] != "tau"])
    keys = ["method", "init", "epochs"]
    # methods and inits in the order first measured, each one's epochs ascending
    first = {k: {v: i for i, v in enumerate(dict.fromkeys(frame[k]))} for k in keys[:2]}
    frame = frame.sort_values(
        keys, key=lambda col: col.map(first[col.name]) if col.name in first else col, kind="stable"
    )
    mean = frame.groupby(keys, sort=False).mean(numeric_only=True).reset_index()
    std = frame.groupby(keys, sort=False).std(numeric_only=True).reset_index()
    seeds = frame.groupby(keys, sort=False)["seed"].nunique().reset_index()["seed"]
    lines = [
        "| method | init | E | seeds | test acc (mean ± std) | NLL | ECE | member acc "
        "| disagreement | gain | MACs | split | final s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (_, m), (_, s), n in zip(mean.iterrows(), std.iterrows(), seeds):
        # one seed has no spread to show
        spread = "" if n < 2 else f" ± {100 * s['test_accuracy']:.2f}"
        lines.append(
            f"| {m['method']} | {m['init']} | {int(m['epochs'])} | {n} | "
            f"{100 * m['test_accuracy']:.2f}{spread}% | {m['nll']:.3f} | {m['ece']:.3f} | "
            f"{100 * m['member_accuracy_mean']:.2f}% | {100 * m['disagreement']:.1f}% | "
            f"{100 * m['ensemble_gain']:+.2f} | {m['macs'] / 1e6:.2f}M | {m['split']:.0f} | "
            f"{m['final_wall_s']:.0f} |"
        )
    return lines


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    frame = pd.DataFrame([r for r in rows if r["method"] != "tau"])
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for (method, init), part in frame.groupby(["method", "init"], sort=False):
        # one curve of the same seeds: those that ran every E of this line (an epoch curve is
        # often measured on one seed, its default E on three); none such: every seed
        common = set.intersection(*part.groupby("epochs")["seed"].apply(set)) or set(part["seed"])
        label = f"{method} ({init})"
        if part["seed"].nunique() > len(common):
            label += f", seed{'s' if len(common) > 1 else ''} {', '.join(map(str, sorted(common)))}"
        m = part[part["seed"].isin(common)].groupby("epochs").mean(numeric_only=True)
        m = m.sort_index()
        ax.plot(m["final_wall_s"], 100 * m["test_accuracy"], marker="o", label=label)
    ax.set_xlabel("final-stage wall time, s (mean over the seeds that ran every E of a line)")
    ax.set_ylabel("test accuracy, %")
    if frame["final_wall_s"].max() > 4 * frame["final_wall_s"].min():  # an epoch curve
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    FigureCanvasAgg(fig).print_png(str(path))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="digits")
    p.add_argument("--max-train", type=int, default=None)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--budget", default="600M")
    p.add_argument("--supernet-epochs", type=int, default=IMAGE_EPOCHS)
    p.add_argument("--population", type=int, default=SearchOptions.population)
    p.add_argument("--generations", type=int, default=SearchOptions.generations)
    p.add_argument("--epochs-list", default="1,2,4,8")
    p.add_argument("--seeds", default="0")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--inits", default=",".join(FINAL_INITS), help="neas's final inits")
    p.add_argument("--methods", default=",".join(METHODS), help="which rows to measure")
    p.add_argument("--early-split", type=int, default=5, help="neas_early: split at most")
    p.add_argument("--tau", type=int, default=0, help="ensembles in the tau figure (0: none)")
    p.add_argument("--tau-init", default="perturb")
    p.add_argument("--tau-epochs", type=int, default=0, help="0: the largest of --epochs-list")
    p.add_argument("--tau-seed", type=int, default=0, help="the seed whose search tau is on")
    p.add_argument("--work", default="runs/final_training")
    p.add_argument("--name", default="final_training", help="results/<name>.json and .png")
    p.add_argument(
        "--collect",
        action="store_true",
        help="only gather the seeds' kept rows and write the results (none may be missing)",
    )
    p.add_argument(
        "--no-write",
        dest="write",
        action="store_false",
        help="keep the rows in --work only (one seed of several processes)",
    )
    args = p.parse_args()
    args.epochs_list = [int(e) for e in args.epochs_list.split(",")]
    args.inits = args.inits.split(",")
    args.methods = args.methods.split(",")
    rows = [r for seed in (int(s) for s in args.seeds.split(",")) for r in one_seed(seed, args)]
    if not args.write:
        return
    write_json(
        f"{args.name}.json",
        {
            "data": args.data,
            "max_train": args.max_train,
            "budget": args.budget,
            "supernet_epochs": args.supernet_epochs,
            "torch_threads": args.threads,
            "rows": rows,
        },
    )
    cmd = " ".join(["python benchmarks/final_training.py", *sys.argv[1:]])
    what = f"{args.data}" + (f", {args.max_train} training images" if args.max_train else "")
    if all(r["method"] == "tau" for r in rows):  # only the ranking figure: its own section
        write_section(
            f"## Does the search rank what the final stage yields? ({what})",
            ["", f"`{cmd}` ({args.threads} torch thread(s); supernet {args.supernet_epochs} "
             f"epochs, budget {args.budget}).", *tau_lines(rows), ""],
        )  # fmt: skip
        return
    plot(rows, HERE / "results" / f"{args.name}.png")
    write_section(
        f"## Final training ({what})",
        [
            "",
            f"`{cmd}` ({args.threads} torch thread(s); data {args.data}, max train "
            f"{args.max_train or 'all'}, budget {args.budget}, supernet {args.supernet_epochs} "
            f"epochs; seeds {args.seeds}; means over seeds, ± the seeds' standard deviation). "
            "neas = the best-validation K = 2 ensemble of the search; neas_early = the "
            f"best-validation K = 2 ensemble of the same search with split <= {args.early_split}; "
            "single_nas = the best "
            "K = 1 network under the budget; deep_ensemble = the best K = 1 network under half "
            "the budget trained from scratch twice. Every method gets the same final-training "
            "recipe and epochs E.",
            "",
            *table(rows),
            *tau_lines(rows),
            "",
            f"![test accuracy vs final-stage wall time](results/{args.name}.png)",
            "",
        ],
    )


if __name__ == "__main__":
    main()

"""Tables: NEASClassifier (the mlp space, default settings) against what a user would pick instead.

On scikit-learn's bundled breast_cancer and wine, for each seed: one stratified 70/30
train/test split, shared by every method. Methods: ``neas`` (``NEASClassifier`` with the main
job's defaults; it holds out 20% of the training part for validation), ``hist_gradient_boosting``
(default settings) and ``logistic_regression`` (standardised features, C=1). Prints a markdown
table, writes it to RESULTS.md and ``results/tabular.json``.

    python benchmarks/tabular.py [--seeds 0 1 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from _results import write_json, write_section
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from neas import NEASClassifier

DATASETS = {"breast_cancer": load_breast_cancer, "wine": load_wine}


def methods(seed: int, threads: int) -> dict:
    return {
        "neas": NEASClassifier(random_state=seed, threads=threads),
        "hist_gradient_boosting": HistGradientBoostingClassifier(random_state=seed),
        "logistic_regression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for neas")
    args = p.parse_args()
    rows = []
    for name, loader in DATASETS.items():
        X, y = loader(return_X_y=True)
        for seed in args.seeds:
            Xtr, Xte, ytr, yte = train_test_split(
                X, y, test_size=0.3, random_state=seed, stratify=y
            )
            for method, model in methods(seed, args.threads).items():
                t0 = time.perf_counter()
                model.fit(Xtr, ytr)
                wall = time.perf_counter() - t0
                row = {
                    "data": name,
                    "method": method,
                    "seed": seed,
                    "test_accuracy": float(model.score(Xte, yte)),
                    "fit_s": wall,
                }
                if method == "neas":
                    chosen = model.pareto_front_.set_index("id").loc[model.ensemble_id_]
                    row |= {"macs": int(chosen["macs"]), "members": int(chosen["members"])}
                rows.append(row)
                print(row, flush=True)
    lines = [
        "",
        f"Command: `python benchmarks/tabular.py {' '.join(sys.argv[1:])}` (torch "
        f"{torch.__version__}, {args.threads} torch thread(s) for neas, 2-core CPU). Stratified "
        f"70/30 train/test splits, seeds {', '.join(map(str, args.seeds))}; mean ± sd of test "
        "accuracy over seeds.",
        "",
        "| data | method | test accuracy (%) | fit s (mean) | neas MACs (mean) |",
        "|---|---|---|---|---|",
    ]
    summary = []
    for name in DATASETS:
        for method in methods(0, 1):
            sel = [r for r in rows if r["data"] == name and r["method"] == method]
            acc = np.array([r["test_accuracy"] for r in sel]) * 100
            macs = [r["macs"] for r in sel if "macs" in r]
            fit = float(np.mean([r["fit_s"] for r in sel]))
            summary.append(
                {
                    "data": name,
                    "method": method,
                    "test_accuracy_mean": acc.mean() / 100,
                    "test_accuracy_sd": acc.std() / 100,
                    "fit_s_mean": fit,
                }  # fmt: skip
            )
            lines.append(
                f"| {name} | {method} | {acc.mean():.2f} ± {acc.std():.2f} | {fit:.1f} | "
                + (f"{np.mean(macs) / 1e3:.0f}k |" if macs else "– |")
            )
    print("\n".join(lines))
    write_section("## Tables: NEASClassifier vs gradient boosting and logistic regression", lines)
    write_json("tabular.json", {"seeds": args.seeds, "threads": args.threads, "rows": rows,
                                "summary": summary})  # fmt: skip


if __name__ == "__main__":
    main()

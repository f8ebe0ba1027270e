"""A CSV table with a text column and missing values: search, export, serve new rows.

    python examples/tabular_csv.py [--fast]

Writes scikit-learn's breast-cancer data as a CSV (with a made-up text column and 10% missing
values), runs the same job as `neas search --space mlp --data FILE --target diagnosis`, and
classifies rows with the exported ensemble, applying the encoding recorded with it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer

import neas
from neas.front import describe_best

#: What --fast prints: its figures are a smoke test's, not the method's.
SMOKE = (
    "smoke run (--fast): tiny training, so its accuracy says little (it may be near chance); "
    "run without --fast for real figures"
)


def write_csv(path: Path) -> None:
    d = load_breast_cancer(as_frame=True)
    frame = d.frame.drop(columns=["target"])
    rng = np.random.default_rng(0)
    frame.loc[rng.random(len(frame)) < 0.1, "mean radius"] = np.nan
    frame["clinic"] = rng.choice(["north", "south", "east"], len(frame))
    frame["diagnosis"] = np.where(d.target == 1, "benign", "malignant")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default="runs/tabular", help="run folder")
    p.add_argument(
        "--fast", action="store_true", help="a smoke run: tiny settings, seconds not minutes"
    )
    args = p.parse_args()
    csv = Path(args.out).parent / "cancer.csv"
    write_csv(csv)
    config = neas.RunConfig(
        data=neas.DataOptions(source=str(csv), target="diagnosis"),
        space=neas.SpaceOptions(name="mlp", width_mult=0.5 if args.fast else None),
        train=neas.TrainConfig(epochs=6 if args.fast else 40),
    )
    options = neas.SearchOptions(
        budget="600k", population=8 if args.fast else 16, generations=2 if args.fast else 6
    )
    result = neas.search(out=args.out, config=config, options=options, force=True, threads=1)
    best = result.best()
    model = result.ensemble(str(best["id"]))
    rows = pd.read_csv(csv).drop(columns=["diagnosis"]).head(5)
    labels = model.predict(model.encode_table(rows), normalize=True)
    print(describe_best(best))
    print("first rows:", [model.class_names[i] for i in labels])
    if args.fast:
        print(SMOKE)


if __name__ == "__main__":
    main()

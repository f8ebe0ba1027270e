"""neas inside a scikit-learn pipeline: grid search over the MACs budget, cross-validated.

python examples/sklearn_pipeline.py [--fast]
"""

from __future__ import annotations

import argparse

from sklearn.datasets import load_wine
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import neas

#: What --fast prints: its figures are a smoke test's, not the method's.
SMOKE = (
    "smoke run (--fast): tiny training, so its accuracy says little (it may be near chance); "
    "run without --fast for real figures"
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--fast", action="store_true", help="a smoke run: tiny settings, seconds not minutes"
    )
    args = p.parse_args()
    X, y = load_wine(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=0, stratify=y
    )
    small = (
        {"epochs": 10, "population": 4, "generations": 1, "width_mult": 0.25, "final_epochs": 2}
        if args.fast
        else {}
    )
    clf = neas.NEASClassifier(random_state=0, threads=1, **small)
    # Every budget must afford the cheapest ensemble (every layer shared, cheapest ops) of the
    # space left after shrinking: 132k MACs on wine (13 features, 3 classes) before, up to 493k
    # after the default three shrink steps (80k at width_mult=0.25, as in --fast). A smaller
    # budget is refused with an error that names the cheapest ensemble's MACs, and
    # error_score="raise" stops the grid on it instead of scoring that budget NaN.
    grid = GridSearchCV(
        make_pipeline(StandardScaler(), clf),
        {"neasclassifier__budget": ["500k", "1M"]},
        cv=2 if args.fast else 3,
        error_score="raise",
    )
    grid.fit(X_train, y_train)
    best = grid.best_estimator_[-1]
    print(
        f"best budget {grid.best_params_['neasclassifier__budget']}: cv accuracy "
        f"{grid.best_score_:.3f}, test accuracy {grid.score(X_test, y_test):.3f}"
    )
    print(best.pareto_front_[["id", "members", "macs", "val_accuracy"]])
    if args.fast:
        print(SMOKE)


if __name__ == "__main__":
    main()

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--fast", action="store_true", help="tiny settings (seconds, not minutes)")
    args = p.parse_args()
    X, y = load_wine(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=0, stratify=y
    )
    small = (
        {"epochs": 10, "population": 4, "generations": 1, "width_mult": 0.25} if args.fast else {}
    )
    clf = neas.NEASClassifier(random_state=0, threads=1, **small)
    grid = GridSearchCV(
        make_pipeline(StandardScaler(), clf),
        {"neasclassifier__budget": ["30k", "300k"]},
        cv=2 if args.fast else 3,
    )
    grid.fit(X_train, y_train)
    best = grid.best_estimator_[-1]
    print(
        f"best budget {grid.best_params_['neasclassifier__budget']}: cv accuracy "
        f"{grid.best_score_:.3f}, test accuracy {grid.score(X_test, y_test):.3f}"
    )
    print(best.pareto_front_[["id", "members", "macs", "val_accuracy"]])


if __name__ == "__main__":
    main()

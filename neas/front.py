"""The rules that pick an ensemble from a front (``pareto.csv`` as a DataFrame), written once:
the best by validation accuracy (fewest MACs breaking ties), the cheapest within a tolerance
of it, and the best as the user gets it (final-trained ensembles first, ``best_as_trained``).
``neas export --select best``, ``load_run(...).best()``, ``NEASClassifier`` and the cascade's
threshold use them.

>>> import pandas as pd
>>> front = pd.DataFrame({"id": ["a", "b", "c"], "val_accuracy": [0.90, 0.95, 0.95],
...                       "macs": [1, 3, 2]})
>>> best(front)["id"], cheapest_within(front, 0.05)["id"], cheapest_within(front, 0.0)["id"]
('c', 'a', 'c')
"""

from __future__ import annotations

import pandas as pd


def best(front: pd.DataFrame, *, accuracy: str = "val_accuracy") -> pd.Series:
    """The row with the highest ``accuracy``, then the fewest MACs."""
    return front.sort_values([accuracy, "macs"], ascending=[False, True]).iloc[0]


def cheapest_within(
    front: pd.DataFrame,
    tolerance: float,
    *,
    accuracy: str = "val_accuracy",
    cost: str = "macs",
    reference: float | None = None,
) -> pd.Series:
    """The row with the lowest ``cost`` among those whose ``accuracy`` is within ``tolerance``
    of ``reference`` (default: the best in the table), then the more accurate. The cascade
    picks its threshold by the same rule (``neas.deploy.cascade.choose_threshold``)."""
    top = front[accuracy].max() if reference is None else reference
    ok = front[front[accuracy] >= top - tolerance - 1e-12]
    return ok.sort_values([cost, accuracy], ascending=[True, False]).iloc[0]


def best_as_trained(front: pd.DataFrame) -> pd.Series:
    """The best row as the user gets it: among the ensembles that had final training (a
    ``final_val_accuracy``), the best by that score; where none had, the best by the search's.

    A trained ensemble is not ranked against the others' search scores: the search's best score
    is the highest of about a hundred on the same validation images, so it is inflated by
    that choice, while the final stage's is measured after its further training. On the
    digits main job (seeds 0-2 at 12, 14 and 20 supernet epochs, 9 runs) ranking both on one
    scale passed over the trained ensemble in 5 runs for an untrained one that tied or led by an
    image or two, and the trained one scored 0.33 points higher on test on average in those 5.

    >>> nan = float("nan")
    >>> front = pd.DataFrame({"id": ["a", "b", "c"], "val_accuracy": [0.99, 0.98, 0.97],
    ...                       "final_val_accuracy": [nan, 0.975, 0.98], "macs": [1, 2, 3]})
    >>> untrained = front.drop(columns="final_val_accuracy")
    >>> best_as_trained(front)["id"], best_as_trained(untrained)["id"]
    ('c', 'a')
    """
    after = front.get("final_val_accuracy", pd.Series(index=front.index, dtype=float))
    trained = after.notna()
    if trained.any():
        return best(front[trained], accuracy="final_val_accuracy")
    return best(front)


def describe_best(row: pd.Series) -> str:
    """The row ``best_as_trained`` gives, in words: its id, MACs and accuracies, after final
    training where it had it (the search's beside them).

    >>> row = pd.Series({"id": "e004", "macs": 8.0e6, "val_accuracy": 0.975,
    ...                  "test_accuracy": 0.9806, "final_val_accuracy": 0.9722,
    ...                  "final_test_accuracy": 0.9917})
    >>> describe_best(row)[:67]
    'e004 (8,000,000 MACs): 97.22% val, 99.17% test after final training'
    >>> describe_best(row)[67:]
    ' (the search scored 97.50% / 98.06%)'
    >>> describe_best(row.drop(["final_val_accuracy", "final_test_accuracy"]))
    'e004 (8,000,000 MACs): 97.50% val, 98.06% test (supernet weights, no final training)'
    """
    head = f"{row['id']} ({int(row['macs']):,} MACs)"
    val, test = 100 * row["val_accuracy"], 100 * row["test_accuracy"]
    final_val, final_test = row.get("final_val_accuracy"), row.get("final_test_accuracy")
    if final_val is None or pd.isna(final_val):
        return f"{head}: {val:.2f}% val, {test:.2f}% test (supernet weights, no final training)"
    after = f"{100 * final_val:.2f}% val"
    if final_test is not None and not pd.isna(final_test):
        after += f", {100 * final_test:.2f}% test"
    return f"{head}: {after} after final training (the search scored {val:.2f}% / {test:.2f}%)"

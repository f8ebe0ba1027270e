"""The rules that pick an ensemble from a front (``pareto.csv`` as a DataFrame), written once:
the best by validation accuracy (fewest MACs breaking ties) and the cheapest within a tolerance
of it. ``neas export --select best``, ``load_run(...).best()`` and ``NEASClassifier`` use them.

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
    front: pd.DataFrame, tolerance: float, *, accuracy: str = "val_accuracy"
) -> pd.Series:
    """The row with the fewest MACs among those within ``tolerance`` of the best
    ``accuracy`` (then the more accurate)."""
    ok = front[front[accuracy] >= front[accuracy].max() - tolerance - 1e-12]
    return ok.sort_values(["macs", accuracy], ascending=[True, False]).iloc[0]


def current_accuracy(front: pd.DataFrame) -> pd.Series:
    """Validation accuracy as the user gets it: after final training where an export had it
    (``final_val_accuracy``), else the search's."""
    after = front.get("final_val_accuracy", pd.Series(index=front.index, dtype=float))
    return after.fillna(front["val_accuracy"])

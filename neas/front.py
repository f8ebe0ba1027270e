"""The rules that pick an ensemble from a front (``pareto.csv`` as a DataFrame), written once:
the best by validation accuracy (fewest MACs breaking ties) and the cheapest within a tolerance
of it. ``neas export --select best``, ``load_run(...).best()``, ``NEASClassifier`` and the
cascade's threshold use them.

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


def current_accuracy(front: pd.DataFrame) -> pd.Series:
    """Validation accuracy as the user gets it: after final training where an export had it
    (``final_val_accuracy``), else the search's."""
    after = front.get("final_val_accuracy", pd.Series(index=front.index, dtype=float))
    return after.fillna(front["val_accuracy"])

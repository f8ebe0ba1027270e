"""Early-exit cascades over an ensemble's members, evaluated for many thresholds at once.

A cascade runs the trunk, then members 1, 2, ... in order, and stops for a sample as soon as the
running ensemble (the mean of the softmaxes of the members run so far) has a max probability
strictly above the threshold; the last member always stops. Strictly above, so that threshold 1
runs every member (a float32 softmax can reach exactly 1.0) and threshold 0 only the first.

Everything is vectorised: member probabilities are computed once, cumulative means give the
running ensembles, and one comparison per threshold gives every sample's exit member.

>>> probs = np.array([[[0.9, 0.1], [0.6, 0.4]], [[0.5, 0.5], [0.1, 0.9]]])  # (K, N, C)
>>> exits = cascade_exits(probs, np.array([0.0, 0.8, 1.0]))
>>> exits.tolist()
[[0, 0], [0, 1], [1, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neas import plots
from neas.config import CASCADE_TOLERANCE
from neas.cost import CostTable
from neas.files import atomic_write_bytes
from neas.front import cheapest_within
from neas.layout import CASCADE_PLOT, CASCADE_TABLE
from neas.search_spaces.arch import EnsembleArch

DEFAULT_THRESHOLDS: tuple[float, ...] = (
    0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 1.0,
)  # fmt: skip


def running_probs(member_probs: np.ndarray) -> np.ndarray:
    """(K, N, C) member probabilities -> (K, N, C) means of the first 1..K members."""
    k = member_probs.shape[0]
    return np.cumsum(member_probs, axis=0) / np.arange(1, k + 1)[:, None, None]


def cascade_exits(member_probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Index of the last member run (0..K-1) per threshold and sample: shape (T, N)."""
    conf = running_probs(member_probs).max(-1)  # (K, N)
    stop = conf[None] > np.asarray(thresholds, dtype=np.float64)[:, None, None]  # (T, K, N)
    stop[:, -1] = True
    return stop.argmax(axis=1)


def cascade_probs(member_probs: np.ndarray, threshold: float) -> np.ndarray:
    """The cascade's output probabilities (N, C) at one threshold."""
    exits = cascade_exits(member_probs, np.array([threshold]))[0]
    return running_probs(member_probs)[exits, np.arange(member_probs.shape[1])]


def sweep(
    member_probs: np.ndarray,
    y: np.ndarray,
    *,
    trunk_macs: int,
    member_macs: Sequence[int],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> pd.DataFrame:
    """Accuracy and mean MACs per sample for each threshold.

    Columns: ``threshold``, ``accuracy``, ``mean_macs`` (trunk + the members actually run),
    ``mean_members``, and ``exit_<m>`` (the fraction of samples stopping after member m).
    """
    t = np.asarray(thresholds, dtype=np.float64)
    k, n = member_probs.shape[:2]
    exits = cascade_exits(member_probs, t)  # (T, N)
    preds = running_probs(member_probs).argmax(-1)  # (K, N)
    correct = preds[exits, np.arange(n)[None]] == np.asarray(y)[None]
    cost = trunk_macs + np.cumsum(np.asarray(member_macs, dtype=np.float64))  # (K,)
    table = pd.DataFrame(
        {
            "threshold": t,
            "accuracy": correct.mean(1),
            "mean_macs": cost[exits].mean(1),
            "mean_members": (exits + 1).mean(1),
        }
    )
    for m in range(k):
        table[f"exit_{m}"] = (exits == m).mean(1)
    return table


def choose_threshold(table: pd.DataFrame, *, tolerance: float = CASCADE_TOLERANCE) -> float:
    """The cheapest threshold whose accuracy is within ``tolerance`` of the full ensemble's.

    >>> table = pd.DataFrame({"threshold": [0.0, 0.9, 1.0], "accuracy": [0.8, 0.948, 0.95],
    ...                       "mean_macs": [10.0, 14.0, 20.0]})
    >>> choose_threshold(table)
    0.9
    """
    full = float(table.loc[table["threshold"].idxmax(), "accuracy"])
    row = cheapest_within(table, tolerance, accuracy="accuracy", cost="mean_macs", reference=full)
    return float(row["threshold"])


def write_cascade(
    out_dir: Path,
    *,
    probs: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    arch: EnsembleArch,
    costs: CostTable,
    tolerance: float = CASCADE_TOLERANCE,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> dict[str, Any]:
    """Sweep thresholds on every split, choose one on val, write cascade.csv/png; manifest part."""
    macs = [costs.member(arch, m).macs for m in range(arch.num_members)]
    kw = {"trunk_macs": costs.trunk(arch).macs, "member_macs": macs, "thresholds": thresholds}
    tables = {split: sweep(p, labels[split], **kw) for split, p in probs.items()}
    chosen = choose_threshold(tables["val"], tolerance=tolerance)
    merged = tables["val"].add_prefix("val_").rename(columns={"val_threshold": "threshold"})
    for split, t in tables.items():
        if split != "val":
            merged = merged.merge(
                t.add_prefix(f"{split}_").rename(columns={f"{split}_threshold": "threshold"}),
                on="threshold",
            )
    atomic_write_bytes(out_dir / CASCADE_TABLE, merged.to_csv(index=False).encode())
    plots.plot_cascade(
        tables, out_dir / CASCADE_PLOT, chosen=chosen, title=f"{out_dir.name}: early-exit cascade"
    )
    info: dict[str, Any] = {"threshold": chosen, "rule": f"cheapest within {tolerance:g} of full"}
    for split, t in tables.items():
        at = t.loc[(t["threshold"] - chosen).abs().idxmin()]
        full = t.loc[t["threshold"].idxmax()]
        info[split] = {
            "accuracy": float(at["accuracy"]),
            "mean_macs": float(at["mean_macs"]),
            "full_accuracy": float(full["accuracy"]),
            "full_macs": float(full["mean_macs"]),
        }
    return info

"""Scoring an exported ensemble: member probabilities, ensemble and member accuracies.

>>> probs = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.6, 0.4], [0.6, 0.4]]])  # (K, N, C)
>>> ensemble_accuracy(probs, np.array([0, 1]))
1.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def softmax_np(logits: torch.Tensor) -> np.ndarray:
    """Member probabilities as float64 numpy, the form ``neas.cascade`` takes."""
    return logits.softmax(-1).double().numpy()


def ensemble_accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of the mean of member probabilities (K, N, C) against labels (N,)."""
    return float((probs.mean(0).argmax(-1) == np.asarray(y)).mean())


def accuracies(probs: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, Any]:
    """Ensemble accuracy per split, and each member's accuracy on val (if present)."""
    out: dict[str, Any] = {s: ensemble_accuracy(p, labels[s]) for s, p in probs.items()}
    if "val" in probs:
        member = (probs["val"].argmax(-1) == labels["val"]).mean(-1)
        out["val_members"] = [float(a) for a in member]
    return out

"""Fine-tuning an extracted ensemble from its inherited supernet weights, and scoring it.

Fine-tuning runs the one training loop (``neas.training.fit``) with the supernet's loss, the
sum of the members' cross-entropies (label smoothing and random shifts as in training), and
AdamW with a cosine-decayed learning rate. It is deterministic for a fixed seed and thread count.

>>> probs = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.6, 0.4], [0.6, 0.4]]])  # (K, N, C)
>>> ensemble_accuracy(probs, np.array([0, 1]))
1.0
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from neas.config import TrainConfig
from neas.errors import ConfigError
from neas.nn.layers import EnsembleNet
from neas.training.loop import ensemble_loss, fit, seeded_rng


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


#: Peak learning rate of fine-tuning (AdamW, cosine decay, no warm-up): a tenth of training's.
FINETUNE_LR = 1e-3


def finetune(
    net: EnsembleNet,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    config: TrainConfig | None = None,
    device: torch.device | str = "cpu",
) -> EnsembleNet:
    """Train ``net`` in place for ``epochs`` epochs on (``x``, ``y``); returns it in eval mode.

    The loop, loss, augmentation and seed are the run's training ``config``'s; the optimizer is
    AdamW at ``FINETUNE_LR`` with cosine decay and no warm-up. The seed fixes the data order,
    the shifts and the dropout masks (torch's generators are seeded for the call and restored
    after it), so the result depends only on ``net``, the data, the config and the thread count,
    not on what ran before in the process.
    """
    if epochs < 0:
        raise ConfigError(f"fine-tune epochs must be >= 0, got {epochs}")
    if epochs == 0:
        return net.eval()
    cfg = replace(
        config or TrainConfig(), epochs=epochs, optimizer="adamw", lr=FINETUNE_LR, warmup_epochs=0
    )
    xt, yt = torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(y))
    with seeded_rng(cfg.seed, device):  # dropout draws from torch's global generators
        fit(net, xt, yt, config=cfg, loss_fn=ensemble_loss(cfg), device=device, show_progress=False)
    return net.eval()

"""Fine-tuning an extracted ensemble from its inherited supernet weights, and scoring it.

The loss is the supernet's: the sum of the members' cross-entropies (label smoothing and random
shifts as in supernet training), AdamW with a cosine-decayed learning rate.

>>> net = finetune(net, x_train, y_train, epochs=3, seed=0)  # doctest: +SKIP
>>> ensemble_accuracy(softmax_np(ensemble_logits(net, x_val)), y_val)  # doctest: +SKIP
0.97
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from neas.errors import ConfigError
from neas.nn.ensemble import EnsembleNet
from neas.train import random_shift


@torch.no_grad()
def ensemble_logits(
    net: EnsembleNet,
    x: np.ndarray | torch.Tensor,
    *,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Eval-mode logits of every member: float32 (K, N, classes) on the CPU."""
    was_training = net.training
    net.eval()
    x = torch.as_tensor(x)
    try:
        parts = [
            torch.stack([t.float() for t in net.member_logits(xb.to(device))]).cpu()
            for xb in x.split(batch_size)
        ]
    finally:
        net.train(was_training)
    return torch.cat(parts, dim=1)


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


def finetune(
    net: EnsembleNet,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    label_smoothing: float = 0.1,
    augment: bool = True,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> EnsembleNet:
    """Train ``net`` in place for ``epochs`` epochs on (``x``, ``y``); returns it in eval mode."""
    if epochs < 0:
        raise ConfigError(f"fine-tune epochs must be >= 0, got {epochs}")
    if epochs == 0:
        return net.eval()
    device = torch.device(device)
    net.to(device).train()
    decay = [p for p in net.parameters() if p.ndim > 1]
    no_decay = [p for p in net.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0}],
        lr=lr,
    )
    xt, yt = torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(y))
    steps = max(1, len(xt) // batch_size)
    total, step = steps * epochs, 0
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(steps):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            xb = random_shift(xt[idx], gen) if augment else xt[idx]
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            logits = net.member_logits(xb.to(device))
            yb = yt[idx].to(device)
            loss = sum(F.cross_entropy(t, yb, label_smoothing=label_smoothing) for t in logits)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    return net.eval()

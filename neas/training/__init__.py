"""Training: the one loop (``loop``) and supernet training on it (``supernet``)."""

from neas.training.loop import TrainState, ensemble_loss, fit, lr_at, make_optimizer, random_shift
from neas.training.supernet import (
    ShrinkHook,
    probe_step,
    step_arch,
    train_supernet,
    training_threads,
)

__all__ = [
    "ShrinkHook",
    "TrainState",
    "ensemble_loss",
    "fit",
    "lr_at",
    "make_optimizer",
    "probe_step",
    "random_shift",
    "step_arch",
    "train_supernet",
    "training_threads",
]

"""Supernet training: one uniformly sampled ensemble per step, sum of members' cross-entropy.

Determinism: the architecture of step ``t`` of epoch ``e`` comes from ``default_rng([seed, e,
t])`` and each epoch's shuffle from a generator seeded by ``(seed, e)``, so every data-parallel
rank samples the same architecture and a resumed run repeats an uninterrupted one exactly (CPU).
A checkpoint (model, optimizer, RNG state, current space, history) is written atomically after
every epoch and loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from neas.errors import ConfigError
from neas.nn.supernet import Supernet
from neas.progress import make_progress
from neas.run import atomic_torch_save
from neas.search_spaces.arch import EnsembleArch, sample
from neas.search_spaces.spec import SearchSpace

CHECKPOINT = "supernet.pt"


@dataclass(frozen=True)
class TrainConfig:
    """Supernet training hyper-parameters (``lr=None`` picks the optimizer's default)."""

    epochs: int = 30
    batch_size: int = 64
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float | None = None
    weight_decay: float = 0.01
    momentum: float = 0.9
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    augment: bool = True
    seed: int = 0
    amp: bool = True
    channels_last: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")
        if self.optimizer not in ("sgd", "adamw"):
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; valid: sgd, adamw")

    @property
    def base_lr(self) -> float:
        return self.lr if self.lr is not None else (0.1 if self.optimizer == "sgd" else 3e-3)


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up then cosine decay to zero."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def step_arch(space: SearchSpace, *, seed: int, epoch: int, step: int) -> EnsembleArch:
    """The architecture trained at (epoch, step): the same on every rank and on resume."""
    return sample(space, np.random.default_rng([seed, epoch, step]))


def random_shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max(1, H // 8)`` pixels (zero padding)."""
    pad = max(1, x.shape[-1] // 8)
    n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    padded = F.pad(x, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator)
    out = torch.empty_like(x)
    for dy, dx in torch.unique(offsets, dim=0).tolist():
        idx = ((offsets[:, 0] == dy) & (offsets[:, 1] == dx)).nonzero().squeeze(1)
        out[idx] = padded[idx, :, dy : dy + h, dx : dx + w]
    return out


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.base_lr, momentum=config.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.base_lr)


@dataclass
class TrainState:
    """What a checkpoint restores; ``history`` has one dict per finished epoch."""

    epoch: int
    history: list[dict[str, float]]


def save_checkpoint(
    path: Path,
    *,
    supernet: Supernet,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    config: TrainConfig,
) -> None:
    atomic_torch_save(
        {
            "format": 1,
            "model": supernet.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": state.epoch,
            "history": state.history,
            "space": supernet.space.to_json(),
            "weights": supernet.weights,
            "config": asdict(config),
            "torch_rng": torch.get_rng_state(),
        },
        path,
    )


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely (no pickled code)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def supernet_from_checkpoint(ckpt: dict[str, Any]) -> Supernet:
    """Rebuild the supernet (current space, weight mode) and load its weights."""
    net = Supernet(SearchSpace.from_json(ckpt["space"]), weights=ckpt["weights"])
    net.load_state_dict(ckpt["model"])
    return net


ShrinkHook = Callable[[Supernet, int], Supernet]
"""``hook(supernet, epochs_done) -> supernet``: may return a supernet over a smaller space."""


def rebuild_optimizer(
    old: torch.optim.Optimizer, model: torch.nn.Module, config: TrainConfig
) -> torch.optim.Optimizer:
    """A fresh optimizer for ``model`` that keeps the state of every surviving parameter."""
    new = make_optimizer(model, config)
    for p in model.parameters():
        if p in old.state:
            new.state[p] = old.state[p]
    return new


def train_supernet(
    supernet: Supernet,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    config: TrainConfig,
    device: torch.device | str = "cpu",
    checkpoint: Path | None = None,
    resume: bool = False,
    show_progress: bool = True,
    stop_after: int | None = None,
    shrink_epochs: tuple[int, ...] = (),
    shrink: ShrinkHook | None = None,
) -> tuple[Supernet, TrainState]:
    """Train ``supernet`` on (``x``, ``y``) for ``config.epochs`` epochs; returns it and its state.

    ``resume`` continues from ``checkpoint`` (the supernet is rebuilt over the checkpoint's
    space, which shrinking may have made smaller); ``stop_after`` ends after that many epochs in
    total (as if killed), which tests use to check that resuming equals an uninterrupted run.
    After each epoch count in ``shrink_epochs``, ``shrink(supernet, epochs_done)`` may replace
    the supernet; the optimizer keeps the state of surviving parameters.
    """
    device = torch.device(device)
    torch.manual_seed(config.seed)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    state = TrainState(epoch=0, history=[])
    ckpt = None
    if resume and checkpoint is not None and checkpoint.exists():
        ckpt = load_checkpoint(checkpoint)
        supernet = supernet_from_checkpoint(ckpt)
    supernet = supernet.to(device, memory_format=memory_format)
    optimizer = make_optimizer(supernet, config)
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["torch_rng"])
        state = TrainState(epoch=int(ckpt["epoch"]), history=list(ckpt["history"]))

    n = len(x)
    steps_per_epoch = max(1, n // config.batch_size)  # drop the last partial batch
    total = steps_per_epoch * config.epochs
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    use_amp = config.amp and device.type == "cuda"
    last = config.epochs if stop_after is None else min(config.epochs, stop_after)

    with make_progress(show=show_progress) as progress:
        task = progress.add_task(
            "train supernet", total=total, completed=state.epoch * steps_per_epoch, info=""
        )
        for epoch in range(state.epoch, last):
            supernet.train()
            gen = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
            perm = torch.randperm(n, generator=gen)
            loss_sum, seen, t0 = 0.0, 0, time.perf_counter()
            for step in range(steps_per_epoch):
                idx = perm[step * config.batch_size : (step + 1) * config.batch_size]
                xb = x[idx]
                if config.augment:
                    xb = random_shift(xb, gen)
                xb = xb.to(device, non_blocking=True).contiguous(memory_format=memory_format)
                yb = y[idx].to(device, non_blocking=True)
                arch = step_arch(supernet.space, seed=config.seed, epoch=epoch, step=step)
                lr = lr_at(epoch * steps_per_epoch + step, total, warmup, config.base_lr)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    logits = supernet(xb, arch)
                    loss = sum(
                        F.cross_entropy(out.float(), yb, label_smoothing=config.label_smoothing)
                        for out in logits
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.item() * len(idx) / arch.num_members
                seen += len(idx)
                rate = seen / (time.perf_counter() - t0)
                progress.update(
                    task,
                    advance=1,
                    info=f"epoch {epoch + 1}/{config.epochs} loss {loss_sum / seen:.3f} "
                    f"{rate:.0f} img/s",
                )
            state.epoch = epoch + 1
            if shrink is not None and state.epoch in shrink_epochs:
                supernet = shrink(supernet, state.epoch).to(device, memory_format=memory_format)
                optimizer = rebuild_optimizer(optimizer, supernet, config)
            state.history.append(
                {
                    "epoch": epoch + 1,
                    "loss": loss_sum / max(1, seen),
                    "images_per_s": seen / (time.perf_counter() - t0),
                    "lr": lr,
                }
            )
            if checkpoint is not None:
                save_checkpoint(
                    checkpoint, supernet=supernet, optimizer=optimizer, state=state, config=config
                )
    return supernet, state

"""Supernet training: one uniformly sampled ensemble per step, sum of members' cross-entropy.

The architecture of step ``t`` of epoch ``e`` comes from ``default_rng([seed, e, t])``, so every
data-parallel rank samples the same architecture and a resumed run repeats an uninterrupted one
exactly (CPU). A checkpoint (model, optimizer, RNG state, current space, history) is written
atomically after an epoch (every epoch, or every ``CHECKPOINT_SECONDS`` when epochs are short:
``neas.training.loop.SaveClock``; ``neas.checkpoint.save_checkpoint``).

Under ``torchrun`` (``world``): every rank starts from rank 0's weights, only rank 0 writes the
checkpoint, and at a shrink point only rank 0 runs the shrink hook (it evaluates and records);
it broadcasts the shrunk space and the other ranks cut their supernet to it
(``neas.nn.surgery.shrink_supernet`` on the same weights), so all ranks keep the same model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neas.checkpoint import load_checkpoint, save_checkpoint, supernet_from_checkpoint
from neas.config import TrainConfig
from neas.data import Dataset
from neas.device import Threads, resolve_threads
from neas.nn.supernet import Supernet
from neas.nn.surgery import shrink_supernet
from neas.search_spaces.arch import EnsembleArch, sample
from neas.search_spaces.spec import SearchSpace
from neas.training.distributed import World
from neas.training.loop import (
    LossFn,
    SaveClock,
    TrainState,
    fit,
    make_optimizer,
    memory_format,
    rebuild_optimizer,
)

ShrinkHook = Callable[[Supernet, int], Supernet]
"""``hook(supernet, epochs_done) -> supernet``: may return a supernet over a smaller space."""


def step_arch(space: SearchSpace, *, seed: int, epoch: int, step: int) -> EnsembleArch:
    """The architecture trained at (epoch, step): the same on every rank and on resume."""
    return sample(space, np.random.default_rng([seed, epoch, step]))


def probe_step(
    space: SearchSpace,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    config: TrainConfig,
    device: torch.device | str = "cpu",
) -> Callable[[], None]:
    """One training step of a throw-away supernet on one batch, repeatable for timing (the
    ``--threads auto`` probe): the architecture of step 0, at the run's batch size and memory
    format."""
    fmt = memory_format(config)
    net = Supernet(space, weights=config.weights).to(device, memory_format=fmt).train()
    xb = x[: config.batch_size].to(device).contiguous(memory_format=fmt)
    yb = y[: config.batch_size].to(device)
    arch = step_arch(space, seed=config.seed, epoch=0, step=0)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = sum(F.cross_entropy(out.float(), yb) for out in net(xb, arch))
        loss.backward()
        opt.step()

    return step


def training_threads(
    threads: Threads,
    space: SearchSpace,
    dataset: Dataset,
    *,
    config: TrainConfig,
    device: torch.device,
) -> int | None:
    """``neas.device.resolve_threads`` for a run: ``auto`` times ``probe_step`` on its data."""
    x, y = torch.from_numpy(dataset.x_train), torch.from_numpy(dataset.y_train)
    return resolve_threads(
        threads, device=device, probe=lambda: probe_step(space, x, y, config=config, device=device)
    )


def supernet_loss(config: TrainConfig) -> LossFn:
    """The loss of one step: a sampled ensemble's members' cross-entropies, summed."""

    def loss_fn(
        model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, epoch: int, step: int
    ) -> tuple[torch.Tensor, int]:
        arch = step_arch(model.space, seed=config.seed, epoch=epoch, step=step)
        logits = model(xb, arch)
        loss = sum(
            F.cross_entropy(out.float(), yb, label_smoothing=config.label_smoothing)
            for out in logits
        )
        return loss, arch.num_members

    return loss_fn


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
    world: World | None = None,
    stop_when: Callable[[], bool] | None = None,
) -> tuple[Supernet, TrainState]:
    """Train ``supernet`` on (``x``, ``y``) for ``config.epochs`` epochs; returns it and its state.

    ``resume`` continues from ``checkpoint`` (the supernet is rebuilt over the checkpoint's
    space, which shrinking may have made smaller); ``stop_after`` ends after that many epochs in
    total (as if killed), which tests use to check that resuming equals an uninterrupted run.
    After each epoch count in ``shrink_epochs``, ``shrink(supernet, epochs_done)`` may replace
    the supernet; the optimizer keeps the state of surviving parameters. ``world`` trains data
    parallel under ``torchrun`` (module doc). ``stop_when()`` (a time limit) is asked during
    and after every epoch (``fit``): when it says so, training ends there, with a checkpoint.
    """
    world = world or World()
    torch.manual_seed(config.seed)
    state = TrainState()
    ckpt = None
    if resume and checkpoint is not None and checkpoint.exists():
        ckpt = load_checkpoint(checkpoint)
        supernet = supernet_from_checkpoint(ckpt, checkpoint)
    supernet = supernet.to(torch.device(device), memory_format=memory_format(config))
    optimizer = make_optimizer(supernet, config)
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["torch_rng"])
        state = TrainState(epoch=int(ckpt["epoch"]), history=list(ckpt["history"]))
    world.broadcast_state(supernet)
    clock, last = SaveClock(), config.epochs if stop_after is None else stop_after

    def after_epoch(
        model: nn.Module, opt: torch.optim.Optimizer, st: TrainState
    ) -> tuple[nn.Module, torch.optim.Optimizer]:
        shrank = shrink is not None and st.epoch in shrink_epochs and not st.stop
        if shrank:
            shrunk = shrink(model, st.epoch) if world.is_main else model
            space = world.broadcast(shrunk.space.to_json())  # rank 0 decides, the others follow
            if space != shrunk.space.to_json():
                shrunk = shrink_supernet(model, SearchSpace.from_json(space))
            model = shrunk.to(torch.device(device))
            opt = rebuild_optimizer(opt, model, config)
        if (
            checkpoint is not None
            and world.is_main
            and clock.due(force=shrank or st.stop or st.epoch >= min(last, config.epochs))
        ):
            save_checkpoint(
                checkpoint,
                supernet=model,
                optimizer=opt,
                epoch=st.epoch,
                history=st.history,
                config=config,
            )
        return model, opt

    supernet, _, state = fit(
        supernet,
        x,
        y,
        config=config,
        loss_fn=supernet_loss(config),
        device=device,
        optimizer=optimizer,
        state=state,
        stop_after=stop_after,
        on_epoch_end=after_epoch,
        description="train supernet",
        show_progress=show_progress,
        world=world,
        stop_when=stop_when,
    )
    return supernet, state  # type: ignore[return-value]

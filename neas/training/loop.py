"""The one training loop: supernet training, stand-alone training and fine-tuning all run here.

Optimizer groups (no weight decay on biases and norms), linear warm-up then cosine decay,
bfloat16 autocast on CUDA, ``channels_last``, seeded per-epoch shuffles and random shifts. What
differs between callers is only the loss of one batch (``LossFn``) and what happens after an
epoch (``EpochHook``: shrinking, checkpoints).

Determinism: epoch ``e``'s shuffle and augmentation come from a generator seeded by
``(seed, e)``, so a resumed run repeats an uninterrupted one exactly (CPU).

Data parallel (``world``, see ``neas.training.distributed``): ``config.batch_size`` is the global
batch. Every rank draws the same permutation and augmentation, takes its own equal slice of each
global batch (so the ranks' shards of an epoch are disjoint parts of one permutation), and steps
with the gradient averaged over the ranks; each rank seeds torch's generator (dropout) per epoch
from (seed, epoch, rank); only rank 0 shows progress.

>>> import torch
>>> from neas.config import CHECKPOINT_SECONDS, STOP_CHECKS, TrainConfig
>>> model = torch.nn.Linear(4, 3)
>>> x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
>>> def loss_fn(m, xb, yb, epoch, step):
...     return torch.nn.functional.cross_entropy(m(xb), yb), 1
>>> cfg = TrainConfig(epochs=2, batch_size=8, augment=False, channels_last=False)
>>> _, _, state = fit(model, x, y, config=cfg, loss_fn=loss_fn, show_progress=False)
>>> state.epoch, len(state.history)
(2, 2)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from neas.config import CHECKPOINT_SECONDS, STOP_CHECKS, WARMUP_MAX_SHARE, TrainConfig
from neas.errors import ConfigError
from neas.progress import make_progress
from neas.training.distributed import World, rank_seed

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, int, int], tuple[torch.Tensor, int]]
"""``loss_fn(model, xb, yb, epoch, step) -> (loss, terms)``: ``terms`` losses were summed
(members), so ``loss / terms`` is what the progress bar and history report."""


@dataclass
class TrainState:
    """Where training is; ``history`` has one dict per finished epoch."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    stop: bool = False  # set by an epoch hook to end training early (e.g. early stopping)


class SaveClock:
    """When an epoch's checkpoint is due: after the first epoch (so a kill soon after the start
    loses one epoch at most), then ``CHECKPOINT_SECONDS`` after the last write, or when
    ``due(force=True)`` (the last epoch, a cut). A resume starts from the last write; training
    is deterministic from any checkpoint, so the result is the same whichever epochs wrote.

    >>> clock = SaveClock(seconds=3600.0)
    >>> clock.due(), clock.due(), clock.due(force=True)
    (True, False, True)
    """

    def __init__(self, seconds: float = CHECKPOINT_SECONDS) -> None:
        self.seconds, self.last = seconds, None

    def due(self, *, force: bool = False) -> bool:
        now = time.perf_counter()
        if force or self.last is None or now - self.last >= self.seconds:
            self.last = now
            return True
        return False


EpochHook = Callable[
    [nn.Module, torch.optim.Optimizer, TrainState],
    tuple[nn.Module, torch.optim.Optimizer],
]
"""``hook(model, optimizer, state) -> (model, optimizer)`` after each epoch (``state.epoch``
epochs done); it may replace both (shrinking) and may save a checkpoint."""


def lr_at(step: int, total: int, warmup: int, base: float, *, share: float = 0.0) -> float:
    """Linear warm-up then cosine decay to zero, over the steps after the warm-up or, when
    ``share`` (of a time allowance spent) is further along, over that.

    >>> lr_at(0, 100, 10, 1.0), lr_at(10, 100, 10, 1.0), round(lr_at(99, 100, 0, 1.0), 4)
    (0.1, 1.0, 0.0002)
    >>> lr_at(10, 100, 0, 1.0, share=0.5), lr_at(10, 100, 0, 1.0, share=1.0)
    (0.5, 0.0)
    """
    if step < warmup:
        return base * (step + 1) / warmup
    progress = max((step - warmup) / max(1, total - warmup), share)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def random_shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max(1, H // 8)`` pixels (zero padding); maps smaller than
    4x4 (tables are 1x1) are returned as they are."""
    if min(x.shape[-2:]) < 4:
        return x
    pad = max(1, x.shape[-1] // 8)
    n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    padded = F.pad(x, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator)
    out = torch.empty_like(x)
    for dy, dx in torch.unique(offsets, dim=0).tolist():
        idx = ((offsets[:, 0] == dy) & (offsets[:, 1] == dx)).nonzero().squeeze(1)
        out[idx] = padded[idx, :, dy : dy + h, dx : dx + w]
    return out


@contextmanager
def seeded_rng(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run the block with torch's CPU generator (and ``device``'s, if CUDA) seeded by ``seed``;
    their states are restored afterwards.

    Dropout takes no generator argument and draws from these global generators, so training
    that should not depend on what ran before in the process (fine-tuning, stand-alone training)
    runs inside this block; the caller's random stream is left as it was.

    >>> before = torch.get_rng_state()
    >>> with seeded_rng(3):
    ...     a = torch.rand(2)
    >>> with seeded_rng(3):
    ...     b = torch.rand(2)
    >>> torch.equal(a, b), torch.equal(before, torch.get_rng_state())
    (True, True)
    """
    device = torch.device(device)
    cuda = []
    if device.type == "cuda":
        cuda = [torch.cuda.current_device() if device.index is None else device.index]
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or Nesterov SGD; weight decay on weights only (not biases or norm scales). AdamW
    is torch's fused kernel (one pass over each parameter, not ten ops): a supernet's step
    updates every weight it slices, and the per-op loop took ~12 ms of a ~200 ms CPU step."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.base_lr, momentum=config.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.base_lr, fused=True)


def rebuild_optimizer(
    old: torch.optim.Optimizer, model: nn.Module, config: TrainConfig
) -> torch.optim.Optimizer:
    """A fresh optimizer for ``model`` that keeps the state of every surviving parameter."""
    new = make_optimizer(model, config)
    for p in model.parameters():
        if p in old.state:
            new.state[p] = old.state[p]
    return new


def memory_format(config: TrainConfig) -> torch.memory_format:
    return torch.channels_last if config.channels_last else torch.contiguous_format


def ensemble_loss(config: TrainConfig) -> LossFn:
    """The loss of a static ensemble: the sum of its members' cross-entropies."""

    def loss_fn(
        model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, epoch: int, step: int
    ) -> tuple[torch.Tensor, int]:
        logits = model.member_logits(xb)
        loss = sum(
            F.cross_entropy(t.float(), yb, label_smoothing=config.label_smoothing) for t in logits
        )
        return loss, len(logits)

    return loss_fn


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    config: TrainConfig,
    loss_fn: LossFn,
    device: torch.device | str = "cpu",
    seed: int | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    state: TrainState | None = None,
    stop_after: int | None = None,
    on_epoch_end: EpochHook | None = None,
    description: str = "train",
    show_progress: bool = True,
    world: World | None = None,
    stop_when: Callable[[], bool] | None = None,
    time_share: Callable[[], float] | None = None,
) -> tuple[nn.Module, torch.optim.Optimizer, TrainState]:
    """Train ``model`` on (``x``, ``y``) from ``state.epoch`` to ``config.epochs``.

    ``seed`` (default ``config.seed``) fixes the data order and augmentation; ``stop_after``
    ends after that many epochs in total, as if killed. Returns the (possibly replaced) model,
    its optimizer and the state. Under ``torchrun``, ``world`` shards each batch over the ranks
    (the caller starts every rank from the same weights); ``state.history`` holds the loss over
    all ranks.

    ``stop_when()`` (a time limit) is asked ``STOP_CHECKS`` times an epoch and at its end (rank
    0 decides, under ``torchrun``); once it says so, the epoch ends there, counted as done,
    ``state.stop`` is set and ``on_epoch_end`` runs as after any epoch (it may checkpoint).
    ``time_share()`` (a time limit's window for this training, one process only): the share
    of it spent; the learning rate's decay follows it where it is ahead of the steps (``lr_at``),
    so training that runs slower than planned still ends annealed, and training ends once it
    reaches 1, checked after every step (a clock reading: one check in ``STOP_CHECKS`` an
    epoch let a Fashion-MNIST final training run up to 5 s past its window).
    """
    world = world or World()
    if time_share is not None and world.distributed:
        raise ValueError("time_share= (a schedule annealed by the clock) runs in one process only")
    if not config.is_settled:
        raise ValueError("TrainConfig.epochs/batch_size are None: settle them for the data first")
    if config.batch_size % world.size:
        raise ConfigError(
            f"batch size {config.batch_size} (the global batch) must be a multiple of the "
            f"{world.size} processes"
        )
    device = torch.device(device)
    fmt = memory_format(config)
    seed = config.seed if seed is None else seed
    state = state or TrainState()
    model = model.to(device, memory_format=fmt)
    optimizer = optimizer or make_optimizer(model, config)
    n = len(x)
    steps = max(1, n // config.batch_size)  # drop the last partial batch
    total = steps * config.epochs
    # a short training (a time limit's one or two epochs) still anneals: warm-up <= a share
    warmup = int(round(min(config.warmup_epochs, WARMUP_MAX_SHARE * config.epochs) * steps))
    use_amp = config.amp and device.type == "cuda"
    last = config.epochs if stop_after is None else min(config.epochs, stop_after)
    if state.stop:  # stopped early before a resume: nothing left to train
        last = state.epoch
    lr = config.base_lr
    check_every = max(1, steps // STOP_CHECKS)

    def time_is_up() -> bool:
        if time_share is not None and time_share() >= 1.0:
            return True
        return stop_when is not None and bool(world.broadcast(stop_when() if world.is_main else 0))

    with make_progress(show=show_progress and world.is_main) as progress:
        task = progress.add_task(description, total=total, completed=state.epoch * steps, info="")
        for epoch in range(state.epoch, last):
            model.train()
            if world.distributed:  # dropout: a stream per rank, the same after a resume
                torch.manual_seed(rank_seed(seed, epoch, world.rank))
            gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
            perm = torch.randperm(n, generator=gen)
            loss_sum, seen, t0 = 0.0, 0, time.perf_counter()
            for step in range(steps):
                idx = perm[step * config.batch_size : (step + 1) * config.batch_size]
                xb = random_shift(x[idx], gen) if config.augment else x[idx]
                yb = y[idx]
                if world.distributed:  # every rank augments the global batch: same RNG stream
                    rows = world.shard(len(idx))
                    xb, yb = xb[rows], yb[rows]
                xb = xb.to(device, non_blocking=True).contiguous(memory_format=fmt)
                yb = yb.to(device, non_blocking=True)
                share = 0.0 if time_share is None else time_share()
                lr = lr_at(epoch * steps + step, total, warmup, config.base_lr, share=share)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    loss, terms = loss_fn(model, xb, yb, epoch, step)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                world.average_gradients(model)
                optimizer.step()
                loss_sum += loss.item() * len(yb) / terms
                seen += len(yb)
                rate = seen / (time.perf_counter() - t0)
                progress.update(
                    task,
                    advance=1,
                    info=f"epoch {epoch + 1}/{config.epochs} loss {loss_sum / seen:.3f} "
                    f"{rate:.0f} img/s",
                )
                check = time_share is not None or (step + 1) % check_every == 0
                if check and step + 1 < steps and time_is_up():
                    state.stop = True
                    break
            if not state.stop and epoch + 1 < last and time_is_up():
                state.stop = True
            loss_sum, seen = world.sum([loss_sum, seen], device)
            state.epoch = epoch + 1
            state.history.append(
                {
                    "epoch": epoch + 1,
                    "loss": loss_sum / max(1, seen),
                    "images_per_s": seen / (time.perf_counter() - t0),
                    "lr": lr,
                }
            )
            if on_epoch_end is not None:
                model, optimizer = on_epoch_end(model, optimizer, state)
                model = model.to(device, memory_format=fmt)
            if state.stop:
                break
    return model, optimizer, state

"""Data-parallel training under ``torchrun``: the one module that knows about process groups.

``torchrun --nproc-per-node N -m neas train ...`` starts N processes and sets ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`data_parallel` reads them, joins the process group
(gloo on CPU, NCCL on CUDA, one GPU per process: ``cuda:LOCAL_RANK``) and hands back the
:class:`World` that the training loop shards by. Without those variables (a plain run) the world
has one process and nothing here touches ``torch.distributed``.

The semantics are DDP's: every rank starts from rank 0's weights, trains the same architecture
at each step (``neas.training.step_arch`` is seeded), takes its own slice of each global batch,
and applies the gradient averaged over all ranks, so every rank holds the same weights after
every step. The supernet is dynamic (a step leaves the ops it did not sample without gradients),
so :meth:`World.average_gradients` all-reduces every parameter's gradient with ``None`` counted
as zero, in one flat buffer, and leaves ``None`` where no rank had a gradient, which is what the
optimizer of a one-process run sees. Dropout draws from torch's generator, which each rank
seeds at every epoch from (seed, epoch, rank) (:func:`rank_seed`): the ranks' masks differ, as
the rows of one large batch do, and a resumed run draws what an uninterrupted one draws.

>>> world = world_from_env({})
>>> world.size, world.is_main, world.shard(8)
(1, True, slice(0, 8, None))
>>> world_from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}).shard(8)
slice(4, 8, None)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from neas.errors import ConfigError

T = TypeVar("T")

#: How long a rank waits in a collective, e.g. while rank 0 shrinks the space alone.
TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class World:
    """This process's place among the data-parallel processes (one process: ``World()``)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the only rank that writes files and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, n: int) -> slice:
        """This rank's rows of a global batch of ``n`` (equal slices; the remainder is dropped)."""
        per = n // self.size
        return slice(self.rank * per, (self.rank + 1) * per)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank (any picklable value)."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """Each value summed over the ranks."""
        if not self.distributed:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def broadcast_state(self, model: nn.Module) -> None:
        """Overwrite every rank's parameters and buffers with rank 0's (as DDP does at start)."""
        if self.distributed:
            for t in model.state_dict().values():
                dist.broadcast(t, src=0)

    def average_gradients(self, model: nn.Module) -> None:
        """Replace each parameter's gradient by its mean over the ranks (``None`` as zero).

        One all-reduce of a flat buffer holding every gradient and a has-gradient flag per
        parameter; a parameter no rank computed a gradient for keeps ``grad=None``.
        """
        if not self.distributed:
            return
        params = list(model.parameters())
        device = params[0].device
        flags = torch.tensor([p.grad is not None for p in params], device=device).float()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1).float() for g in grads] + [flags])
        dist.all_reduce(flat)
        flat /= self.size
        has_grad = (flat[-len(params) :] > 0).tolist()
        offset = 0
        for p, has in zip(params, has_grad):
            n = p.numel()
            if has:
                p.grad = flat[offset : offset + n].view_as(p).to(p.dtype)
            offset += n


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """The torch seed of ``rank`` for ``epoch`` in a data-parallel run (dropout masks).

    >>> rank_seed(0, 0, 0) != rank_seed(0, 0, 1) and rank_seed(0, 0, 1) == rank_seed(0, 0, 1)
    True
    """
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def world_from_env(env: Mapping[str, str] | None = None) -> World:
    """The world ``torchrun`` describes in ``env`` (default ``os.environ``); ``World()`` if none."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env or "RANK" not in env:
        return World()
    try:
        world = World(
            rank=int(env["RANK"]),
            size=int(env["WORLD_SIZE"]),
            local_rank=int(env.get("LOCAL_RANK", "0")),
        )
    except ValueError:
        raise ConfigError(
            "RANK, WORLD_SIZE and LOCAL_RANK must be integers (start neas with torchrun)"
        ) from None
    if world.size < 1 or not 0 <= world.rank < world.size:
        raise ConfigError(f"RANK {world.rank} is outside WORLD_SIZE {world.size}")
    return world


def is_main_process() -> bool:
    """Whether this process prints: every plain run, and rank 0 under ``torchrun``."""
    return world_from_env().is_main


@contextmanager
def data_parallel(device: torch.device) -> Iterator[tuple[World, torch.device]]:
    """Join ``torchrun``'s process group for the block; yields the world and this rank's device.

    On CUDA each process uses ``cuda:LOCAL_RANK`` and NCCL; on CPU, gloo. A plain run yields
    ``(World(), device)`` and touches nothing. A group that was already set up by the caller is
    used as it is and left open.
    """
    world = world_from_env()
    if not world.distributed:
        yield world, device
        return
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    owned = not dist.is_initialized()
    if owned:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=TIMEOUT)
    elif dist.get_world_size() != world.size or dist.get_rank() != world.rank:
        raise ConfigError("the open process group does not match RANK / WORLD_SIZE")
    try:
        yield world, device
    finally:
        if owned:
            dist.destroy_process_group()

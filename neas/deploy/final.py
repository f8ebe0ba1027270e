"""The final training stage: a chosen ensemble trained as an ensemble, its members apart.

The supernet ranks ensembles; it does not give their members their final weights (inherited
entangled weights make near-copies: disagreement 0-3 %, ensemble gain ~0). As in the NEAS
paper's own models, the chosen ensemble is trained again as one static network:

* the loss is the **sum of each member's own cross-entropy** (never the ensemble's: members
  that optimise a joint loss collude), and the shared trunk's gradient is **divided by K** (the
  mean of the members' gradients, as in supernet training);
* each member sees **its own batches**: member 0 the loop's data order, member m its own
  permutation and random shifts from ``(seed, m, epoch)``, so the trunk runs once per member;
* the starting weights are chosen by ``init`` (``FINAL_INITS``): ``inherit`` every weight from
  the supernet (what fine-tuning did), ``branches`` the trunk inherited and each member's
  branch (its layers after the split and its head) freshly initialised with a seed of its own,
  ``perturb`` (the trunk inherited, each member's branch a blend of its inherited weights and
  its own fresh ones, ``FINAL_PERTURB``: a warm start whose members can still move apart), or
  ``scratch`` (everything fresh, as the paper trains its final models).

With early stopping on a validation set (tables), ``refit`` then trains once more: the same
starting weights (``init`` draws the same fresh ones), the same schedule, on the training and
validation rows together, stopped after the epochs the early stopping kept (none when it kept
the supernet's weights). Nothing is left held out to check that training, so the stage also
returns the early-stopped ensemble (``FinalResult.held_out``): its validation scores are the
honest ones.

Dropout draws from torch's generator, re-seeded from ``(seed, epoch)`` at each epoch inside a
forked generator, so the stage is deterministic for a seed and thread count and a resumed run
(``checkpoint``, written atomically after every epoch) equals an uninterrupted one.

>>> import copy
>>> import numpy as np
>>> from neas.search_spaces import create_space, sample
>>> from neas.nn.builder import static_ensemble
>>> space = create_space("mlp", in_channels=6, num_classes=3, width_mult=0.125)
>>> arch = sample(space, np.random.default_rng(0))
>>> net = static_ensemble(space, arch)
>>> fresh = initialise(copy.deepcopy(net), space, arch, init="branches", seed=0)
>>> same = lambda a, b: all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
>>> same(fresh.trunk, net.trunk), same(fresh.branches[0], net.branches[0])
(True, False)
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from neas.config import FINAL_INITS, FINAL_PERTURB, TrainConfig
from neas.errors import ConfigError, RunDirError
from neas.files import atomic_torch_save
from neas.nn.builder import static_ensemble
from neas.nn.layers import EnsembleNet
from neas.search_spaces.arch import EnsembleArch
from neas.search_spaces.spec import SearchSpace
from neas.torchfile import read_torch_file
from neas.training.loop import (
    LossFn,
    SaveClock,
    TrainState,
    fit,
    make_optimizer,
    memory_format,
    random_shift,
    seeded_rng,
)

FINAL_CHECKPOINT_FORMAT = 1


def member_seed(seed: int, member: int) -> int:
    """The seed of member ``member``'s fresh weights and data order (member 0: ``seed``)."""
    return seed if member == 0 else seed * 1_000_003 + 7919 * member


def initialise(
    net: EnsembleNet, space: SearchSpace, arch: EnsembleArch, *, init: str, seed: int
) -> EnsembleNet:
    """``net`` (built from the supernet; changed in place for ``branches`` and ``perturb``)
    with the starting weights ``init`` asks for; the caller's random stream is left as it was
    (module doc)."""
    if init not in FINAL_INITS:
        raise ConfigError(f"unknown final init {init!r}; valid: {', '.join(FINAL_INITS)}")
    if init == "inherit":
        return net
    if init == "scratch":
        with seeded_rng(seed):
            return static_ensemble(space, arch)
    for m, branch in enumerate(net.branches):
        with seeded_rng(member_seed(seed, m) + 1):
            fresh = static_ensemble(space, arch).branches[m]
        if init == "branches":
            branch.load_state_dict(fresh.state_dict())
            continue
        with torch.no_grad():  # perturb: BN running statistics stay inherited
            for p, q in zip(branch.parameters(), fresh.parameters(), strict=True):
                p.mul_(1.0 - FINAL_PERTURB).add_(q.to(p.device, p.dtype), alpha=FINAL_PERTURB)
    return net


def final_config(config: TrainConfig, *, epochs: int, init: str) -> TrainConfig:
    """The training settings of the final stage: the run's, its learning rate included, for
    ``epochs`` epochs. Inherited weights start at the peak rate (no warm-up); fresh ones warm
    up as the run did (``fit`` caps a warm-up at ``WARMUP_MAX_SHARE`` of the epochs). Inherited
    weights once trained at a third of the rate: measured worse (README, "Final training")."""
    if init == "inherit":
        return replace(config, epochs=epochs, warmup_epochs=0.0)
    return replace(config, epochs=epochs)


def member_loss(
    x: torch.Tensor, y: torch.Tensor, *, config: TrainConfig, seed: int, num_members: int
) -> LossFn:
    """Sum of the members' cross-entropies, each member on its own batch, trunk gradient / K
    (module doc). ``x``, ``y`` are the training data the loop draws member 0's batches from."""
    n, batch = len(x), config.batch_size
    fmt = memory_format(config)
    orders: dict[tuple[int, int], tuple[torch.Tensor, torch.Generator]] = {}

    def batch_of(member: int, epoch: int, step: int, device: torch.device):
        if (member, epoch) not in orders:  # one permutation per member and epoch, kept for it
            for stale in [k for k in orders if k[1] != epoch]:
                del orders[stale]
            gen = torch.Generator().manual_seed(member_seed(seed, member) * 1_000_003 + epoch)
            orders[member, epoch] = (torch.randperm(n, generator=gen), gen)
        perm, gen = orders[member, epoch]
        idx = perm[step * batch : (step + 1) * batch]
        xb = random_shift(x[idx], gen) if config.augment else x[idx]
        return xb.to(device).contiguous(memory_format=fmt), y[idx].to(device)

    def loss_fn(
        model: torch.nn.Module, xb: torch.Tensor, yb: torch.Tensor, epoch: int, step: int
    ) -> tuple[torch.Tensor, int]:
        if step == 0:  # dropout's stream, the same after a resume
            torch.manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))
        total = torch.zeros((), device=xb.device)
        for m, branch in enumerate(model.branches):
            xm, ym = (xb, yb) if m == 0 else batch_of(m, epoch, step, xb.device)
            h = model.trunk(model.stem(xm))
            if num_members > 1 and h.requires_grad:
                h.register_hook(lambda g: g / num_members)
            logits = branch(h)
            total = total + F.cross_entropy(
                logits.float(), ym, label_smoothing=config.label_smoothing
            )
        return total, num_members

    return loss_fn


@dataclass(frozen=True)
class FinalResult:
    net: EnsembleNet
    seconds: float
    epochs: int
    resumed_from: int  # epochs a checkpoint already held
    best_epoch: int | None = None  # with early stopping: the epoch kept (0: the start)
    refit_rows: int = 0  # rows ``net`` was refitted on (0: no refit; ``net`` is the kept one)
    held_out: EnsembleNet | None = None  # with a refit: the early-stopped ensemble before it


def refit_checkpoint(checkpoint: Path) -> Path:
    """Where the refit's checkpoint is written, beside the stage's ``checkpoint``."""
    return checkpoint.with_name(f"{checkpoint.stem}-refit{checkpoint.suffix}")


def val_score(net: EnsembleNet, x: torch.Tensor, y: torch.Tensor, device) -> tuple[float, float]:
    """(accuracy, -NLL) of the ensemble's averaged probabilities on (``x``, ``y``): larger is
    better, accuracy first and the likelihood breaking its ties (small validation sets)."""
    net.eval()
    with torch.no_grad():
        chunks = [net(x[i : i + 1024].to(device)).float().cpu() for i in range(0, len(x), 1024)]
        probs = torch.cat(chunks)
    acc = float((probs.argmax(1) == y).float().mean())
    nll = float(F.nll_loss(probs.clamp_min(1e-12).log(), y))
    return acc, -nll


def final_train(
    net: EnsembleNet,
    space: SearchSpace,
    arch: EnsembleArch,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    init: str,
    config: TrainConfig,
    device: torch.device | str = "cpu",
    checkpoint: Path | None = None,
    show_progress: bool = False,
    stop_after: int | None = None,
    patience: int = 0,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    time_share: Callable[[], float] | None = None,
    refit: bool = False,
) -> FinalResult:
    """Train ``net`` (built from the supernet for ``arch``) as the final stage: ``init`` picks
    its starting weights, then ``epochs`` epochs of per-member training (module doc). With a
    ``checkpoint`` path, each epoch is saved there and a matching checkpoint is resumed;
    ``stop_after`` ends after that many epochs in total (a refit's included), as if killed
    (tests).

    Early stopping (``patience`` > 0 and ``val`` = (x, y)): after every epoch the ensemble is
    scored on ``val`` (``val_score``); training ends when ``patience`` epochs have not beaten
    the best, and the best weights are returned, ``net`` as given included (epoch 0, before
    ``init`` replaces any weight): the stage never returns an ensemble that scores worse on
    validation than the supernet's own weights. ``refit`` (with early stopping, and a best
    epoch past the start): then the refit of the module doc, checkpointed beside
    ``checkpoint`` (``refit_checkpoint``). ``time_share()`` (a time limit): the share
    of the stage's training time spent; the learning rate anneals by it when it is ahead of the
    epochs, and training ends when it reaches 1 (``fit``), so ``epochs`` is then a bound; a
    time limit plans one training, so it does not refit."""
    if epochs < 1:
        raise ConfigError(f"--final-epochs must be at least 1 to train, got {epochs}")
    early = patience > 0 and val is not None
    refit = refit and early and time_share is None
    cfg = final_config(config, epochs=epochs, init=init)
    key = {"arch": arch.to_json(space), "init": init, "epochs": epochs, "seed": cfg.seed}
    if early:
        key["patience"] = patience
    if init == "perturb":
        key["perturb"] = FINAL_PERTURB
    vx, vy = (torch.from_numpy(np.asarray(a)) for a in val) if early else (None, None)
    best: dict[str, Any] | None = None
    if early:  # the weights as given (the supernet's) are the first candidate, whatever init
        best = {
            "epoch": 0,
            "score": list(val_score(net.to(device), vx, vy, device)),
            "model": _snapshot(net),
        }
    given = best["model"] if refit else None  # the refit starts from them again
    net = initialise(net, space, arch, init=init, seed=cfg.seed)
    state, optimizer, saved = _resume(net, checkpoint, key, cfg, device)
    best = saved.get("best", best)
    resumed = state.epoch

    clock, last = SaveClock(), epochs if stop_after is None else min(epochs, stop_after)

    def save(model: torch.nn.Module, opt: torch.optim.Optimizer, st: TrainState):
        nonlocal best
        if early:
            score = list(val_score(model, vx, vy, device))
            st.history[-1]["val_accuracy"], st.history[-1]["val_nll"] = score[0], -score[1]
            if score > best["score"]:
                best = {"epoch": st.epoch, "score": score, "model": _snapshot(model)}
            st.stop = st.stop or st.epoch - best["epoch"] >= patience
        if checkpoint is not None and clock.due(force=st.stop or st.epoch >= last):
            _save_checkpoint(checkpoint, key, model, opt, st, best if early else None)
        return model, opt

    tx, ty = torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(y))
    t0 = time.perf_counter()
    if early and state.epoch and state.epoch - best["epoch"] >= patience:
        state.stop = True  # a checkpoint written when it stopped: nothing left to train
    net, state = _fit(
        net, tx, ty, cfg, device=device, optimizer=optimizer, state=state,
        stop_after=stop_after, on_epoch_end=save, description=f"final training ({init})",
        show_progress=show_progress, time_share=time_share,
    )  # fmt: skip
    if not early:
        return FinalResult(net.eval(), time.perf_counter() - t0, state.epoch, resumed)
    net.load_state_dict(best["model"])
    kept, trained = int(best["epoch"]), state.epoch
    left = None if stop_after is None else stop_after - trained
    finished = state.stop or trained >= epochs
    if given is None or kept == 0 or not finished or (left is not None and left < 1):
        return FinalResult(net.eval(), time.perf_counter() - t0, trained, resumed, kept)
    held_out = copy.deepcopy(net).eval()
    net.load_state_dict(given)
    net = initialise(net, space, arch, init=init, seed=cfg.seed)  # the same draws as above
    rx, ry = torch.cat([tx, vx]), torch.cat([ty, vy])
    rkey = key | {"refit_epochs": kept, "refit_rows": len(rx)}
    path = None if checkpoint is None else refit_checkpoint(checkpoint)
    state, optimizer, _ = _resume(net, path, rkey, cfg, device)
    rlast = kept if left is None else min(kept, left)

    def save_refit(model: torch.nn.Module, opt: torch.optim.Optimizer, st: TrainState):
        if path is not None and clock.due(force=st.epoch >= rlast):
            _save_checkpoint(path, rkey, model, opt, st, None)
        return model, opt

    net, state = _fit(
        net, rx, ry, cfg, device=device, optimizer=optimizer, state=state, stop_after=rlast,
        on_epoch_end=save_refit, description=f"final training ({init}, refit on {len(rx):,} rows)",
        show_progress=show_progress,
    )  # fmt: skip
    return FinalResult(
        net.eval(), time.perf_counter() - t0, trained, resumed, kept, len(rx), held_out
    )


def _fit(
    net: EnsembleNet,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
    **kwargs: Any,
) -> tuple[EnsembleNet, TrainState]:
    """``fit`` with the members' loss (``member_loss``) on (``x``, ``y``), seeded by ``cfg``;
    ``kwargs`` go to ``fit`` (device, optimizer, state, hooks, progress)."""
    loss_fn = member_loss(x, y, config=cfg, seed=cfg.seed, num_members=len(net.branches))
    with seeded_rng(cfg.seed, kwargs.get("device", "cpu")):
        net, _, state = fit(net, x, y, config=cfg, loss_fn=loss_fn, **kwargs)
    return net, state


def _resume(
    net: EnsembleNet, path: Path | None, key: dict[str, Any], cfg: TrainConfig, device
) -> tuple[TrainState, torch.optim.Optimizer | None, dict[str, Any]]:
    """(state, optimizer, checkpoint) where ``path`` holds a checkpoint of ``key``, its weights
    loaded into ``net``; a fresh state, no optimizer and ``{}`` otherwise."""
    saved = _read_checkpoint(path) if path is not None and path.is_file() else None
    if saved is None or saved.get("key") != key:
        return TrainState(), None, {}
    net.load_state_dict(saved["model"])
    optimizer = make_optimizer(net.to(device), cfg)
    optimizer.load_state_dict(saved["optimizer"])
    return TrainState(epoch=int(saved["epoch"]), history=list(saved["history"])), optimizer, saved


def _save_checkpoint(
    path: Path,
    key: dict[str, Any],
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    state: TrainState,
    best: dict[str, Any] | None,
) -> None:
    atomic_torch_save(
        {
            "format": FINAL_CHECKPOINT_FORMAT,
            "key": key,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "epoch": state.epoch,
            "history": state.history,
            **({"best": best} if best is not None else {}),
        },
        path,
    )


def epoch_seconds(
    net: EnsembleNet,
    space: SearchSpace,
    arch: EnsembleArch,
    x: np.ndarray,
    y: np.ndarray,
    *,
    init: str,
    config: TrainConfig,
    device: torch.device | str = "cpu",
    val: tuple[np.ndarray, np.ndarray] | None = None,
) -> float:
    """Seconds one epoch of ``final_train`` takes here: two timed steps of its loss (after one
    warm-up) on a copy of ``net``, times the steps of an epoch, plus one validation score when
    ``val`` is given (early stopping). Nothing of ``net`` or the caller's RNG changes."""
    cfg = final_config(config, epochs=1, init=init)
    tx, ty = torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(y))
    fmt, batch = memory_format(cfg), min(cfg.batch_size, len(tx))
    with seeded_rng(cfg.seed, device):
        probe = initialise(copy.deepcopy(net), space, arch, init=init, seed=cfg.seed)
        probe = probe.to(device, memory_format=fmt).train()
        loss_fn = member_loss(tx, ty, config=cfg, seed=cfg.seed, num_members=len(probe.branches))
        opt = make_optimizer(probe, cfg)
        xb, yb = tx[:batch].to(device).contiguous(memory_format=fmt), ty[:batch].to(device)
        times = []
        for step in range(3):
            t0 = time.perf_counter()
            loss, _ = loss_fn(probe, xb, yb, 0, step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
        seconds = float(np.median(times[1:])) * max(1, len(tx) // cfg.batch_size)
        if val is not None:
            t0 = time.perf_counter()
            val_score(probe, *(torch.from_numpy(np.asarray(a)) for a in val), device)
            seconds += time.perf_counter() - t0
    return seconds


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``model``'s weights on the CPU (the best epoch so far)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _read_checkpoint(path: Path) -> dict[str, Any] | None:
    """A final-stage checkpoint, or ``None`` when it is not one (it is then trained anew)."""
    try:
        saved = read_torch_file(path, error=RunDirError, advice="it is trained again")
    except RunDirError:
        return None
    needed = ("format", "key", "model", "optimizer", "epoch", "history")
    if not isinstance(saved, dict) or any(k not in saved for k in needed):
        return None
    return saved

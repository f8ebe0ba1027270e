"""The final training stage (``neas.deploy.final``): per-member losses, the trunk's gradient
divided by K, each init's starting weights, resume after a kill, and ONNX parity after it."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neas.config import FINAL_INITS, FINAL_PERTURB, TrainConfig
from neas.deploy import export_run
from neas.deploy.final import (
    final_config,
    final_train,
    initialise,
    member_loss,
    member_seed,
    refit_checkpoint,
)
from neas.deploy.final import val_score as final_val_score
from neas.nn.builder import static_ensemble
from neas.pipeline import train
from neas.search_spaces import EnsembleArch, create_space
from neas.training.loop import seeded_rng
from tests.conftest import tiny_run, write_pareto

SPACE = create_space("mlp", in_channels=6, num_classes=3, width_mult=0.125, num_members=3)


def _arch(split: int) -> EnsembleArch:
    layers = SPACE.num_layers
    return EnsembleArch(
        split=split,
        shared=tuple([0] * split),
        members=tuple(tuple([m % len(SPACE.ops)] * (layers - split)) for m in range(3)),
    )


def _data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 6, 1, 1, generator=g), torch.randint(0, 3, (n,), generator=g)


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(p, q) for p, q in zip(a, b))


def test_loss_is_the_sum_of_member_losses_and_the_trunk_gets_their_mean_gradient() -> None:
    """Each member's branch gets the gradient of its own loss on its own batch; the trunk (and
    stem) the mean over the members of theirs, not the sum."""
    arch = _arch(split=2)
    with seeded_rng(0):
        net = static_ensemble(SPACE, arch).eval()  # eval: BN and dropout fixed, exact grads
    x, y = _data()
    cfg = TrainConfig(batch_size=16, augment=False, channels_last=False, label_smoothing=0.0)
    loss_fn = member_loss(x, y, config=cfg, seed=5, num_members=3)
    xb, yb = x[:16], y[:16]
    loss, terms = loss_fn(net, xb, yb, 0, 0)
    assert terms == 3
    net.zero_grad()
    loss.backward()
    got = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}

    # by hand: member m's batch, its own loss, its own gradient
    gen_batches = [(xb, yb)]
    for m in (1, 2):
        gen = torch.Generator().manual_seed(member_seed(5, m) * 1_000_003 + 0)
        idx = torch.randperm(len(x), generator=gen)[:16]
        gen_batches.append((x[idx], y[idx]))
    assert not torch.equal(gen_batches[1][0], xb)  # members see other batches
    expected: dict[str, torch.Tensor] = {}
    total = 0.0
    for m, (xm, ym) in enumerate(gen_batches):
        ref = copy.deepcopy(net)
        ref.zero_grad()
        loss_m = F.cross_entropy(ref.branches[m](ref.trunk(ref.stem(xm))), ym)
        total += loss_m.item()
        loss_m.backward()
        for name, p in ref.named_parameters():
            if p.grad is None:
                continue
            shared = name.startswith(("stem.", "trunk."))
            part = p.grad / 3 if shared else p.grad
            expected[name] = expected.get(name, torch.zeros_like(p)) + part
    assert loss.item() == pytest.approx(total, rel=1e-5)
    assert got.keys() == expected.keys()
    for name in got:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("init", FINAL_INITS)
def test_each_init_gives_the_members_their_intended_starting_weights(init: str) -> None:
    arch = _arch(split=2)
    with seeded_rng(1):
        inherited = static_ensemble(SPACE, arch)
        for buf in inherited.buffers():  # BN statistics as a trained supernet's, not fresh 0/1
            if buf.is_floating_point():
                buf.uniform_(0.5, 1.5)
    rng = torch.get_rng_state()
    net = initialise(copy.deepcopy(inherited), SPACE, arch, init=init, seed=3)
    again = initialise(copy.deepcopy(inherited), SPACE, arch, init=init, seed=3)
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's stream is untouched
    assert _same(_params(net), _params(again))  # the seed fixes them
    trunk = _params(net.stem) + _params(net.trunk)
    old_trunk = _params(inherited.stem) + _params(inherited.trunk)
    members = [_params(b) for b in net.branches]
    old_members = [_params(b) for b in inherited.branches]
    if init == "inherit":
        assert _same(trunk, old_trunk) and all(map(_same, members, old_members))
    elif init == "branches":
        assert _same(trunk, old_trunk)
        assert not any(map(_same, members, old_members))
        assert not _same(members[1], members[2])  # each member its own initialisation
    elif init == "perturb":  # halfway between the inherited and the "branches" weights
        assert _same(trunk, old_trunk)
        fresh = initialise(copy.deepcopy(inherited), SPACE, arch, init="branches", seed=3)
        for b, old, new in zip(net.branches, inherited.branches, fresh.branches):
            for p, q, r in zip(b.parameters(), old.parameters(), new.parameters()):
                torch.testing.assert_close(p, (1 - FINAL_PERTURB) * q + FINAL_PERTURB * r)
            assert _same(list(b.buffers()), list(old.buffers()))  # BN statistics inherited
        assert not _same(members[1], members[2])
    else:
        assert not _same(trunk, old_trunk) and not any(map(_same, members, old_members))
        with seeded_rng(3):
            assert _same(_params(net), _params(static_ensemble(SPACE, arch)))


def test_a_resumed_final_stage_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    arch = _arch(split=1)
    with seeded_rng(2):
        start = static_ensemble(SPACE, arch)
    x, y = (t.numpy() for t in _data(96))
    cfg = TrainConfig(batch_size=16, channels_last=False, seed=4)
    kwargs = dict(epochs=3, init="branches", config=cfg)
    whole = final_train(copy.deepcopy(start), SPACE, arch, x, y, **kwargs)
    ckpt = tmp_path / "final.pt"
    cut = final_train(
        copy.deepcopy(start), SPACE, arch, x, y, checkpoint=ckpt, stop_after=2, **kwargs
    )
    assert cut.epochs == 2 and ckpt.is_file()
    resumed = final_train(copy.deepcopy(start), SPACE, arch, x, y, checkpoint=ckpt, **kwargs)
    assert resumed.resumed_from == 2 and resumed.epochs == 3
    assert _same(_params(resumed.net), _params(whole.net))
    other = final_train(
        copy.deepcopy(start), SPACE, arch, x, y, checkpoint=ckpt, **{**kwargs, "init": "scratch"}
    )
    assert other.resumed_from == 0  # a checkpoint of another init is not resumed


def test_early_stopping_keeps_the_best_epoch_and_never_loses_to_the_start(tmp_path: Path) -> None:
    """With ``patience`` and validation data the stage stops once ``patience`` epochs have not
    beaten the best, returns the best weights (the start is a candidate: labels that are noise
    cannot be learnt, so training only overfits), and a kill and resume changes nothing."""
    arch = _arch(split=1)
    with seeded_rng(2):
        start = static_ensemble(SPACE, arch)
    x, y = (t.numpy() for t in _data(96))
    vx, vy = (t.numpy() for t in _data(48))
    vy = np.random.default_rng(0).integers(0, 3, len(vy))  # noise: nothing generalises
    cfg = TrainConfig(batch_size=16, channels_last=False, seed=4, augment=False)
    kwargs = dict(epochs=30, init="inherit", config=cfg, patience=2, val=(vx, vy))
    done = final_train(copy.deepcopy(start), SPACE, arch, x, y, **kwargs)
    assert done.epochs < 30 and done.epochs - done.best_epoch == 2
    score = final_val_score(done.net, torch.from_numpy(vx), torch.from_numpy(vy), "cpu")
    assert score >= final_val_score(start, torch.from_numpy(vx), torch.from_numpy(vy), "cpu")
    if done.best_epoch == 0:
        assert _same(_params(done.net), _params(start))
    ckpt = tmp_path / "final.pt"
    cut = final_train(copy.deepcopy(start), SPACE, arch, x, y, checkpoint=ckpt, stop_after=1,
                      **kwargs)  # fmt: skip
    assert cut.epochs == 1
    resumed = final_train(copy.deepcopy(start), SPACE, arch, x, y, checkpoint=ckpt, **kwargs)
    assert (resumed.epochs, resumed.best_epoch) == (done.epochs, done.best_epoch)
    assert _same(_params(resumed.net), _params(done.net))
    again = final_train(copy.deepcopy(start), SPACE, arch, x, y, checkpoint=ckpt, **kwargs)
    assert again.resumed_from == done.epochs and _same(_params(again.net), _params(done.net))
    # fresh branches: the weights as given (the supernet's) still compete as epoch 0
    fresh = final_train(copy.deepcopy(start), SPACE, arch, x, y, **{**kwargs, "init": "branches"})
    vxt, vyt = torch.from_numpy(vx), torch.from_numpy(vy)
    assert final_val_score(fresh.net, vxt, vyt, "cpu") >= final_val_score(start, vxt, vyt, "cpu")


def _rule_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose class is a fixed linear rule of their features: learnable, so early
    stopping keeps an epoch past the start."""
    x = torch.randn(n, 6, 1, 1, generator=torch.Generator().manual_seed(seed))
    w = torch.randn(6, 3, generator=torch.Generator().manual_seed(99))
    return x.numpy(), (x.flatten(1) @ w).argmax(1).numpy()


def test_refit_trains_the_same_start_on_train_and_val_for_the_kept_epochs(tmp_path: Path) -> None:
    """``refit``: the early-stopped stage is trained again from the same starting weights on
    the training and validation rows together, for exactly the epochs early stopping kept, on
    the same schedule; the early-stopped ensemble comes back as ``held_out``; a kill during
    the refit resumes to the same weights; under a time limit it does not refit."""
    arch = _arch(split=1)
    with seeded_rng(2):
        start = static_ensemble(SPACE, arch)
    (x, y), (vx, vy) = _rule_data(96, 0), _rule_data(48, 1)
    cfg = TrainConfig(batch_size=16, channels_last=False, seed=4, augment=False)
    kwargs = dict(epochs=12, init="branches", config=cfg, patience=3, val=(vx, vy))
    kept = final_train(copy.deepcopy(start), SPACE, arch, x, y, **kwargs)
    assert kept.best_epoch >= 2 and kept.refit_rows == 0 and kept.held_out is None
    done = final_train(copy.deepcopy(start), SPACE, arch, x, y, refit=True, **kwargs)
    assert (done.epochs, done.best_epoch, done.refit_rows) == (kept.epochs, kept.best_epoch, 144)
    assert _same(_params(done.held_out), _params(kept.net))
    rows = (np.concatenate([x, vx]), np.concatenate([y, vy]))
    plain = dict(epochs=12, init="branches", config=cfg, stop_after=kept.best_epoch)
    by_hand = final_train(copy.deepcopy(start), SPACE, arch, *rows, **plain)
    assert by_hand.epochs == kept.best_epoch
    assert _same(_params(done.net), _params(by_hand.net))
    assert not _same(_params(done.net), _params(kept.net))
    ckpt = tmp_path / "final.pt"
    cut = final_train(copy.deepcopy(start), SPACE, arch, x, y, checkpoint=ckpt, refit=True,
                      stop_after=kept.epochs + 1, **kwargs)  # fmt: skip
    assert refit_checkpoint(ckpt).is_file() and cut.refit_rows == 144
    resumed = final_train(
        copy.deepcopy(start), SPACE, arch, x, y, checkpoint=ckpt, refit=True, **kwargs
    )
    assert resumed.resumed_from == kept.epochs and resumed.refit_rows == 144
    assert _same(_params(resumed.net), _params(done.net))
    timed = final_train(
        copy.deepcopy(start), SPACE, arch, x, y, refit=True, time_share=lambda: 0.0, **kwargs
    )
    assert timed.refit_rows == 0 and timed.held_out is None


def test_every_init_trains_at_the_run_rate_fresh_ones_with_warm_up() -> None:
    cfg = TrainConfig().settled(rows=1_000, table=False)
    inherited = final_config(cfg, epochs=4, init="inherit")
    assert inherited.base_lr == cfg.base_lr and inherited.warmup_epochs == 0.0
    fresh = final_config(cfg, epochs=4, init="scratch")
    assert fresh.base_lr == cfg.base_lr and fresh.warmup_epochs == 1.0
    assert replace(fresh, warmup_epochs=cfg.warmup_epochs, epochs=cfg.epochs) == cfg


@pytest.mark.slow
def test_exported_onnx_matches_pytorch_after_final_training(tmp_path: Path) -> None:
    run = train(out=tmp_path / "run", config=tiny_run(summary_samples=0), show_progress=False)
    write_pareto(run.path, n=1)
    (folder,) = export_run(
        run.path, select="e000", final_epochs=1, final_init="branches", cascade=False,
        show_progress=False,
    )  # fmt: skip
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["final"]["init"] == "branches"
    assert manifest["onnx"]["parity_max_abs_diff"] <= 1e-4  # checked on real validation images
    assert np.isfinite(manifest["accuracy"]["val"])

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from neas.checkpoint import load_checkpoint
from neas.config import ShrinkConfig, TrainConfig
from neas.data import load_dataset
from neas.errors import ConfigError
from neas.evaluate import ensemble_metrics, recalibrate_bn
from neas.files import read_json
from neas.layout import SHRINK_HISTORY as HISTORY
from neas.layout import SHRINK_PLOT as PLOT
from neas.nn import Supernet
from neas.search_spaces import SKIP, EnsembleArch, sample
from neas.shrink import (
    Shrinker,
    ShrinkRecord,
    score_ops,
    select_drops,
    shrink_space,
    shrink_supernet,
)
from neas.training import train_supernet
from tests.conftest import tiny_space

LAYER = 5  # the layer whose ops the hand-made records tell apart


def arch_with(op: int) -> EnsembleArch:
    """Both members run op 0 everywhere except ``op`` at ``LAYER``; nothing is shared."""
    ops = tuple(op if i == LAYER else 0 for i in range(20))
    return EnsembleArch(split=0, shared=(), members=(ops, ops))


def logits_from(correct: list[list[bool]], y: torch.Tensor, *, wrong: float) -> torch.Tensor:
    """Member logits (K, N, 10): 6 on the label where correct, else ``wrong`` on another class."""
    out = torch.zeros(len(correct), len(y), 10)
    for m, mask in enumerate(correct):
        for n, ok in enumerate(mask):
            out[m, n, y[n] if ok else (y[n] + 1) % 10] = 6.0 if ok else wrong
    return out


def test_diverse_accurate_op_beats_identical_members() -> None:
    y = torch.arange(10) % 10
    # op 1: members right on different samples -> ensemble right everywhere, high disagreement
    diverse = ensemble_metrics(
        logits_from([[i < 7 for i in range(10)], [i >= 3 for i in range(10)]], y, wrong=4.0), y
    )
    # op 2: two identical members, right on 8 of 10
    same = [i < 8 for i in range(10)]
    identical = ensemble_metrics(logits_from([same, same], y, wrong=6.0), y)
    assert diverse.accuracy > identical.accuracy and diverse.disagreement > 0.5
    assert identical.disagreement == 0.0
    records = [
        ShrinkRecord(arch_with(1), diverse.accuracy, diverse.disagreement),
        ShrinkRecord(arch_with(2), identical.accuracy, identical.disagreement),
    ]
    for weight in (0.0, 1.0):
        s = score_ops(records, tiny_space(), diversity_weight=weight)
        assert s[(LAYER, 1)].score > s[(LAYER, 2)].score
        assert s[(LAYER, 1)].n == s[(LAYER, 2)].n == 1
        assert s[(LAYER, 0)].n == 0 and math.isnan(s[(LAYER, 0)].score)  # unused: no score
        assert s[(0, 0)].n == 2  # op 0 elsewhere is used by both ensembles


def test_diversity_weight_trades_accuracy_for_disagreement() -> None:
    records = [
        ShrinkRecord(arch_with(3), 0.90, 0.0),  # slightly more accurate, identical members
        ShrinkRecord(arch_with(4), 0.85, 0.6),  # a bit less accurate, members disagree a lot
        ShrinkRecord(arch_with(1), 0.70, 0.1),  # (with only two records p and d would be
        ShrinkRecord(arch_with(2), 0.95, 0.05),  # exactly anti-correlated and cancel at λ=1)
    ]
    space = tiny_space()
    plain = score_ops(records, space, diversity_weight=0.0)
    guided = score_ops(records, space, diversity_weight=1.0)
    assert plain[(LAYER, 3)].score > plain[(LAYER, 4)].score
    assert guided[(LAYER, 4)].score > guided[(LAYER, 3)].score
    assert guided[(LAYER, 4)].potentiality == pytest.approx(0.85)
    assert guided[(LAYER, 4)].diversity == pytest.approx(0.6)


def test_select_drops_never_empties_a_layer() -> None:
    rng = np.random.default_rng(0)
    for _ in range(2000):
        pool = [*range(6), SKIP]
        cands = [int(c) for c in rng.permutation(pool)[: rng.integers(1, 8)]]
        if all(c == SKIP for c in cands):
            continue
        scores = [float("nan") if rng.random() < 0.2 else float(v) for v in rng.normal(size=7)]
        ratio, min_ops = float(rng.random() * 0.999), int(rng.integers(1, 5))
        dropped = select_drops(cands, scores[: len(cands)], ratio=ratio, min_ops=min_ops)
        kept = [c for c in cands if c not in dropped]
        assert set(dropped) <= set(cands) and len(set(dropped)) == len(dropped)
        assert len(dropped) <= math.floor(ratio * len(cands) + 1e-9)
        assert len(kept) >= min(min_ops, len(cands)) and any(c != SKIP for c in kept)
        assert not any(math.isnan(scores[cands.index(c)]) for c in dropped)


def test_repeated_shrinking_keeps_every_layer_valid() -> None:
    rng = np.random.default_rng(1)
    space = tiny_space()
    for _ in range(8):
        scores = {
            (i, op): replace_score(float(rng.normal()))
            for i, layer in enumerate(space.layers)
            for op in layer.candidates
        }
        if rng.random() < 0.5:  # an all-skip-favouring scorer must still keep a real op
            scores.update({(i, SKIP): replace_score(9.0) for i in range(space.num_layers)})
        space, _ = shrink_space(space, scores, ratio=0.9, min_ops=1)
    for layer in space.layers:
        assert len(layer.candidates) >= 1 and any(c != SKIP for c in layer.candidates)


def replace_score(v: float):
    from neas.shrink import OpScore

    return OpScore(potentiality=v, diversity=v, score=v, n=1)


def smaller_space(space):
    """Even layers keep k3e4 + k7e6 (block unchanged), odd layers k3e4 + k5e4 (+skip)."""
    cands = []
    for i, layer in enumerate(space.layers):
        keep = (0, 5) if i % 2 == 0 else (0, 2)
        cands.append(tuple(c for c in layer.candidates if c in keep or c == SKIP))
    return space.with_candidates(tuple(cands))


@pytest.mark.parametrize("weights", ["entangled", "separate", "members"])
def test_shrunk_supernet_computes_the_same_and_reloads(weights: str) -> None:
    torch.manual_seed(0)
    space = tiny_space()
    net = Supernet(space, weights=weights)
    with torch.no_grad():  # non-trivial BN affine params and buffers, so a wrong slice shows
        for p in net.parameters():
            if p.ndim == 1:
                p.uniform_(0.5, 1.5)
    small = smaller_space(space)
    x = torch.randn(16, 1, 8, 8)
    rng = np.random.default_rng(0)
    for _ in range(3):
        arch = sample(small, rng)
        recalibrate_bn(net, arch, x)
        shrunk = shrink_supernet(net, small)
        fresh = Supernet(small, weights=weights)
        fresh.load_state_dict(shrunk.state_dict())  # resume rebuilds from the space
        with torch.no_grad():
            expected = net.eval()(x, arch)
            for model in (shrunk.eval(), fresh.eval()):
                for a, b in zip(expected, model(x, arch)):
                    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    before = sum(p.numel() for p in net.parameters())
    after = sum(p.numel() for p in shrunk.parameters())
    assert shrunk.space == small and after < before
    for i, (old, new) in enumerate(zip(net.layers, shrunk.layers)):
        if weights == "separate":
            assert set(new.blocks) == {
                space.ops[c].name for c in small.layers[i].candidates if c >= 0
            }
            assert all(new.blocks[k] is old.blocks[k] for k in new.blocks)
        else:  # each entangled block object survives where the largest op did
            for key in new.blocks:
                assert (new.blocks[key] is old.blocks[key]) == (i % 2 == 0)
    if weights == "separate":
        dropped = sum(
            p.numel()
            for old, new in zip(net.layers, shrunk.layers)
            for k in set(old.blocks) - set(new.blocks)
            for p in old.blocks[k].parameters()
        )
        assert before - after == dropped


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"at": (0.0, 0.5)}, "(0, 1)"),
        ({"at": (0.5, 1.0)}, "(0, 1)"),
        ({"at": (0.6, 0.4)}, "increasing"),
        ({"at": (0.5, 0.5)}, "increasing"),
        ({"ratio": 1.0}, "empty a layer"),
        ({"ratio": -0.1}, "[0, 1)"),
        ({"min_ops": 0}, "--min-ops must be at least 1"),
        ({"samples": 1}, "--shrink-samples must be at least 2"),
    ],
)
def test_bad_shrink_config_is_a_config_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        ShrinkConfig(**kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_shrink_epochs_are_clamped_and_deduplicated() -> None:
    assert ShrinkConfig().epochs(30) == (9, 15, 21)
    assert ShrinkConfig(at=(0.01, 0.02, 0.99)).epochs(4) == (1, 3)
    assert ShrinkConfig().epochs(1) == ()


@pytest.fixture(scope="module")
def small_digits():
    ds = load_dataset("digits", seed=0, max_train=128)
    return replace(ds, x_val=ds.x_val[:120], y_val=ds.y_val[:120])


@pytest.mark.parametrize("weights", ["entangled", "separate", "members"])
def test_resume_across_a_shrink_step_equals_uninterrupted(tmp_path, small_digits, weights) -> None:
    x, y = torch.from_numpy(small_digits.x_train), torch.from_numpy(small_digits.y_train)
    config = TrainConfig(epochs=2, batch_size=32, seed=3)
    shrink_cfg = ShrinkConfig(at=(0.5,), ratio=0.5, samples=3)

    def run(folder, **kwargs):
        torch.manual_seed(0)
        hook = Shrinker(shrink_cfg, dataset=small_digits, run_dir=folder, show_progress=False)
        return train_supernet(
            Supernet(tiny_space(), weights=weights),
            x,
            y,
            config=config,
            show_progress=False,
            shrink_epochs=shrink_cfg.epochs(config.epochs),
            shrink=hook,
            **kwargs,
        )

    straight, _ = run(tmp_path / "a")
    ckpt = tmp_path / "b" / "ckpt.pt"
    run(tmp_path / "b", checkpoint=ckpt, stop_after=1)  # killed right after the shrink step
    saved = load_checkpoint(ckpt)
    assert saved["epoch"] == 1 and saved["space"] == straight.space.to_json()
    resumed, state = run(tmp_path / "b", checkpoint=ckpt, resume=True)
    assert state.epoch == 2 and resumed.space == straight.space != tiny_space()
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ha, hb = read_json(tmp_path / "a" / HISTORY), read_json(tmp_path / "b" / HISTORY)
    assert [s["epoch"] for s in ha["steps"]] == [1]
    assert ha["steps"][0]["layers"] == hb["steps"][0]["layers"]
    assert (tmp_path / "a" / PLOT).stat().st_size > 0
    step = ha["steps"][0]
    assert step["log10_size_after"] < step["log10_size_before"]
    if weights == "separate":
        assert step["params_after"] < step["params_before"]


def test_history_replaces_a_rerun_step(tmp_path, small_digits) -> None:
    torch.manual_seed(0)
    net = Supernet(tiny_space())
    hook = Shrinker(
        ShrinkConfig(samples=2, ratio=0.2),
        dataset=small_digits,
        run_dir=tmp_path,
        show_progress=False,
    )
    hook(net, 3)
    hook(net, 3)  # re-run after a resume: replaces, does not append
    hook(net, 5)
    steps = read_json(tmp_path / HISTORY)["steps"]
    assert [s["epoch"] for s in steps] == [3, 5]
    ops = steps[0]["layers"][0]["ops"]
    assert {"op", "potentiality", "diversity", "score", "n", "kept"} <= set(ops[0])

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from neas.cost import CostTable
from neas.deploy import DeployedEnsemble, InputSpec
from neas.deploy.cascade import cascade_exits, cascade_probs, choose_threshold, running_probs, sweep
from neas.nn import Supernet, build_ensemble
from neas.search_spaces import sample
from tests.conftest import tiny_space


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny nets run fastest on one thread; more oversubscribe a shared CPU."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def random_member_probs(k: int = 3, n: int = 200, c: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(k, n, c))
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_threshold_one_is_the_full_ensemble_and_zero_the_first_member() -> None:
    probs = random_member_probs()
    y = np.random.default_rng(1).integers(0, 10, 200)
    np.testing.assert_allclose(cascade_probs(probs, 1.0), probs.mean(0), atol=1e-12)
    np.testing.assert_allclose(cascade_probs(probs, 0.0), probs[0])
    table = sweep(probs, y, trunk_macs=100, member_macs=[10, 20, 30], thresholds=[0.0, 1.0])
    first, full = table.iloc[0], table.iloc[1]
    assert first["mean_macs"] == 110 and full["mean_macs"] == 160
    assert first["accuracy"] == (probs[0].argmax(-1) == y).mean()
    assert full["accuracy"] == (probs.mean(0).argmax(-1) == y).mean()
    assert first["exit_0"] == 1.0 and full["exit_2"] == 1.0


def test_exits_stop_at_the_first_confident_running_ensemble() -> None:
    probs = random_member_probs()
    t = 0.8
    exits = cascade_exits(probs, np.array([t]))[0]
    conf = running_probs(probs).max(-1)
    for i, e in enumerate(exits):
        assert all(conf[:e, i] <= t)
        assert e == 2 or conf[e, i] > t
    costs = sweep(probs, np.zeros(200, int), trunk_macs=0, member_macs=[1, 1, 1])
    assert costs["mean_macs"].is_monotonic_increasing  # thresholds ascend, cost never falls


def test_choose_threshold_is_the_cheapest_within_tolerance() -> None:
    table = pd.DataFrame(
        {
            "threshold": [0.0, 0.5, 0.9, 1.0],
            "accuracy": [0.80, 0.94, 0.96, 0.95],
            "mean_macs": [10.0, 12.0, 15.0, 20.0],
        }
    )
    assert choose_threshold(table, tolerance=0.005) == 0.9
    assert choose_threshold(table, tolerance=0.02) == 0.5
    assert choose_threshold(table, tolerance=0.0) == 0.9


@pytest.fixture(scope="module")
def deployed() -> DeployedEnsemble:
    torch.manual_seed(0)
    space = tiny_space(members=3)
    arch = sample(space, np.random.default_rng(2))
    net = build_ensemble(Supernet(space).eval(), arch).eval()
    spec = InputSpec((1, 8, 8), (0.0,), (1.0,), tuple(str(i) for i in range(10)))
    return DeployedEnsemble(
        net=net, arch=arch, space=space, input_spec=spec, cascade_threshold=None
    )


def test_loaded_cascade_matches_the_vectorised_sweep(deployed: DeployedEnsemble) -> None:
    x = torch.randn(64, 1, 8, 8) * 3
    member = torch.as_tensor(deployed.member_logits(x)).softmax(-1).double().numpy()
    full = deployed.predict_proba(x)
    np.testing.assert_allclose(deployed.predict_proba(x, cascade_threshold=1.0), full, atol=1e-6)
    np.testing.assert_array_equal(deployed.predict(x, cascade_threshold=1.0), deployed.predict(x))
    first = deployed.predict_proba(x, cascade_threshold=0.0)
    np.testing.assert_allclose(first, member[0], atol=1e-6)
    assert (deployed.members_run(x, cascade_threshold=0.0) == 1).all()
    assert (deployed.members_run(x, cascade_threshold=1.0) == 3).all()
    t = float(np.median(member[0].max(-1)))  # about half the samples stop after member 0
    used = deployed.members_run(x, cascade_threshold=t).numpy()
    exits = cascade_exits(member, np.array([t]))[0]
    np.testing.assert_array_equal(used, exits + 1)
    np.testing.assert_allclose(
        deployed.predict_proba(x, cascade_threshold=t), cascade_probs(member, t), atol=1e-6
    )
    table = CostTable.from_space(deployed.space)
    macs = [table.member(deployed.arch, m).macs for m in range(3)]
    swept = sweep(
        member,
        np.zeros(64, int),
        trunk_macs=table.trunk(deployed.arch).macs,
        member_macs=macs,
        thresholds=[0.0, t, 1.0],
    )
    mean_macs = table.trunk(deployed.arch).macs + np.mean([sum(macs[:u]) for u in used])
    assert swept["mean_macs"].iloc[1] == pytest.approx(mean_macs)
    assert swept["mean_macs"].iloc[2] == table.ensemble(deployed.arch).macs

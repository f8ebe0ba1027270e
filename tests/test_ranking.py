from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from neas.cli import app
from neas.config import TrainConfig
from neas.files import read_json
from neas.pipeline import train
from neas.ranking import (
    arch_only_space,
    fresh_ensemble,
    rank_correlations,
    tau_interval,
    train_standalone,
)
from neas.search_spaces import SKIP, EnsembleArch, sample
from neas.shrink import ops_used
from tests.conftest import tiny_run as tiny_config
from tests.conftest import tiny_space

runner = CliRunner()


def one_line_error(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]


def test_rank_without_trained_supernet_is_one_line_exit_2(tmp_path) -> None:
    one_line_error(runner.invoke(app, ["rank", str(tmp_path)]), "no trained supernet")
    one_line_error(runner.invoke(app, ["rank", str(tmp_path / "missing")]), "neas train")


def test_rank_correlations() -> None:
    est = np.array([0.1, 0.4, 0.2, 0.3])
    assert rank_correlations(est, est * 2) == (1.0, 1.0)
    assert rank_correlations(est, -est) == (-1.0, -1.0)
    assert all(math.isnan(v) for v in rank_correlations(est, np.ones(4)))


def test_tau_interval_covers_tau_and_narrows_with_n() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (15, 120):
        truth = rng.normal(size=n)
        est = truth + rng.normal(scale=0.7, size=n)
        tau, _ = rank_correlations(est, truth)
        low, high = tau_interval(est, truth, seed=0)
        assert low < tau < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2  # ~1/sqrt(n)
    assert all(math.isnan(v) for v in tau_interval(np.arange(2.0), np.arange(2.0)))


def test_standalone_training_does_not_depend_on_the_global_rng() -> None:
    space = tiny_space()
    arch = sample(space, np.random.default_rng(3))
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 3, (32,))
    nets = []
    for noise in (0, 1):
        torch.manual_seed(noise)  # whatever ran before must not change the result
        net = fresh_ensemble(space, arch, seed=5)
        nets.append(train_standalone(net, x, y, config=TrainConfig(epochs=1, batch_size=8), seed=5))
    for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values()):
        torch.testing.assert_close(a, b)


def test_fresh_ensemble_runs_exactly_the_arch() -> None:
    space = tiny_space()
    rng = np.random.default_rng(0)
    for _ in range(5):
        arch = sample(space, rng)
        small = arch_only_space(space, arch)
        for i, layer in enumerate(small.layers):
            assert (
                ops_used(arch, i) - {SKIP}
                <= set(layer.candidates)
                <= set(space.layers[i].candidates)
            )
        net = fresh_ensemble(space, arch, seed=1)
        again = fresh_ensemble(space, arch, seed=1)
        x = torch.randn(4, 1, 8, 8)
        net.eval(), again.eval()
        assert net.num_members == 2
        torch.testing.assert_close(net(x), again(x))  # seeded initialisation
    skips = tuple(0 if i % 4 == 0 else SKIP for i in range(20))  # skip wherever allowed
    only_skip = arch_only_space(space, EnsembleArch(split=20, shared=skips, members=((), ())))
    assert all(any(c != SKIP for c in layer.candidates) for layer in only_skip.layers)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rank") / "run"
    train(out=out, config=tiny_config(batch_size=16), show_progress=False)
    return out


def test_rank_writes_tau_rho_csv_and_plot(tiny_run) -> None:
    result = runner.invoke(app, ["rank", str(tiny_run), "--samples", "3", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert "Kendall tau" in result.output
    out = read_json(tiny_run / "ranking.json")
    assert len(out["rows"]) == 3 and out["samples"] == 3 and out["epochs"] == 2
    for key in ("kendall_tau", "spearman_rho"):
        assert isinstance(out[key], float) and -1.0 <= out[key] <= 1.0
    low, high = out["kendall_tau_ci95"]  # bootstrap; None only when every resample ties
    assert low is None or -1.0 <= low <= out["kendall_tau"] <= high <= 1.0
    for row in out["rows"]:
        assert 0.0 <= row["supernet_accuracy"] <= 1.0 and 0.0 <= row["standalone_accuracy"] <= 1.0
    assert (tiny_run / "ranking.csv").read_text().count("\n") == 4
    assert (tiny_run / "ranking.png").stat().st_size > 0


def test_rank_rejects_too_few_samples(tiny_run) -> None:
    one_line_error(runner.invoke(app, ["rank", str(tiny_run), "--samples", "2"]), "--samples")

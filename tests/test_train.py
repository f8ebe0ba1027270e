from __future__ import annotations

import numpy as np
import pytest
import torch

from neas.checkpoint import load_checkpoint
from neas.config import TrainConfig
from neas.data import load_dataset
from neas.nn import Supernet
from neas.pipeline import train
from neas.search_spaces import SearchSpace
from neas.training import step_arch, train_supernet
from tests.conftest import tiny_run, tiny_space


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def test_training_on_digits_learns(tmp_path) -> None:
    result = train(
        out=tmp_path / "run",
        config=tiny_run(epochs=6, max_train=None, summary_samples=4),
        show_progress=False,
    )
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.7 * losses[0]
    # an average random ensemble, BN recalibrated, is far above chance (10%)
    assert result.summary["random_val_accuracy_mean"] > 0.4
    for name in ("run.json", "config.json", "space.json", "supernet.pt", "train_summary.json"):
        assert (result.path / name).exists()
    ckpt = load_checkpoint(result.path / "supernet.pt")  # weights_only=True
    assert ckpt["epoch"] == 6 and SearchSpace.from_json(ckpt["space"]).num_layers == 20


@pytest.mark.parametrize("weights", ["entangled", "separate", "members"])
def test_resume_equals_uninterrupted(tmp_path, digits, weights: str) -> None:
    x = torch.from_numpy(digits.x_train[:256])
    y = torch.from_numpy(digits.y_train[:256])
    config = TrainConfig(epochs=2, batch_size=32, seed=3)

    def fresh() -> Supernet:
        torch.manual_seed(0)
        return Supernet(tiny_space(), weights=weights)

    straight, _ = train_supernet(fresh(), x, y, config=config, show_progress=False)
    ckpt = tmp_path / "ckpt.pt"
    train_supernet(fresh(), x, y, config=config, checkpoint=ckpt, show_progress=False, stop_after=1)
    assert load_checkpoint(ckpt)["epoch"] == 1
    torch.manual_seed(123)  # the resumed run must not depend on the caller's RNG state
    resumed, state = train_supernet(
        fresh(), x, y, config=config, checkpoint=ckpt, resume=True, show_progress=False
    )
    assert state.epoch == 2
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_step_architecture_is_shared_across_ranks_and_resumes() -> None:
    space = tiny_space()
    a = [step_arch(space, seed=5, epoch=e, step=s) for e in range(2) for s in range(3)]
    b = [step_arch(space, seed=5, epoch=e, step=s) for e in range(2) for s in range(3)]
    assert a == b and len(set(a)) == len(a)


def test_pipeline_refuses_to_overwrite_and_resumes(tmp_path) -> None:
    from neas.run import RunDirError

    out = tmp_path / "run"
    kwargs = dict(config=tiny_run(max_train=200), show_progress=False)
    first = train(out=out, **kwargs)
    with pytest.raises(RunDirError, match="--resume"):
        train(out=out, **kwargs)
    again = train(out=out, resume=True, **kwargs)
    assert again.summary == first.summary  # finished run: nothing retrained
    np.testing.assert_equal(
        again.supernet.state_dict()["stem.conv.0.weight"].cpu().numpy(),
        first.supernet.state_dict()["stem.conv.0.weight"].cpu().numpy(),
    )
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "precious.txt").write_text("keep me")
    with pytest.raises(RunDirError, match="not a neas run folder"):
        train(out=tmp_path / "other", force=True, **kwargs)
    assert (tmp_path / "other" / "precious.txt").read_text() == "keep me"


def test_members_weights_diverge_and_the_mode_round_trips(tmp_path) -> None:
    from typer.testing import CliRunner

    from neas.cli import app
    from neas.run import read_config

    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--weights", "members", "--epochs", "2", "--max-train",
            "200", "--width-mult", "0.25", "--head-width", "32", "--feature-width", "32",
            "--shrink-at", "none", "--threads", "1"]  # fmt: skip
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert read_config(out).train.weights == "members"
    ckpt = load_checkpoint(out / "supernet.pt")
    assert ckpt["weights"] == "members"
    w = ckpt["model"]
    for i in (0, 10, 19):
        a, b = (w[f"layers.{i}.blocks.m{m}.expand_weight"] for m in (0, 1))
        assert (a - b).abs().mean() > 1e-3 * a.abs().mean()
    again = CliRunner().invoke(app, ["train", "--out", str(out), "--resume"])
    assert again.exit_code == 0, again.output
    assert load_checkpoint(out / "supernet.pt")["weights"] == "members"

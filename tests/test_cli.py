from __future__ import annotations

import pytest
from typer.testing import CliRunner

from neas.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "--out", "{tmp}/r", "--space", "nope"], "valid spaces: mbconv"),
        (["train", "--out", "{tmp}/r", "--data", "{tmp}/missing.npz"], "missing.npz"),
        (["train", "--out", "{tmp}/r", "--data", "imagenet"], "digits"),
        (["train", "--out", "{tmp}/r", "--members", "0"], "--members"),
        (["train", "--out", "{tmp}/r", "--weights", "shared"], "entangled, separate"),
        (["train", "--out", "{tmp}/r", "--epochs", "0"], "epochs"),
        (["train", "--out", "{tmp}/r", "--shrink-at", "0.5,0.3"], "increasing"),
        (["train", "--out", "{tmp}/r", "--shrink-at", "0.2,1.5"], "(0, 1)"),
        (["train", "--out", "{tmp}/r", "--shrink-ratio", "1"], "empty a layer"),
        (["cost", "--neas-arch-list", "1,2,x"], "comma-separated"),
        (["cost"], "exactly one"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args: list[str], message: str) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "r").exists()  # nothing written on bad input


def test_spaces_lists_mbconv() -> None:
    result = runner.invoke(app, ["spaces"])
    assert result.exit_code == 0 and "mbconv" in result.output


def test_train_cli_shrinks_the_space(tmp_path) -> None:
    import json

    from neas.run import load_checkpoint
    from neas.search_spaces import SearchSpace

    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "train",
            "--out",
            str(out),
            "--epochs",
            "2",
            "--max-train",
            "200",
            "--width-mult",
            "0.25",
            "--head-width",
            "32",
            "--feature-width",
            "32",
            "--shrink-at",
            "0.5",
            "--shrink-ratio",
            "0.5",
            "--shrink-samples",
            "4",
            "--weights",
            "separate",
        ],
    )
    assert result.exit_code == 0, result.output
    history = json.loads((out / "shrink_history.json").read_text())
    assert len(history["steps"]) == 1
    assert (out / "shrink_history.png").exists()
    space = SearchSpace.from_json(load_checkpoint(out / "supernet.pt")["space"])
    assert all(len(layer.candidates) < 7 for layer in space.layers if not layer.first_in_stage)
    assert json.loads((out / "config.json").read_text())["shrink"]["at"] == [0.5]

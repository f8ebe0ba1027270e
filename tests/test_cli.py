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

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from neas.cli import app
from neas.cli.commands import WORKFLOW

runner = CliRunner()


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["train", "--out", "{tmp}/r", "--space", "nope"],
            "valid spaces: auto (from the data), mbconv",
        ),
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


@pytest.mark.parametrize(
    "args,message",
    [
        (["serch"], "error: No such command 'serch'. Did you mean 'search'? (see 'neas --help')"),
        (["search", "--budgt", "600M"], "error: No such option: --budgt"),
        (["search", "--members", "two"], "error: Invalid value for '--members'"),
        (["search", "--budget"], "error: Option '--budget' requires an argument"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    """A misspelt command or option, or a missing value, through the real entry point: one
    ``error:`` line (not typer's box), the command's ``--help`` named, exit 2."""
    code = "import sys; from neas.cli import main; sys.argv[0] = 'neas'; main()"
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == "", done
    assert done.stderr.splitlines() == [done.stderr.strip()] and done.stderr.startswith(message)


def test_no_arguments_shows_the_help() -> None:
    code = "import sys; from neas.cli import main; sys.argv[0] = 'neas'; main()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2 and "Usage: neas [OPTIONS] COMMAND" in done.stdout + done.stderr


def test_spaces_lists_mbconv() -> None:
    result = runner.invoke(app, ["spaces"])
    assert result.exit_code == 0 and "mbconv" in result.output


def test_train_cli_shrinks_the_space(tmp_path) -> None:
    import json

    from neas.checkpoint import load_checkpoint
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


def test_help_version_and_bad_input_do_not_import_torch(tmp_path) -> None:
    """`neas --help`, `--version` and one-line refusals answer without importing torch (a few
    seconds saved on every typo)."""
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['neas', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('neas', run_name='__main__')\n"
        "except SystemExit as e:\n    code = e.code\n"
        "print('TORCH', 'torch' in sys.modules, 'CODE', code)\n"
    )
    cases = [
        (["--help"], 0),
        (["--version"], 0),
        (["search", "--help"], 0),
        (["serch"], 2),
        (["search", "--budget", "lots"], 2),
        (["search", "--budget", "0.4"], 2),
        (["train", "--out", str(tmp_path / "r"), "--epochs", "0"], 2),
        (["search", "--space", "nope"], 2),
        (["search", "--members", "1000000"], 2),
        (["search", "--threads", "100000"], 2),
        (["search", "--resume"], 2),  # no unfinished run to continue
        (["search", "--time-limit", "ten minutes"], 2),
    ]
    for args, code in cases:
        done = subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=tmp_path
        )
        assert f"TORCH False CODE {code}" in done.stdout, (args, done.stdout, done.stderr)
    assert not (tmp_path / "r").exists() and not (tmp_path / "runs").exists()


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"neas {version('neas')}"


def test_help_lists_commands_in_workflow_order() -> None:
    text = runner.invoke(app, ["--help"]).output
    names = ["search", "train", "evolve", "export", "report", "cascade", "rank", "cost", "spaces"]
    where = [text.index(f" {n} ") for n in names]
    assert where == sorted(where), text
    options = runner.invoke(app, ["search", "--help"]).output
    for panel in ("Data", "Space", "Supernet training", "Shrinking", "Search"):
        assert f"─ {panel} ─" in options


def test_help_names_what_an_option_takes() -> None:
    """Values are named by what they are (``DURATION``, ``MACS``), flags by nothing: not
    typer's ``<str>`` and ``<bool>``."""
    lines = runner.invoke(app, ["search", "--help"], terminal_width=200).output.splitlines()

    def row(option: str) -> list[str]:
        (line,) = [x for x in lines if x.startswith(f"│ {option} ")]
        return line.split()

    assert "DURATION" in row("--time-limit") and "MACS" in row("--budget")
    assert "N|auto" in row("--threads") and "cpu|cuda" in row("--device")
    assert "INIT" in row("--final-init")
    assert row("--export")[1:4] == ["--export", "--no-export", "Export"]
    assert "<str>" not in "\n".join(lines)
    for command in ([], *([name] for name, _ in WORKFLOW)):  # the app, then every command
        text = runner.invoke(app, [*command, "--help"], terminal_width=200).output
        (help_row,) = [x.split() for x in text.splitlines() if x.split()[1:2] == ["--help"]]
        assert help_row[2:4] == ["Show", "this"], (command, help_row)
        assert "<bool>" not in text, command


def test_print_config_shows_the_parsed_budget() -> None:
    result = runner.invoke(app, ["search", "--budget", "1.5M", "--print-config"])
    assert json.loads(result.output)["search"]["budget_macs"] == 1_500_000


def test_resume_without_out_finds_no_unfinished_run(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "search-001").mkdir(parents=True)
    (tmp_path / "runs" / "search-001" / "run.json").write_text("{}")
    (tmp_path / "runs" / "search-001" / "report.html").write_text("<html></html>")
    result = runner.invoke(app, ["search", "--resume"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: --resume without --out: no unfinished run in runs/; the latest, "
        "runs/search-001, is finished; pass --out RUN to reopen one"
    )


def test_out_on_a_foreign_folder_does_not_suggest_force(tmp_path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    for extra in ([], ["--force"], ["--resume"]):
        result = runner.invoke(app, ["train", "--out", str(tmp_path / "mine"), *extra])
        assert result.exit_code == 2 and "not a neas run folder" in result.output
        assert "--force" not in result.output, result.output
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


@pytest.mark.slow
def test_resume_without_out_continues_the_unfinished_run_and_redoes_nothing(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tiny = ["--width-mult", "0.25", "--head-width", "32", "--feature-width", "32"]
    tiny += ["--max-train", "60", "--epochs", "1", "--shrink-at", "none", "--threads", "1"]
    search = ["--population", "4", "--generations", "1", "--no-latency"]
    (tmp_path / "runs" / "search-001").mkdir(parents=True)  # a finished run: not picked
    (tmp_path / "runs" / "search-001" / "run.json").write_text("{}")
    (tmp_path / "runs" / "search-001" / "report.html").write_text("<html></html>")
    trained = runner.invoke(app, ["train", "--out", "runs/search-002", *tiny])
    assert trained.exit_code == 0, trained.output  # killed after training, say

    first = runner.invoke(app, ["search", "--resume", *tiny, *search])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("resuming runs/search-002 (the most recent unfinished run)")
    run = tmp_path / "runs" / "search-002"
    assert (run / "report.html").is_file() and not (tmp_path / "runs" / "search-003").exists()
    models = sorted(run.glob("ensembles/*/model.onnx"))
    assert models
    stamps = [p.stat().st_mtime_ns for p in models]

    again = runner.invoke(app, ["search", "--out", str(run), "--resume", *tiny, *search])
    assert again.exit_code == 0, again.output
    assert [p.stat().st_mtime_ns for p in models] == stamps  # no finished export redone

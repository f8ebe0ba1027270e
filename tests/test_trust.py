"""A run folder neas did not make: foreign bytes, memory bombs, links, stale exports, a full
disk, Ctrl-C, and options that disagree with the stored run (``tests/test_hostile_*.py`` hold the
tables of one-line refusals; these are the cases that need more than one command or a child)."""

from __future__ import annotations

import base64
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from neas.checkpoint import load_checkpoint
from neas.cli import app
from neas.deploy import export_run
from neas.deploy.model_file import read_ensemble_file
from neas.errors import EXIT_INTERRUPTED, EXIT_SYSTEM, ModelFileError, RunDirError
from neas.results import load_run
from tests.conftest import trained_tiny_run

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
TINY = ["--width-mult", "0.25", "--head-width", "32", "--feature-width", "32"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny trained run with a three-row pareto.csv and e000 exported (model.pt)."""
    return trained_tiny_run(tmp_path_factory.mktemp("trust"), pareto=3, export="e000")


@pytest.fixture
def run(trained: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "run"))


def _neas(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "neas", *args],
        cwd=kwargs.pop("cwd", ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        **kwargs,
    )


# --- foreign bytes --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["supernet.pt", "ensembles/e000/model.pt"])
def test_every_first_byte_is_refused_cleanly(run: Path, name: str) -> None:
    """Each of the 256 first bytes, before a valid file's rest and before plain text, is either
    the valid file or one ``NeasError`` of the file's kind: no other exception, no warning."""
    path = run / name
    good = path.read_bytes()
    load = load_checkpoint if name == "supernet.pt" else read_ensemble_file
    error = RunDirError if name == "supernet.pt" else ModelFileError
    for first in range(256):
        for rest in (good[1:], b"hello world\n" * 20):
            path.write_bytes(bytes([first]) + rest)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                try:
                    load(path)
                except error as exc:
                    assert str(path) in str(exc) and "\n" not in str(exc)
                else:
                    assert bytes([first]) + rest == good, f"first byte {first} was accepted"


# --- memory bombs -----------------------------------------------------------------------------


def _bomb(path: Path) -> None:
    """``path`` (a model.pt) plus a 1 GiB tensor under an extra key, every record deflated:
    a file of a few megabytes that torch alone would inflate to over a gigabyte."""
    payload = torch.load(path, weights_only=True)
    payload["extra"] = torch.empty(256 * 1024 * 1024)  # untouched pages: no memory used here
    big = path.with_suffix(".big")
    torch.save(payload, big)
    del payload
    with zipfile.ZipFile(big) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, 1) as dst:
        for info in src.infolist():
            with src.open(info) as r, dst.open(info.filename, "w", force_zip64=True) as w:
                shutil.copyfileobj(r, w, 1 << 24)
    big.unlink()


def _huge_space(path: Path, key: str) -> None:
    """A torch file whose stored space asks for a 10,000,000-wide head (~3.8 GB to build)."""
    payload = torch.load(path, weights_only=True)
    space = json.loads(payload[key])
    space["head"]["feature_width"] = 10_000_000
    payload[key] = json.dumps(space)
    torch.save(payload, path)


def _peak_rss_mb(args: list[str]) -> tuple[int, str, float]:
    """Run ``python -m neas ARGS`` in a child; its exit code, output and peak RSS in MB."""
    # VmHWM is this process's own peak since its exec; ru_maxrss would also count the pages
    # the child shared with a large parent (pytest late in the suite) right after the fork
    code = (
        "import resource, runpy, sys; sys.argv = ['neas', *sys.argv[1:]]\n"
        "def peak_kb():\n"
        "    try:\n"
        "        for line in open('/proc/self/status'):\n"
        "            if line.startswith('VmHWM:'):\n"
        "                return int(line.split()[1])\n"
        "    except OSError:\n"
        "        pass\n"
        "    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n    runpy.run_module('neas', run_name='__main__')\n"
        "except SystemExit as e:\n    code = e.code or 0\nelse:\n    code = 0\n"
        "print('PEAK', peak_kb())\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True
    )
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    peak = [int(line.split()[1]) for line in lines if line.startswith("PEAK ")]
    other = "\n".join(line for line in lines if not line.startswith("PEAK "))
    return proc.returncode, other, peak[0] / 1024 if peak else float("inf")


@pytest.mark.slow
@pytest.mark.parametrize("case", ["deflated-gigabyte", "model-huge-space", "ckpt-huge-space"])
def test_a_small_hostile_file_costs_megabytes(run: Path, case: str) -> None:
    """Refused with one line, exit 2, and a peak RSS far below what loading would take (the
    child's own imports take ~0.4 GB; the bombs need over 1.4 GB)."""
    model = run / "ensembles" / "e000" / "model.pt"
    if case == "deflated-gigabyte":
        _bomb(model)
        assert model.stat().st_size < 50 * 2**20
    elif case == "model-huge-space":
        _huge_space(model, "space")
    else:
        _huge_space(run / "supernet.pt", "space")
    args = ["cascade", str(run), "--id", "e000"]
    if case == "ckpt-huge-space":
        args = ["export", str(run), "--select", "e001", "--format", "torch", "--no-cascade"]
    t0 = time.perf_counter()
    code, output, peak_mb = _peak_rss_mb(args)
    assert code == 2, output
    assert len(output.splitlines()) == 1 and output.startswith("error:"), output
    assert peak_mb < 1024, f"peak RSS {peak_mb:.0f} MB"
    assert time.perf_counter() - t0 < 120


# --- links and stale exports ------------------------------------------------------------------


def test_report_embeds_no_linked_file(run: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG not really: a secret\n")
    (run / "pareto.png").unlink(missing_ok=True)
    (run / "pareto.png").symlink_to(secret)
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    page = (run / "report.html").read_text()
    assert base64.b64encode(secret.read_bytes()).decode() not in page
    assert (run / "pareto.png").is_symlink() and secret.read_bytes().endswith(b"secret\n")


def test_a_stale_export_is_never_served(run: Path) -> None:
    """When pareto.csv gives e000 to another architecture (as a later `neas evolve` does), the
    old export is refused by `neas cascade`, left out of the report, exported again by
    `load_run(...).ensemble`, and removed by the next export."""
    front = pd.read_csv(run / "pareto.csv", dtype={"id": str})
    old_arch = front.loc[0, "arch"]
    front.loc[0, "arch"] = front.loc[1, "arch"]
    front.to_csv(run / "pareto.csv", index=False)

    result = runner.invoke(app, ["cascade", str(run), "--id", "e000"])
    assert result.exit_code == 2 and "older front" in result.output, result.output
    assert runner.invoke(app, ["report", str(run)]).exit_code == 0
    assert "ensemble-e000" not in (run / "report.html").read_text()  # no section, no link

    model = load_run(run).ensemble("e000")
    assert model.arch.to_json(model.space) == front.loc[1, "arch"] != old_arch
    manifest = json.loads((run / "ensembles" / "e000" / "manifest.json").read_text())
    assert json.dumps(manifest["arch"]) == front.loc[1, "arch"]

    front.loc[0, "arch"] = old_arch  # the front changes back: e000's export is stale again
    front.to_csv(run / "pareto.csv", index=False)
    export_run(run, select="e002", formats=["torch"], cascade=False, show_progress=False)
    assert sorted(p.name for p in (run / "ensembles").iterdir()) == ["e002"]


@pytest.mark.slow
def test_evolve_removes_the_exports_of_the_front_it_replaces(run: Path) -> None:
    exported = json.loads((run / "ensembles" / "e000" / "manifest.json").read_text())["arch"]
    args = ["evolve", str(run), "--population", "4", "--generations", "1", "--no-latency"]
    result = runner.invoke(app, [*args, "--threads", "1"])
    assert result.exit_code == 0, result.output
    front = pd.read_csv(run / "pareto.csv", dtype={"id": str})
    archs = dict(zip(front["id"], front["arch"]))
    assert archs.get("e000") != json.dumps(exported)  # the id now names another ensemble
    assert not (run / "ensembles" / "e000").exists()  # so its old export is gone
    for folder in (run / "ensembles").iterdir():
        manifest = json.loads((folder / "manifest.json").read_text())
        assert json.dumps(manifest["arch"]) == archs[folder.name]


# --- resume and interruption ------------------------------------------------------------------


def test_resume_says_which_stored_options_it_keeps(run: Path) -> None:
    args = ["train", "--out", str(run), "--resume", *TINY, "--max-train", "300"]
    args += ["--shrink-at", "none", "--epochs", "5", "--width-mult", "0.5", "--seed", "9"]
    result = runner.invoke(app, [*args, "--threads", "1"])
    assert result.exit_code == 0, result.output
    first = result.output.strip().splitlines()[0]
    assert first.startswith(f"resuming {run} with its stored ")
    for kept, ignored in (("--epochs 1", "--epochs 5"), ("--width-mult 0.25", "--width-mult 0.5")):
        assert kept in first and ignored in first
    assert "--seed 0" in first and "--seed 9" in first and "--max-train" not in first


@pytest.mark.slow
def test_ctrl_c_prints_the_command_that_resumes(tmp_path: Path) -> None:
    out = tmp_path / "r"
    args = ["train", "--out", str(out), *TINY, "--max-train", "300", "--shrink-at", "none"]
    args += ["--epochs", "8", "--threads", "1"]
    # a runner started in the background may hand its children SIGINT ignored; a user's
    # terminal does not: the child gets the default, as at a prompt
    proc = _neas(*args, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while not (out / "supernet.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (out / "supernet.pt").exists(), "training never checkpointed"
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, output
    last = output.strip().splitlines()[-1]
    assert last.startswith("interrupted; resume with: neas train --out "), output
    assert "Traceback" not in output and "--resume" in last
    resumed = last.split("resume with: ", 1)[1].split()
    assert resumed[:2] == ["neas", "train"]
    at = resumed.index("--epochs") + 1
    resumed[at] = "2"  # ignored: the stored run's 8 epochs are kept, and that is said
    done = _neas(*resumed[1:])
    text, _ = done.communicate(timeout=300)
    assert done.returncode == 0, text
    assert f"resuming {out} with its stored --epochs 8; ignoring --epochs 2" in text


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_keeps_the_checkpoint(tmp_path: Path) -> None:
    """Writes past a file-size limit fail as a full disk does (EFBIG instead of ENOSPC): one
    `error:` line naming the path, exit 4, the last whole checkpoint kept, resume works."""
    out = tmp_path / "r"
    args = ["train", "--out", str(out), *TINY, "--max-train", "300", "--shrink-at", "none"]
    args += ["--epochs", "6", "--threads", "1"]
    first = _neas(*args)  # killed once it has checkpointed an epoch
    deadline = time.monotonic() + 240
    while not (out / "supernet.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    first.kill()
    first.communicate()
    before = (out / "supernet.pt").read_bytes()
    assert load_checkpoint(out / "supernet.pt")["epoch"] < 6
    limit = len(before) // 2  # the next checkpoint cannot be written whole

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    full = _neas(*args, "--resume", preexec_fn=small_disk)
    output, _ = full.communicate(timeout=300)
    lines = [line for line in output.strip().splitlines() if line.startswith("error:")]
    assert full.returncode == EXIT_SYSTEM, output
    assert len(lines) == 1 and "supernet.pt" in lines[0] and "Traceback" not in output
    assert (out / "supernet.pt").read_bytes() == before
    assert not list(out.glob(".*.tmp"))
    again = _neas(*args, "--resume")
    assert again.wait(timeout=300) == 0
    assert load_checkpoint(out / "supernet.pt")["epoch"] == 6

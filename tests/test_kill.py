"""Kill -9 anywhere, lose nothing: a run killed at any point and resumed with ``--resume`` ends
exactly as an uninterrupted run with the same seed and threads.

Every run here is a separate ``python -m neas`` process killed with SIGKILL at a point found by
polling the run folder (no test hooks in neas). Latency is left out (``--no-latency``): it is
measured, so it differs between any two runs, killed or not. Compared with the uninterrupted
run: ``supernet.pt`` weights (tensor-equal), ``config.json``, the training and shrink histories
(timings left out), ``pareto.csv`` and the search files (byte-equal), and every exported
ensemble (``model.onnx`` and ``cascade.csv`` byte-equal, ``model.pt`` tensor-equal, manifest
equal but for timings).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["--epochs", "2", "--max-train", "300", "--width-mult", "0.25", "--head-width", "32",
         "--feature-width", "32", "--shrink-at", "0.5", "--shrink-samples", "4",
         "--threads", "1", "--seed", "3"]  # fmt: skip
SEARCH = [*TRAIN, "--budget", "600M", "--population", "6", "--generations", "3", "--no-latency"]
TIMINGS = {"train_seconds", "images_per_s", "seconds", "export_seconds", "latency"}
#: How a resumed search says it resumed (``search/summary.json``).
RESUMED = {"scores_reused", "scores_discarded"}
#: What a write killed before its rename leaves (``neas.files.atomic_write_bytes``).
LEFTOVERS = (".supernet.pt.k1ll3d_x.tmp", "search/.scores.json.k1ll3d_x.tmp")


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def neas(*args: str | Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "neas", *map(str, args)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def kill_when(
    args: list[str | Path],
    ready: Callable[[], bool],
    *,
    log: Path,
    delay: float = 0.0,
) -> None:
    """Start ``neas args``, poll the run folder until ``ready()``, wait ``delay`` s, SIGKILL."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "neas", *map(str, args)],
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 300
    try:
        while not ready():
            assert proc.poll() is None, f"finished before the kill point:\n{log.read_text()}"
            assert time.monotonic() < deadline, "kill point never reached"
            time.sleep(0.002)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"not killed:\n{log.read_text()}"


def _same(a, b) -> bool:
    """Equal values, tensors compared exactly, timings left out."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        keys = a.keys() - TIMINGS
        return (
            isinstance(b, dict)
            and keys == b.keys() - TIMINGS
            and all(_same(a[k], b[k]) for k in keys)
        )
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


def assert_same_torch_file(a: Path, b: Path) -> None:
    """Weights tensor-equal, and every other field (optimizer, RNG, history) equal."""
    load = lambda p: torch.load(p, map_location="cpu", weights_only=True)  # noqa: E731
    assert _same(load(a), load(b)), a


def _untimed(value, ignore: frozenset[str] = frozenset()):
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in TIMINGS | ignore}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def assert_same_json(a: Path, b: Path, *, ignore: frozenset[str] = frozenset()) -> None:
    assert _untimed(json.loads(a.read_text()), ignore) == _untimed(
        json.loads(b.read_text()), ignore
    ), a.name


def assert_same_training(run: Path, ref: Path, *, ignore: frozenset[str] = frozenset()) -> None:
    """``ignore``: top-level keys of ``train_summary.json`` that only one of the two has."""
    assert (run / "config.json").read_text() == (ref / "config.json").read_text()
    assert_same_torch_file(run / "supernet.pt", ref / "supernet.pt")
    for name in ("train_summary.json", "shrink_history.json", "space.json"):
        assert_same_json(run / name, ref / name, ignore=ignore)


def assert_same_run(run: Path, ref: Path) -> None:
    """Everything an uninterrupted ``neas search`` writes, but timings and plots."""
    assert_same_training(run, ref)
    for name in ("pareto.csv", "search/history.csv", "search/hypervolume.csv"):
        assert (run / name).read_bytes() == (ref / name).read_bytes(), name
    summary = [json.loads((r / "search/summary.json").read_text()) for r in (run, ref)]
    assert _same(*[{k: v for k, v in s.items() if k not in RESUMED} for s in summary])
    exported = sorted(p.name for p in (ref / "ensembles").iterdir())
    assert exported and sorted(p.name for p in (run / "ensembles").iterdir()) == exported
    for e in exported:
        a, b = run / "ensembles" / e, ref / "ensembles" / e
        for name in ("model.onnx", "cascade.csv"):
            assert (a / name).read_bytes() == (b / name).read_bytes(), f"{e}/{name}"
        assert_same_torch_file(a / "model.pt", b / "model.pt")
        assert_same_json(a / "manifest.json", b / "manifest.json")
    assert not [p for p in run.rglob("*.tmp")], "temp files left after resuming"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One uninterrupted ``neas search`` that every killed run is compared with."""
    out = tmp_path_factory.mktemp("kill") / "reference"
    neas("search", *SEARCH, "--out", out)
    return out


def _plant_leftovers(run: Path) -> None:
    for name in LEFTOVERS:
        (run / name).parent.mkdir(exist_ok=True)
        (run / name).write_bytes(b"half a file")


def _epoch(run: Path) -> int:
    return int(torch.load(run / "supernet.pt", weights_only=True)["epoch"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "where",
    ["before the first checkpoint", "mid-epoch", "right after a checkpoint", "mid-shrink-write"],
)
def test_train_killed_then_resumed_equals_uninterrupted(tmp_path, reference, where) -> None:
    run = tmp_path / "run"
    ckpt, config = run / "supernet.pt", run / "config.json"
    ready, delay = {
        "before the first checkpoint": (config.exists, 0.0),
        # 50 ms into epoch 2 (an epoch of this run takes several times that)
        "mid-epoch": (ckpt.exists, 0.05),
        "right after a checkpoint": (ckpt.exists, 0.0),
        # shrink_history.json is written at the end of epoch 1, just before its checkpoint
        "mid-shrink-write": ((run / "shrink_history.json").exists, 0.0),
    }[where]
    kill_when(["train", *TRAIN, "--out", run], ready, log=tmp_path / "killed.log", delay=delay)
    assert not (run / "train_summary.json").exists()  # killed during training
    if where in ("mid-epoch", "right after a checkpoint"):
        assert _epoch(run) == 1  # epoch 2 had begun, its checkpoint not yet written
    if where == "before the first checkpoint":
        assert not ckpt.exists()  # resuming starts training over
    _plant_leftovers(run)
    neas("train", *TRAIN, "--out", run, "--resume")
    # `neas train` scores a random sample after training; the reference, a search, does not
    summary = json.loads((run / "train_summary.json").read_text())
    random = frozenset(k for k in summary if k.startswith("random_val_"))
    assert random and not random & json.loads((reference / "train_summary.json").read_text()).keys()
    assert_same_training(run, reference, ignore=random)
    assert not [p for p in run.rglob("*.tmp")]


@pytest.mark.slow
def test_search_killed_in_the_search_stage_then_resumed(tmp_path, reference) -> None:
    run = tmp_path / "run"
    scores = run / "search" / "scores.json"
    kill_when(["search", *SEARCH, "--out", run], scores.exists, log=tmp_path / "killed.log")
    assert not (run / "pareto.csv").exists()  # killed during the search
    checkpointed = len(json.loads(scores.read_text())["scores"])
    _plant_leftovers(run)
    neas("search", *SEARCH, "--out", run, "--resume")
    assert_same_run(run, reference)
    summary = json.loads((run / "search" / "summary.json").read_text())
    assert summary["scores_reused"] == checkpointed > 0  # generation 0 was not scored again


@pytest.mark.slow
def test_search_killed_during_export_then_resumed(tmp_path, reference) -> None:
    run = tmp_path / "run"
    first = run / "ensembles" / "e000" / "model.onnx"
    kill_when(["search", *SEARCH, "--out", run], first.exists, log=tmp_path / "killed.log")
    assert not (run / "ensembles" / "e000" / "manifest.json").exists()  # mid-export
    _plant_leftovers(run)
    (run / "ensembles" / "e000" / ".model.pt.k1ll3d_x.tmp").write_bytes(b"half")
    neas("search", *SEARCH, "--out", run, "--resume")
    assert_same_run(run, reference)

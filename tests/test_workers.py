"""Work in forked processes (``neas.workers``): the same results as in one process, in the
items' order, from other processes when forked; the front's export in workers writes what one
process writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
import torch

from neas.config import SearchOptions
from neas.device import usable_cores
from neas.pipeline import evolve
from neas.workers import Workers, can_fork, cpu_workers

forks = pytest.mark.skipif(not can_fork(), reason="no fork on this platform")


def _dies(x: int) -> int:
    os._exit(3)


def _fails_on_3(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


@forks
def test_workers_keep_order_and_run_elsewhere_and_raise_here() -> None:
    parent = os.getpid()
    with Workers(lambda x: (x, os.getpid(), torch.get_num_threads()), 2) as pool:
        assert pool.forked
        out = pool.map(range(8))
    assert [x for x, _, _ in out] == list(range(8))
    assert {pid for _, pid, _ in out} - {parent} and parent not in {pid for _, pid, _ in out}
    assert {threads for _, _, threads in out} == {1}  # one torch thread per worker
    with Workers(lambda x: os.getpid(), 1) as pool:  # one: here, nothing forked
        assert not pool.forked and set(pool.map(range(3))) == {parent}
    with Workers(_fails_on_3, 2) as pool, pytest.raises(ValueError, match="three"):
        pool.map(range(5))
    with Workers(_dies, 2) as pool, pytest.raises(BrokenProcessPool):  # fails, never hangs
        pool.map(range(2))


def test_cpu_workers_rule() -> None:
    assert cpu_workers(3, "cpu") == (3 if can_fork() else 1)
    assert cpu_workers(1, "cpu") == 1
    assert cpu_workers(4, torch.device("cuda")) == 1  # the GPU scores, not processes
    assert cpu_workers(None, "cpu") == (usable_cores() if can_fork() else 1)  # one per core


@forks
def test_export_in_workers_writes_what_one_process_writes(run_copy, monkeypatch) -> None:
    import neas.deploy.export as export
    from neas.deploy import export_run, load_ensemble

    opts = SearchOptions(population=4, generations=1, latency=False, calibration_images=64)
    evolve(run_copy, options=opts, resume=False, threads=1, show_progress=False, report=False)
    pids = run_copy / "pids.txt"
    real = export.export_ensemble

    def spy(*a, **k):
        with open(pids, "a") as f:
            f.write(f"{os.getpid()}\n")
        return real(*a, **k)

    monkeypatch.setattr(export, "export_ensemble", spy)

    def exported(workers: int) -> tuple[list[dict], list[dict]]:
        folders = export_run(run_copy, workers=workers, show_progress=False)
        manifests = [json.loads((f / "manifest.json").read_text()) for f in folders]
        nets = [load_ensemble(f / "model.pt").net.state_dict() for f in folders]
        assert all((f / "model.onnx").is_file() for f in folders)
        return manifests, nets

    alone = exported(1)
    assert set(pids.read_text().split()) == {str(os.getpid())}
    pids.unlink()
    forked = exported(2)
    assert len(alone[0]) == len(forked[0]) >= 2
    assert str(os.getpid()) not in pids.read_text().split()  # every export in a worker
    for a, b in zip(alone[0], forked[0]):
        assert (a["id"], a["accuracy"], a["cascade"]) == (b["id"], b["accuracy"], b["cascade"])
        assert b["onnx"]["parity_max_abs_diff"] < 1e-4
    for a, b in zip(alone[1], forked[1]):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@forks
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_workers_die_with_a_killed_parent(tmp_path) -> None:
    """kill -9 of the job ends its workers too: none goes on writing into the run folder."""
    pids = tmp_path / "pids"
    code = f"""
import os, time
from neas.workers import Workers
def work(i):
    with open({str(pids)!r}, "a") as f:
        f.write(f"{{os.getpid()}}\\n")
    time.sleep(60)
with Workers(work, 2) as pool:
    pool.map(range(2))
"""
    job = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(_read(pids)) < 2:
        time.sleep(0.1)
    workers = _read(pids)
    assert len(workers) == 2 and job.pid not in workers
    job.kill()
    job.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers)


def _read(path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = (
        Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}").exists() else "X"
    )
    return state not in ("Z", "X")  # a zombie has ended


@forks
def test_resumed_export_in_workers_redoes_only_what_is_missing(run_copy, monkeypatch) -> None:
    """As a job killed mid-export leaves it: one ensemble's folder without its manifest. The
    resumed export with workers exports that one only, and returns the folders in order."""
    import neas.deploy.export as export
    from neas.deploy import export_run

    opts = SearchOptions(population=4, generations=1, latency=False, calibration_images=64)
    evolve(run_copy, options=opts, resume=False, threads=1, show_progress=False, report=False)
    first = export_run(run_copy, formats=["torch"], workers=2, show_progress=False)
    assert len(first) >= 2
    before = [json.loads((f / "manifest.json").read_text()) for f in first]
    (first[1] / "manifest.json").unlink()  # killed before its last write
    pids = run_copy / "pids.txt"
    real = export.export_ensemble

    def spy(run, row, **kw):
        with open(pids, "a") as f:
            f.write(f"{row['id']}\n")
        return real(run, row, **kw)

    monkeypatch.setattr(export, "export_ensemble", spy)
    again = export_run(run_copy, formats=["torch"], workers=2, resume=True, show_progress=False)
    assert again == first and pids.read_text().split() == [first[1].name]
    after = [json.loads((f / "manifest.json").read_text()) for f in again]
    assert [m["accuracy"] for m in after] == [m["accuracy"] for m in before]

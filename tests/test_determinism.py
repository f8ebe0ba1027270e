"""Determinism: two fresh processes with the same seed and threads find the same front (latency
left out); a fine-tuned export is the same whatever ran before it in the process."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from neas.deploy import export_run
from tests.conftest import trained_tiny_run


@pytest.mark.slow
def test_same_seed_same_pareto_csv_across_processes(tmp_path) -> None:
    def run(out):
        args = ["search", "--budget", "600M", "--epochs", "2", "--max-train", "300",
                "--width-mult", "0.25", "--head-width", "32", "--feature-width", "32",
                "--shrink-at", "0.5", "--shrink-samples", "4", "--population", "6",
                "--generations", "2", "--no-latency", "--no-export", "--threads", "1",
                "--seed", "3", "--out", str(out)]  # fmt: skip
        code = "from neas.cli import main; main()"
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        return (out / "pareto.csv").read_text()

    a, b = run(tmp_path / "a"), run(tmp_path / "b")
    assert a == b
    front = pd.read_csv(tmp_path / "a" / "pareto.csv")
    assert len(front) >= 1 and (front["latency_ms"] == 0).all()  # latency left out


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny trained run with a two-row pareto.csv, nothing exported yet."""
    return trained_tiny_run(tmp_path_factory.mktemp("determinism"), pareto=2)


def finetuned_weights(run: Path) -> dict[str, torch.Tensor]:
    """Export e000 of ``run`` after one epoch of final training (fresh branches: the seeded
    initialisation is under test too) on one thread; its model.pt weights."""
    export_run(
        run,
        select="e000",
        formats=["torch"],
        cascade=False,
        final_epochs=1,
        final_init="branches",
        threads=1,
        show_progress=False,
    )
    payload = torch.load(run / "ensembles" / "e000" / "model.pt", weights_only=True)
    return payload["state_dict"]


def test_finetuned_export_is_reproducible_and_leaves_torch_state(trained, tmp_path) -> None:
    a, b = (shutil.copytree(trained, tmp_path / name) for name in ("a", "b"))
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    first = finetuned_weights(a)
    assert torch.equal(torch.get_rng_state(), rng)  # the export drew nothing from torch's stream
    assert torch.get_num_threads() == threads
    with torch.random.fork_rng(devices=[]):  # as if in another process (a random initial seed)
        torch.manual_seed(1)
        second = finetuned_weights(b)
    again = finetuned_weights(a)  # the same folder again, after two exports in this process
    for other in (second, again):
        assert other.keys() == first.keys()
        differ = [k for k in first if not torch.equal(first[k], other[k])]
        assert not differ, f"{len(differ)} of {len(first)} tensors differ, e.g. {differ[:3]}"

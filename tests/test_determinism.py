"""Two fresh processes with the same seed and threads find the same front (latency left out)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest


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

"""``--threads N|auto``: parsing, the timed choice, and what a job records and prints."""

from __future__ import annotations

import time

import pytest
import torch
from typer.testing import CliRunner

from neas.cli import app
from neas.device import (
    fastest_threads,
    parse_threads,
    resolve_threads,
    thread_candidates,
    torch_threads,
)
from neas.errors import ConfigError
from neas.files import read_json

runner = CliRunner()


def test_parse_threads() -> None:
    assert parse_threads(None) is None and parse_threads("auto") == "auto"
    assert parse_threads("2") == 2 and parse_threads(3) == 3
    for bad in ("0", "-1", "many", "1.5", 0, 2.5):
        with pytest.raises(ConfigError, match="threads"):
            parse_threads(bad)


def test_candidates_cover_one_to_cores() -> None:
    assert thread_candidates(1) == (1,)
    assert thread_candidates(2) == (1, 2)
    assert thread_candidates(16) == (1, 2, 4, 8, 16)


@pytest.mark.parametrize("fast", [1, 2])
def test_fastest_threads_picks_the_faster_count(fast: int) -> None:
    calls: dict[int, int] = {}

    def step() -> None:  # slow unless torch runs with `fast` threads
        n = torch.get_num_threads()
        calls[n] = calls.get(n, 0) + 1
        time.sleep(0.001 if n == fast else 0.03)

    old = torch.get_num_threads()
    chosen, seconds = fastest_threads(step, (1, 2), repeats=3)
    assert chosen == fast and set(seconds) == {1, 2}
    assert seconds[fast] < seconds[3 - fast]
    assert torch.get_num_threads() == old
    if fast == 1:  # a count that is clearly slower is not timed three times
        assert calls[2] == 2


def test_auto_leaves_the_global_rng_and_thread_count_as_they_were() -> None:
    def probe():
        return lambda: torch.nn.functional.dropout(torch.ones(1000), 0.5)

    old = torch.get_num_threads()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    n = resolve_threads("auto", device=torch.device("cpu"), probe=probe)
    assert torch.get_num_threads() == old  # timing leaves the count as it was
    with torch_threads(n):
        assert n in thread_candidates() and torch.get_num_threads() == n
        got = torch.rand(3)
    assert torch.equal(got, expected)  # the timed dropout steps drew from a forked RNG
    assert torch.get_num_threads() == old
    n = resolve_threads(None, device=torch.device("cpu"), probe=probe)
    with torch_threads(n):
        assert n is None and torch.get_num_threads() == old


def test_train_auto_says_what_it_chose_and_records_it(tmp_path) -> None:
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--epochs", "1", "--max-train", "64", "--width-mult",
            "0.25", "--head-width", "32", "--feature-width", "32", "--shrink-at", "none",
            "--threads", "auto"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("threads: auto chose"))
    chosen = int(line.split()[3])
    assert chosen in thread_candidates()
    assert read_json(out / "train_summary.json")["torch_threads"] == chosen


@pytest.mark.parametrize("bad", ["0", "lots"])
def test_bad_threads_is_one_line_before_any_work(tmp_path, bad: str) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--out", str(out), "--threads", bad])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "threads" in lines[0]
    assert not out.exists()

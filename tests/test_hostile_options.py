"""Hostile options through the CLI: values out of range or of the wrong kind, refused before a run
folder is made or anything is trained (the contract and its checker: ``tests/hostile.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile import (
    EVOLVE,
    FAST,
    RANK,
    SEARCH,
    TRAIN,
    Case,
    check,
    check_table,
    edit_json,
    run_file,
    write,
)

CASES = [
    # search options on a trained run
    Case("evolve-population-1", [*EVOLVE, "--population", "1"], [], "--population"),
    Case("evolve-latency-batch-0", [*EVOLVE, "--latency-batch", "0"], [], "--latency-batch"),
    Case("evolve-bad-device", [*EVOLVE, "--device", "gpu0"], [], "gpu0"),
    Case("evolve-ensemble-size-0", [*EVOLVE, "--ensemble-size", "0"], [], "--ensemble-size"),
    Case("evolve-ensemble-size-9", [*EVOLVE, "--ensemble-size", "9"], [], "--ensemble-size 9"),
    Case("evolve-threads-many", [*EVOLVE, "--threads", "many"], [], "threads"),
    Case("evolve-bad-budget", [*EVOLVE, "--budget", "lots"], [], "lots"),
    Case("evolve-bad-strategy", [*EVOLVE, "--strategy", "annealing"], [], "annealing"),
    Case("evolve-run-missing", ["evolve", "{tmp}/nowhere"], [], "nowhere", needs_run=False),
    Case("evolve-run-is-file", EVOLVE, [run_file("run")], "run"),
    Case("evolve-search-is-file", EVOLVE, [run_file("run/search")], "search"),
    Case("rank-samples-1", [*RANK, "--samples", "1"], [], "samples"),
    Case("rank-bad-device", [*RANK, "--device", "mps"], [], "mps"),
    # options before anything is trained
    Case("train-bad-device", [*TRAIN, "--device", "quantum"], [], "quantum", needs_run=False),
    Case(
        "train-val-fraction-0",
        [*TRAIN, "--val-fraction", "0"],
        [],
        "--val-fraction",
        needs_run=False,
    ),
    Case(
        "search-val-fraction-1",
        [*SEARCH, "--val-fraction", "1"],
        [],
        "--val-fraction",
        needs_run=False,
    ),
    Case("train-max-train-0", [*TRAIN, "--max-train", "0"], [], "--max-train", needs_run=False),
    Case(
        "train-out-under-file",
        ["train", "--out", "{tmp}/afile/out", *FAST],
        [write("afile", "a regular file\n")],
        "afile",
        needs_run=False,
    ),
    Case(
        "search-population-1", [*SEARCH, "--population", "1"], [], "--population", needs_run=False
    ),
    Case(
        "search-latency-batch-0",
        [*SEARCH, "--latency-batch", "0"],
        [],
        "--latency-batch",
        needs_run=False,
    ),
    # cost --arch-file
    Case("arch-missing", ["cost", "--arch-file", "{tmp}/a.json"], [], "a.json", needs_run=False),
    Case(
        "arch-not-json",
        ["cost", "--arch-file", "{tmp}/a.json"],
        [write("a.json", "{members: [")],
        "a.json",
        needs_run=False,
    ),
    Case(
        "arch-a-list",
        ["cost", "--arch-file", "{tmp}/a.json"],
        [write("a.json", "[1, 2, 3]")],
        "a.json",
        needs_run=False,
    ),
    Case(
        "arch-wrong-keys",
        ["cost", "--arch-file", "{tmp}/a.json"],
        [write("a.json", '{"layers": 5}')],
        "a.json",
        needs_run=False,
    ),
    Case(
        "arch-binary",
        ["cost", "--arch-file", "{tmp}/a.json"],
        [write("a.json", b"\xff\xfe\x00\x01")],
        "a.json",
        needs_run=False,
    ),
    Case(
        "arch-a-folder",
        ["cost", "--arch-file", "{tmp}"],
        [],
        "does not exist (or is a folder)",
        needs_run=False,
    ),
    # options out of range: refused before a run folder is made
    *(
        Case(f"train{flag}-{value}", [*TRAIN, flag, value], [], flag, needs_run=False)
        for flag, value in (
            ("--members", "1000000"),
            ("--width-mult", "1e9"),
            ("--width-mult", "nan"),
            ("--head-width", "0"),
            ("--feature-width", "-5"),
            ("--lr", "nan"),
            ("--lr", "-1"),
            ("--label-smoothing", "5"),
            ("--seed", "-1"),
            ("--seed", str(2**40)),
            ("--epochs", "1000000000"),
        )
    ),
    Case("train-threads-huge", [*TRAIN, "--threads", "100000"], [], "threads", needs_run=False),
    Case("search-seed-negative", [*SEARCH, "--seed", "-1"], [], "--seed", needs_run=False),
    *(
        Case(
            f"resume-config-{key}-{value}",
            ["train", "--out", "{run}", "--resume", "--threads", "1"],
            [
                edit_json(
                    "run/config.json", lambda d, p=part, k=key, v=value: d[p].__setitem__(k, v)
                )
            ],
            "config.json",
        )
        for part, key, value in (
            ("train", "epochs", 2.5),
            ("space", "width_mult", 1e9),
            ("space", "members", 10**9),
            ("train", "lr", -1),
            ("data", "seed", -1),
        )
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_options(case: Case, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    check(case, tmp_path, request)


def test_the_table_is_whole() -> None:
    check_table(CASES)

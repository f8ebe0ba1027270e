"""Hostile run folders through the CLI: damaged, foreign, hostile or mismatched checkpoints,
configurations, fronts, model files and exports, and run folders that point outside themselves
(the contract and its checker: ``tests/hostile.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.hostile import (
    CASCADE,
    CKPT,
    EVOLVE,
    EXPORT,
    MODEL,
    RANK,
    Case,
    _deflate,
    _head,
    _set,
    check,
    check_table,
    edit_json,
    hostile_pickle,
    pareto_id,
    remove,
    run_file,
    space_edit,
    symlink,
    torch_file,
    torch_payload,
    truncate,
    write,
)

CASES = [
    # supernet.pt: damaged, foreign, hostile, from the future, not matching its run
    Case("ckpt-truncated-evolve", EVOLVE, [truncate(CKPT)], "supernet.pt"),
    Case("ckpt-truncated-export", EXPORT, [truncate(CKPT)], "supernet.pt"),
    Case("ckpt-truncated-rank", RANK, [truncate(CKPT)], "supernet.pt"),
    Case("ckpt-empty", EVOLVE, [write(CKPT, b"")], "supernet.pt"),
    Case("ckpt-garbage", EVOLVE, [write(CKPT, b"\x00\xffnot torch" * 50)], "supernet.pt"),
    Case("ckpt-hostile-evolve", EVOLVE, [hostile_pickle(CKPT, torch_file=True)], "supernet.pt"),
    Case("ckpt-hostile-export", EXPORT, [hostile_pickle(CKPT, torch_file=True)], "supernet.pt"),
    Case("ckpt-hostile-raw", RANK, [hostile_pickle(CKPT, torch_file=False)], "supernet.pt"),
    Case("ckpt-a-list", EVOLVE, [torch_file(CKPT, [1, 2])], "supernet.pt"),
    Case(
        "ckpt-no-model",
        EVOLVE,
        [torch_payload(CKPT, lambda p: p.pop("model") and None)],
        "supernet",
    ),
    Case("ckpt-future", EVOLVE, [torch_payload(CKPT, _set("format", 99))], "upgrade neas"),
    Case("ckpt-bad-format", EVOLVE, [torch_payload(CKPT, _set("format", "x"))], "supernet.pt"),
    Case(
        "ckpt-weights-mismatch",
        EXPORT,
        [torch_payload(CKPT, lambda p: p["model"].popitem())],
        "does not match",
    ),
    Case("ckpt-bad-space", EVOLVE, [torch_payload(CKPT, _set("space", "{}"))], "supernet.pt"),
    Case("ckpt-bad-epoch", EVOLVE, [torch_payload(CKPT, _set("epoch", "one"))], "supernet.pt"),
    Case("ckpt-missing", EVOLVE, [remove(CKPT)], "neas train"),
    # config.json
    Case("config-not-json", EVOLVE, [write("run/config.json", "{not json")], "config.json"),
    Case("config-binary", RANK, [write("run/config.json", b"\xff\xfe\x00")], "config.json"),
    Case("config-a-list", EVOLVE, [write("run/config.json", "[1, 2]")], "config.json"),
    Case("config-wrong-keys", EXPORT, [write("run/config.json", '{"foo": 1}')], "config.json"),
    Case(
        "config-bad-value",
        EVOLVE,
        [edit_json("run/config.json", lambda d: d["train"].__setitem__("epochs", "many"))],
        "config.json",
    ),
    Case(
        "config-bad-data",
        EVOLVE,
        [edit_json("run/config.json", lambda d: d["data"].__setitem__("source", "imagenet"))],
        "imagenet",
    ),
    Case("config-missing", EVOLVE, [remove("run/config.json")], "config.json"),
    # pareto.csv (export)
    Case("pareto-empty", EXPORT, [write("run/pareto.csv", "")], "pareto.csv"),
    Case("pareto-columns", EXPORT, [write("run/pareto.csv", "id,macs\ne001,5\n")], "lacks"),
    Case("pareto-header-only", EXPORT, [write("run/pareto.csv", "id\n")], "pareto.csv"),
    Case(
        "pareto-binary", EXPORT, [write("run/pareto.csv", b"\x89PNG\r\n\x1a\n\xff\x00")], "pareto"
    ),
    Case("pareto-missing", EXPORT, [remove("run/pareto.csv")], "neas search"),
    Case(
        "pareto-bad-arch",
        EXPORT,
        [
            write(
                "run/pareto.csv",
                "id,arch,members,split,val_accuracy,test_accuracy,macs\n"
                'e001,"{""nope"": 1}",2,1,0.5,0.5,100\n',
            )
        ],
        "e001",
    ),
    Case(
        "pareto-arch-not-json",
        EXPORT,
        [
            write(
                "run/pareto.csv",
                "id,arch,members,split,val_accuracy,test_accuracy,macs\ne001,zzz,2,1,0.5,0.5,100\n",
            )
        ],
        "e001",
    ),
    Case("export-unknown-id", [*EXPORT, "--select", "e999"], [], "e999"),
    Case("export-negative-final", [*EXPORT, "--final-epochs", "-1"], [], "--final-epochs"),
    Case("export-bad-final-init", [*EXPORT, "--final-init", "magic"], [], "magic"),
    Case("export-bad-format", [*EXPORT, "--format", "tflite"], [], "tflite"),
    Case("export-threads-0", [*EXPORT, "--threads", "0"], [], "threads"),
    Case("export-bad-device", [*EXPORT, "--device", "tpu"], [], "tpu"),
    Case("export-out-is-file", EXPORT, [run_file("run/ensembles")], "ensembles"),
    Case("export-run-missing", ["export", "{tmp}/nowhere"], [], "nowhere", needs_run=False),
    # model.pt (cascade)
    Case("model-truncated", CASCADE, [truncate(MODEL)], "model.pt"),
    Case("model-garbage", CASCADE, [write(MODEL, b"PK\x03\x04garbage" * 20)], "model.pt"),
    Case("model-future", CASCADE, [torch_payload(MODEL, _set("format_version", 2))], "upgrade"),
    Case("model-hostile", CASCADE, [hostile_pickle(MODEL, torch_file=True)], "pickled code"),
    Case("model-hostile-raw", CASCADE, [hostile_pickle(MODEL, torch_file=False)], "model.pt"),
    Case("model-not-ours", CASCADE, [torch_file(MODEL, {"a": 1})], "neas ensemble"),
    Case(
        "model-no-arch", CASCADE, [torch_payload(MODEL, lambda p: p.pop("arch") and None)], "arch"
    ),
    Case(
        "model-weights-mismatch",
        CASCADE,
        [torch_payload(MODEL, lambda p: p["state_dict"].popitem())],
        "damaged",
    ),
    Case("model-bad-input", CASCADE, [torch_payload(MODEL, _set("input", 7))], "model.pt"),
    Case("cascade-unknown-id", ["cascade", "{run}", "--id", "e999"], [], "e999"),
    Case("cascade-tolerance", [*CASCADE, "--tolerance", "2"], [], "tolerance"),
    Case(
        "cascade-config-broken",
        CASCADE,
        [write("run/config.json", "nope")],
        "config.json",
    ),
    Case("model-arch-not-json", CASCADE, [torch_payload(MODEL, _set("arch", "{oops"))], "model.pt"),
    Case(
        "model-bad-version",
        CASCADE,
        [torch_payload(MODEL, _set("format_version", "x"))],
        "model.pt",
    ),
    Case(
        "model-bad-threshold",
        CASCADE,
        [torch_payload(MODEL, _set("cascade_threshold", "hi"))],
        "model.pt",
    ),
    Case(
        "model-state-not-dict", CASCADE, [torch_payload(MODEL, _set("state_dict", [1]))], "model.pt"
    ),
    Case(
        "manifest-broken",
        CASCADE,
        [write("run/ensembles/e000/manifest.json", "{")],
        "manifest.json",
    ),
    Case("cascade-run-is-file", CASCADE, [run_file("run")], "e000"),
    # other run files
    Case(
        "latency-table-broken",
        ["evolve", "{run}", "--population", "4", "--generations", "1"],
        [write("run/latency_table.json", "{not json")],
        "latency_table.json",
    ),
    Case(
        "latency-table-wrong",
        ["evolve", "{run}", "--population", "4", "--generations", "1"],
        [write("run/latency_table.json", "[1, 2]")],
        "latency_table.json",
    ),
    Case(
        "resume-config-broken",
        ["train", "--out", "{run}", "--resume", "--threads", "1"],
        [write("run/config.json", "{")],
        "config.json",
    ),
    Case(
        "resume-ckpt-truncated",
        ["train", "--out", "{run}", "--resume", "--threads", "1"],
        [truncate(CKPT)],
        "supernet.pt",
    ),
    Case(
        "resume-ckpt-hostile",
        ["train", "--out", "{run}", "--resume", "--threads", "1"],
        [hostile_pickle(CKPT, torch_file=True)],
        "supernet.pt",
    ),
    Case("rank-run-is-file", RANK, [run_file("run")], "run"),
    Case(
        "report-pareto-binary",
        ["report", "{run}"],
        [write("run/pareto.csv", b"\xff\x00\xfe")],
        "pareto",
    ),
    Case(
        "report-summary-broken",
        ["report", "{run}"],
        [write("run/train_summary.json", "{")],
        "train_summary",
    ),
    # a run folder that points outside itself (ids are file names; links are not followed)
    Case(
        "pareto-id-escapes",
        [*EXPORT, "--select", "all"],
        [pareto_id("../../victim")],
        "not a plain name",
    ),
    Case(
        "pareto-id-absolute",
        [*EXPORT, "--select", "all"],
        [pareto_id("{tmp}/victim")],
        "not a plain name",
    ),
    Case("cascade-id-escapes", ["cascade", "{run}", "--id", "../../victim"], [], "plain name"),
    Case("cascade-id-absolute", ["cascade", "{run}", "--id", "/etc"], [], "plain name"),
    Case("export-ensembles-symlink", EXPORT, [symlink("run/ensembles", "elsewhere")], "link"),
    Case(
        "export-ensemble-symlink",
        [*EXPORT, "--select", "e000"],
        [symlink("run/ensembles/e000", "elsewhere")],
        "link",
    ),
    Case("evolve-search-symlink", EVOLVE, [symlink("run/search", "elsewhere")], "link"),
    # model and checkpoint files that would cost memory or carry what neas never writes
    Case(
        "model-unknown-key",
        CASCADE,
        [torch_payload(MODEL, _set("extra", torch.zeros(4)))],
        "extra",
    ),
    Case(
        "model-compressed-record",
        CASCADE,
        [lambda tmp: _deflate(tmp / MODEL)],
        "compressed",
    ),
    Case(
        "model-huge-space",
        CASCADE,
        [space_edit(MODEL, "space", _head("feature_width", 10_000_000))],
        "weights",
    ),
    Case(
        "ckpt-huge-space",
        EXPORT,
        [space_edit(CKPT, "space", _head("feature_width", 10_000_000))],
        "weights",
    ),
    Case("ckpt-unknown-key", EVOLVE, [torch_payload(CKPT, _set("payload", [1, 2]))], "payload"),
    Case("ckpt-compressed-record", EVOLVE, [lambda tmp: _deflate(tmp / CKPT)], "compressed"),
    Case("ckpt-text-file", EVOLVE, [write(CKPT, "hello world\n")], "supernet.pt"),
    Case("model-text-file", CASCADE, [write(MODEL, "hello world\n")], "model.pt"),
    Case("ckpt-symlink-to-text", EVOLVE, [symlink(CKPT, "notes.txt")], "supernet.pt"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_runs(case: Case, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    check(case, tmp_path, request)


def test_the_table_is_whole() -> None:
    check_table(CASES)

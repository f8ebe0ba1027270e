"""Broken and hostile files through the CLI: one ``error:`` line, exit code 2, nothing changed.

Every case copies a small trained run (with ``pareto.csv`` and one exported ensemble) or writes
its own input files into a fresh folder, damages one thing, runs one command and checks:

* exactly one output line, starting with ``error:``, and no traceback;
* exit code 2 (bad input);
* every file and folder that existed is unchanged, and nothing new appeared;
* a pickle whose ``__reduce__`` would create a sentinel file never runs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from neas.cli import app
from tests.conftest import trained_tiny_run

runner = CliRunner()
SENTINEL = "SENTINEL"
MODEL = "run/ensembles/e000/model.pt"
TINY = ["--width-mult", "0.25", "--head-width", "32", "--feature-width", "32"]
FAST = [*TINY, "--epochs", "1", "--max-train", "60", "--shrink-at", "none"]


class Hostile:
    """Unpickling this calls ``open(path, "w")``: the sentinel file appears if code runs."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny trained run with pareto.csv and ensemble e000 exported (model.pt only)."""
    return trained_tiny_run(tmp_path_factory.mktemp("hostile"), pareto=2, export="e000")


# --- damaging helpers: each takes the case folder -------------------------------------------


def truncate(rel: str, keep: float = 0.5) -> Callable[[Path], None]:
    def go(tmp: Path) -> None:
        data = (tmp / rel).read_bytes()
        (tmp / rel).write_bytes(data[: int(len(data) * keep)])

    return go


def write(rel: str, content: bytes | str) -> Callable[[Path], None]:
    def go(tmp: Path) -> None:
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        (tmp / rel).write_bytes(data)

    return go


def remove(rel: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / rel).unlink()


def hostile_pickle(rel: str, *, torch_file: bool) -> Callable[[Path], None]:
    """A file whose unpickling would create ``tmp/SENTINEL`` (as torch zip or raw pickle)."""

    def go(tmp: Path) -> None:
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        evil = Hostile(tmp / SENTINEL)
        if torch_file:
            torch.save({"model": evil, "epoch": 1, "space": "", "weights": ""}, tmp / rel)
        else:
            (tmp / rel).write_bytes(pickle.dumps({b"data": evil, b"labels": [0]}, protocol=2))

    return go


def torch_payload(rel: str, edit: Callable[[dict], None]) -> Callable[[Path], None]:
    """Rewrite a torch file's payload, changed in place by ``edit``."""

    def go(tmp: Path) -> None:
        payload = torch.load(tmp / rel, map_location="cpu", weights_only=True)
        edit(payload)
        torch.save(payload, tmp / rel)

    return go


def torch_file(rel: str, obj: object) -> Callable[[Path], None]:
    """Replace a torch file with a valid torch file holding ``obj``."""
    return lambda tmp: torch.save(obj, tmp / rel)


def edit_json(rel: str, edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def go(tmp: Path) -> None:
        data = json.loads((tmp / rel).read_text())
        edit(data)
        (tmp / rel).write_text(json.dumps(data))

    return go


def npz(**arrays: np.ndarray) -> Callable[[Path], None]:
    def go(tmp: Path) -> None:
        np.savez(tmp / "d.npz", **arrays)

    return go


def images(layout: dict[str, list[tuple[str, bytes | tuple[int, int]]]]) -> Callable[[Path], None]:
    """An image folder ``tmp/imgs``: per class, files as raw bytes or a (w, h) gray PNG."""
    from PIL import Image

    def go(tmp: Path) -> None:
        (tmp / "imgs").mkdir()
        for cls, files in layout.items():
            (tmp / "imgs" / cls).mkdir()
            for name, content in files:
                if isinstance(content, bytes):
                    (tmp / "imgs" / cls / name).write_bytes(content)
                else:
                    Image.new("L", content, color=128).save(tmp / "imgs" / cls / name)

    return go


def idx_files(*, damage: str) -> Callable[[Path], None]:
    """The four MNIST IDX files in ``tmp/mnist``, with one damaged."""

    def idx(arr: np.ndarray) -> bytes:
        head = bytes([0, 0, 0x08, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
        return head + arr.astype(np.uint8).tobytes()

    def go(tmp: Path) -> None:
        root = tmp / "mnist"
        root.mkdir()
        rng = np.random.default_rng(0)
        files = {
            "train-images-idx3-ubyte": idx(rng.integers(0, 256, (20, 28, 28))),
            "train-labels-idx1-ubyte": idx(np.arange(20) % 10),
            "t10k-images-idx3-ubyte": idx(rng.integers(0, 256, (10, 28, 28))),
            "t10k-labels-idx1-ubyte": idx(np.arange(10) % 10),
        }
        if damage == "truncated":
            files["train-images-idx3-ubyte"] = files["train-images-idx3-ubyte"][:-100]
        elif damage == "magic":
            files["train-labels-idx1-ubyte"] = b"PK\x03\x04" + b"\0" * 20
        elif damage == "tiny":
            files["t10k-images-idx3-ubyte"] = b"\0\0"
        elif damage == "gzip":
            files["train-images-idx3-ubyte.gz"] = gzip.compress(
                files.pop("train-images-idx3-ubyte")
            )[:-30]
        elif damage == "huge":  # a header claiming 2^32-1 x 2^32-1 x 2^32-1 images
            files["train-images-idx3-ubyte"] = bytes([0, 0, 8, 3]) + b"\xff" * 12 + b"\0" * 64
        elif damage == "ndim0":
            files["train-labels-idx1-ubyte"] = bytes([0, 0, 8, 0]) + b"\0" * 4
        elif damage == "ndim-large":  # a header naming 200 dimensions, then nothing
            files["t10k-labels-idx1-ubyte"] = bytes([0, 0, 8, 200]) + b"\0" * 8
        elif damage == "labels":  # labels beyond the ten classes
            files["train-labels-idx1-ubyte"] = idx(np.arange(20) + 5)
        for name, data in files.items():
            (root / name).write_bytes(data)

    return go


def cifar(*, damage: str) -> Callable[[Path], None]:
    """A CIFAR-10 python batch folder ``tmp/cifar`` (tiny batches), with one thing damaged."""

    def go(tmp: Path) -> None:
        root = tmp / "cifar"
        root.mkdir()
        rng = np.random.default_rng(0)
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            batch = {
                b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8),
                b"labels": [i % 10 for i in range(10)],
            }
            (root / name).write_bytes(pickle.dumps(batch, protocol=2))
        meta = {b"label_names": [f"c{i}".encode() for i in range(10)]}
        (root / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
        if damage == "missing":
            (root / "data_batch_3").unlink()
        elif damage == "meta-hostile":
            hostile_pickle("cifar/batches.meta", torch_file=False)(tmp)
        elif damage == "batch-hostile":
            hostile_pickle("cifar/data_batch_2", torch_file=False)(tmp)
        elif damage == "garbage":
            (root / "test_batch").write_bytes(b"\x80\x02garbage" * 10)
        elif damage == "truncated":
            data = (root / "data_batch_1").read_bytes()
            (root / "data_batch_1").write_bytes(data[: len(data) // 2])
        elif damage == "list":
            (root / "data_batch_4").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
        elif damage == "shape":
            bad = {b"data": np.zeros((10, 100), np.uint8), b"labels": list(range(10))}
            (root / "data_batch_5").write_bytes(pickle.dumps(bad, protocol=2))
        elif damage == "meta-names":
            (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": 3}, protocol=2))

    return go


def run_file(rel: str) -> Callable[[Path], None]:
    """Put a regular file where a folder is expected."""

    def go(tmp: Path) -> None:
        target = tmp / rel
        if target.is_dir():
            shutil.rmtree(target)
        target.write_text("not a folder\n")

    return go


def pareto_id(value: str) -> Callable[[Path], None]:
    """Rename ensemble e001 of ``run/pareto.csv`` to ``value`` ({tmp} is the case folder)."""

    def go(tmp: Path) -> None:
        path = tmp / "run" / "pareto.csv"
        path.write_text(path.read_text().replace("\ne001,", f"\n{value.format(tmp=tmp)},"))

    return go


def symlink(rel: str, target: str) -> Callable[[Path], None]:
    """Replace ``rel`` by a symbolic link to ``target`` (in the case folder), made first."""

    def go(tmp: Path) -> None:
        (tmp / target).mkdir(parents=True, exist_ok=True) if "." not in target else None
        if "." in target:
            (tmp / target).write_text("SECRET\n")
        if (tmp / rel).is_dir() and not (tmp / rel).is_symlink():
            shutil.rmtree(tmp / rel)
        elif (tmp / rel).exists():
            (tmp / rel).unlink()
        (tmp / rel).symlink_to(tmp / target)

    return go


def space_edit(rel: str, key: str, edit: Callable[[dict], None]) -> Callable[[Path], None]:
    """Change the search space stored (as JSON) under ``key`` of a torch file."""

    def change(payload: dict) -> None:
        space = json.loads(payload[key])
        edit(space)
        payload[key] = json.dumps(space)

    return torch_payload(rel, change)


def _head(field_name: str, value: object) -> Callable[[dict], None]:
    return lambda space: space["head"].__setitem__(field_name, value)


# --- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    args: list[str]  # {tmp} is the case folder, {run} its copy of the trained run
    damage: list[Callable[[Path], None]] = field(default_factory=list)
    message: str = ""  # a fragment the error line must hold
    needs_run: bool = True


CKPT = "run/supernet.pt"
EVOLVE = ["evolve", "{run}", "--population", "4", "--generations", "1", "--no-latency"]
EXPORT = ["export", "{run}", "--select", "e001", "--format", "torch", "--no-cascade"]
RANK = ["rank", "{run}", "--samples", "3", "--epochs", "1"]
CASCADE = ["cascade", "{run}", "--id", "e000"]
TRAIN = ["train", "--out", "{tmp}/out", *FAST]
SEARCH = ["search", "--out", "{tmp}/out", *FAST]


def _set(key: str, value: object) -> Callable[[dict], None]:
    return lambda d: d.__setitem__(key, value)


def _data(source: str, *extra: str) -> list[str]:
    return [*TRAIN, "--data", source, *extra]


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
        "",
        needs_run=False,
    ),
    # .npz
    Case(
        "npz-wrong-keys",
        _data("{tmp}/d.npz"),
        [npz(images=np.zeros((10, 8, 8)), labels=np.zeros(10))],
        "lacks",
        needs_run=False,
    ),
    Case(
        "npz-not-zip",
        _data("{tmp}/d.npz"),
        [write("d.npz", b"this is not a zip file at all")],
        "d.npz",
        needs_run=False,
    ),
    Case(
        "npz-hostile-pickle",
        _data("{tmp}/d.npz"),
        [hostile_pickle("d.npz", torch_file=False)],
        "d.npz",
        needs_run=False,
    ),
    Case(
        "npz-object-array",
        _data("{tmp}/d.npz"),
        [npz(x=np.array([{"a": 1}] * 10, dtype=object), y=np.arange(10) % 2)],
        "d.npz",
        needs_run=False,
    ),
    Case(
        "npz-inf",
        _data("{tmp}/d.npz"),
        [npz(x=np.full((30, 8, 8), np.inf), y=np.arange(30) % 3)],
        "inf",
        needs_run=False,
    ),
    Case(
        "npz-2d-labels",
        _data("{tmp}/d.npz"),
        [npz(x=np.zeros((30, 8, 8)), y=np.zeros((30, 2)))],
        "1-D",
        needs_run=False,
    ),
    Case(
        "npz-float-labels",
        _data("{tmp}/d.npz"),
        [npz(x=np.zeros((30, 8, 8)), y=np.arange(30) % 3 + 0.5)],
        "labels",
        needs_run=False,
    ),
    Case(
        "npz-length-mismatch",
        _data("{tmp}/d.npz"),
        [npz(x=np.zeros((30, 8, 8)), y=np.arange(20) % 2)],
        "samples",
        needs_run=False,
    ),
    Case(
        "npz-5d",
        _data("{tmp}/d.npz"),
        [npz(x=np.zeros((30, 2, 2, 2, 2)), y=np.arange(30) % 3)],
        "shape",
        needs_run=False,
    ),
    Case(
        "npz-truncated",
        _data("{tmp}/d.npz"),
        [npz(x=np.zeros((30, 8, 8)), y=np.arange(30) % 3), truncate("d.npz", 0.6)],
        "d.npz",
        needs_run=False,
    ),
    Case(
        "npz-nan",
        _data("{tmp}/d.npz"),
        [npz(x=np.full((30, 8, 8), np.nan), y=np.arange(30) % 3)],
        "NaN",
        needs_run=False,
    ),
    Case(
        "npz-val-without-y",
        _data("{tmp}/d.npz"),
        [npz(x=np.zeros((30, 8, 8)), y=np.arange(30) % 3, x_val=np.zeros((6, 8, 8)))],
        "y_val",
        needs_run=False,
    ),
    Case(
        "npz-val-shape",
        _data("{tmp}/d.npz"),
        [
            npz(
                x=np.zeros((30, 8, 8)),
                y=np.arange(30) % 3,
                x_val=np.zeros((6, 9, 9)),
                y_val=np.arange(6) % 3,
                x_test=np.zeros((6, 8, 8)),
                y_test=np.arange(6) % 3,
            )
        ],
        "x_val",
        needs_run=False,
    ),
    Case(
        "npz-complex",
        _data("{tmp}/d.npz"),
        [npz(x=np.zeros((30, 8, 8), np.complex64), y=np.arange(30) % 3)],
        "dtype",
        needs_run=False,
    ),
    Case(
        "npz-empty",
        _data("{tmp}/d.npz"),
        [npz(x=np.zeros((0, 8, 8)), y=np.zeros(0, np.int64))],
        "d.npz",
        needs_run=False,
    ),
    # image folders
    Case("images-empty", _data("{tmp}/imgs"), [images({})], "class", needs_run=False),
    Case(
        "images-no-images",
        _data("{tmp}/imgs"),
        [images({"a": [("x.png", (8, 8))] * 3, "b": [("notes.txt", b"hello")]})],
        "holds no images",
        needs_run=False,
    ),
    Case(
        "images-corrupt-png",
        _data("{tmp}/imgs"),
        [
            images(
                {
                    "a": [(f"{i}.png", (8, 8)) for i in range(3)],
                    "b": [("0.png", (8, 8)), ("1.png", b"\x89PNG\r\n\x1a\ntruncated")],
                }
            )
        ],
        "1.png",
        needs_run=False,
    ),
    Case(
        "images-sizes-differ",
        _data("{tmp}/imgs"),
        [images({"a": [("0.png", (8, 8))], "b": [("0.png", (9, 9))]})],
        "resize",
        needs_run=False,
    ),
    Case(
        "images-one-class",
        _data("{tmp}/imgs"),
        [images({"a": [(f"{i}.png", (8, 8)) for i in range(6)]})],
        "2 classes",
        needs_run=False,
    ),
    Case(
        "images-text-as-png",
        _data("{tmp}/imgs"),
        [images({"a": [("0.png", (8, 8)), ("1.png", (8, 8))], "b": [("0.png", b"hello world")]})],
        "0.png",
        needs_run=False,
    ),
    Case(
        "data-dir-is-file",
        _data("cifar10", "--data-dir", "{tmp}/afile"),
        [write("afile", "x")],
        "afile",
        needs_run=False,
    ),
    # IDX (mnist)
    *(
        Case(
            f"idx-{d}",
            _data("mnist", "--data-dir", "{tmp}/mnist"),
            [idx_files(damage=d)],
            m,
            needs_run=False,
        )
        for d, m in (
            ("truncated", "train-images"),
            ("magic", "IDX"),
            ("tiny", "t10k-images"),
            ("gzip", "train-images"),
            ("labels", "labels"),
            ("huge", "train-images"),
            ("ndim0", "train-labels"),
            ("ndim-large", "t10k-labels"),
        )
    ),
    Case("mnist-no-dir", _data("mnist", "--data-dir", "{tmp}/none"), [], "none", needs_run=False),
    # CIFAR-10 batches
    *(
        Case(
            f"cifar-{d}",
            _data("cifar10", "--data-dir", "{tmp}/cifar"),
            [cifar(damage=d)],
            m,
            needs_run=False,
        )
        for d, m in (
            ("missing", "data_batch_3"),
            ("meta-hostile", "batches.meta"),
            ("batch-hostile", "data_batch_2"),
            ("garbage", "test_batch"),
            ("truncated", "data_batch_1"),
            ("list", "data_batch_4"),
            ("shape", "data_batch_5"),
            ("meta-names", "label_names"),
        )
    ),
    # CSV tables
    Case(
        "csv-missing-target",
        [*_data("{tmp}/t.csv", "--target", "price"), "--space", "mlp"],
        [write("t.csv", "a,b,label\n1,2,x\n3,4,y\n")],
        "price",
        needs_run=False,
    ),
    Case(
        "csv-no-target",
        [*_data("{tmp}/t.csv"), "--space", "mlp"],
        [write("t.csv", "a,b,label\n1,2,x\n3,4,y\n")],
        "--target",
        needs_run=False,
    ),
    Case(
        "csv-empty",
        [*_data("{tmp}/t.csv", "--target", "label"), "--space", "mlp"],
        [write("t.csv", "")],
        "t.csv",
        needs_run=False,
    ),
    Case(
        "csv-binary",
        [*_data("{tmp}/t.csv", "--target", "label"), "--space", "mlp"],
        [write("t.csv", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" * 20)],
        "t.csv",
        needs_run=False,
    ),
    Case(
        "csv-ragged",
        [*_data("{tmp}/t.csv", "--target", "label"), "--space", "mlp"],
        [write("t.csv", 'a,b,label\n1,2,x\n3,4,y,5,6\n"unclosed\n')],
        "t.csv",
        needs_run=False,
    ),
    Case(
        "csv-only-target",
        [*_data("{tmp}/t.csv", "--target", "label"), "--space", "mlp"],
        [write("t.csv", "label\nx\ny\nx\ny\nx\ny\n")],
        "t.csv",
        needs_run=False,
    ),
    Case(
        "csv-target-twice",
        [*_data("{tmp}/t.csv", "--target", "label"), "--space", "mlp"],
        [write("t.csv", "a,label,b,label\n1,x,2,y\n3,y,4,x\n")],
        "'label' 2 times",
        needs_run=False,
    ),
    Case(
        "csv-one-valued-target",
        [*_data("{tmp}/t.csv", "--target", "label"), "--space", "mlp"],
        [write("t.csv", "a,b,label\n1,2,x\n3,4,x\n5,6,x\n7,8,x\n")],
        "at least 2 classes",
        needs_run=False,
    ),
    Case(
        "csv-all-nan-feature",
        [*_data("{tmp}/t.csv", "--target", "label"), "--space", "mlp"],
        [write("t.csv", "a,label\n,x\nNA,y\n?,x\n,y\n")],
        "t.csv: the table has no usable feature column: 'a' is no values",
        needs_run=False,
    ),
    Case(
        "csv-header-only",
        [*_data("{tmp}/t.csv", "--target", "label"), "--space", "mlp"],
        [write("t.csv", "a,b,when,label\n")],
        "t.csv: the table has no rows",
        needs_run=False,
    ),
    *(
        Case(
            f"csv-{name}",
            [*_data("{tmp}/t.csv", "--target", "label"), "--space", "mlp"],
            [write("t.csv", f"a,b,label\n{value},1,x\n2,2,y\n3,3,x\n4,4,y\n5,5,x\n6,6,y\n")],
            "t.csv: column 'a'",
            needs_run=False,
        )
        for name, value in (("1e300", "1e300"), ("inf", "inf"), ("minus-inf", "-inf"))
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


def _deflate(path: Path) -> None:
    """Rewrite a torch file with its records deflated (torch reads them; neas must refuse)."""
    data = path.read_bytes()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root``: a folder marker or the file's sha256."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = f"link -> {os.readlink(p)}"
        else:
            out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Case, tmp_path: Path, request) -> None:
    if case.needs_run:
        shutil.copytree(request.getfixturevalue("trained"), tmp_path / "run")
    for damage in case.damage:
        damage(tmp_path)
    args = [
        a.replace("{tmp}", str(tmp_path)).replace("{run}", str(tmp_path / "run")) for a in case.args
    ]
    before = snapshot(tmp_path)
    result = runner.invoke(app, args)
    output = result.output
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}"
    )
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), output
    assert result.exit_code == 2, output
    assert case.message in lines[0], output
    assert not (tmp_path / SENTINEL).exists(), "a pickle ran code"
    assert snapshot(tmp_path) == before, "the failed command changed files"


def test_there_are_at_least_forty_cases() -> None:
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)

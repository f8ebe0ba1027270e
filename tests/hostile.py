"""Broken and hostile input through the CLI: the case type, its damaging helpers and its one
checker. The tables live in ``test_hostile_runs.py`` (run folders and the files in them),
``test_hostile_data.py`` (data files) and ``test_hostile_options.py`` (options).

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


# --- the case --------------------------------------------------------------------------------


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


def check(case: Case, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Run ``case`` in ``tmp_path`` (with a copy of the ``hostile_run`` fixture's trained run
    when it needs one) and check the contract in the module doc."""
    if case.needs_run:
        shutil.copytree(request.getfixturevalue("hostile_run"), tmp_path / "run")
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


def check_table(cases: list[Case]) -> None:
    """A table's cases have ids of their own and each names what its error line must hold."""
    assert len({c.id for c in cases}) == len(cases)
    assert all(c.message for c in cases), [c.id for c in cases if not c.message]

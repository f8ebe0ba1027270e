"""Hostile data files through the CLI: ``.npz`` files, image folders, IDX and CIFAR-10 files and
CSV tables that are broken, hostile or unusable (the contract and its checker:
``tests/hostile.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.hostile import (
    Case,
    _data,
    check,
    check_table,
    cifar,
    hostile_pickle,
    idx_files,
    images,
    npz,
    truncate,
    write,
)

CASES = [
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
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_data(case: Case, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    check(case, tmp_path, request)


def test_the_table_is_whole() -> None:
    check_table(CASES)

"""Tests for neas.data: real digits, generated npz/image/IDX files, and error messages."""

from __future__ import annotations

import dataclasses
import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest

from neas.data import BUILTIN, FASHION_MNIST_DIR, DataError, Dataset, load_dataset
from neas.data.load import split_raw
from neas.data.npz import raw_from_arrays


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", seed=0)


def _labels(n: int, k: int) -> np.ndarray:
    return np.arange(n) % k


def _save_npz(path: Path, x: np.ndarray, y: np.ndarray) -> str:
    np.savez(path, x=x, y=y)
    return str(path)


def test_digits_shapes_and_split_sizes(digits: Dataset) -> None:
    assert digits.input_shape == (1, 8, 8)
    assert digits.image_size == 8 and digits.in_channels == 1
    assert digits.num_classes == 10
    assert digits.class_names == tuple(str(i) for i in range(10))
    n_train, n_val, n_test = len(digits.y_train), len(digits.y_val), len(digits.y_test)
    assert n_train + n_val + n_test == 1797
    assert abs(n_train - 0.6 * 1797) <= 2
    assert abs(n_val - 0.2 * 1797) <= 2 and abs(n_test - 0.2 * 1797) <= 2
    for x, y in (
        (digits.x_train, digits.y_train),
        (digits.x_val, digits.y_val),
        (digits.x_test, digits.y_test),
    ):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.flags["C_CONTIGUOUS"] and len(x) == len(y)
        assert set(np.unique(y)) == set(range(10))  # stratified: every class in every split


def test_digits_normalised_with_train_stats(digits: Dataset) -> None:
    assert np.allclose(digits.x_train.mean(axis=(0, 2, 3)), 0.0, atol=1e-4)
    assert np.allclose(digits.x_train.std(axis=(0, 2, 3)), 1.0, atol=1e-4)
    assert 0.0 < digits.mean[0] < 1.0 and 0.0 < digits.std[0] < 1.0  # raw /16 scale
    assert len(digits.mean) == len(digits.std) == 1


def test_digits_seed_determinism(digits: Dataset) -> None:
    again = load_dataset("digits", seed=0)
    assert np.array_equal(again.x_train, digits.x_train)
    assert np.array_equal(again.y_val, digits.y_val)
    other = load_dataset("digits", seed=1)
    assert not np.array_equal(other.x_train, digits.x_train)


def test_max_train_caps_only_train(digits: Dataset) -> None:
    ds = load_dataset("digits", seed=0, max_train=100)
    assert len(ds.y_train) == 100
    assert set(np.unique(ds.y_train)) == set(range(10))
    assert len(ds.y_val) == len(digits.y_val) and len(ds.y_test) == len(digits.y_test)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((60, 6, 6), (1, 6, 6)),
        ((60, 6, 6, 3), (3, 6, 6)),
        ((60, 3, 6, 6), (3, 6, 6)),
        ((60, 6, 6, 1), (1, 6, 6)),
        ((60, 1, 6, 6), (1, 6, 6)),
    ],
)
def test_npz_layouts(tmp_path: Path, shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=shape, dtype=np.uint8)
    y = np.array([7, 3, 5])[_labels(60, 3)]
    ds = load_dataset(_save_npz(tmp_path / "d.npz", x, y), seed=0)
    assert ds.input_shape == expected
    assert ds.class_names == ("3", "5", "7")
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 60
    assert set(np.unique(ds.y_train)) == {0, 1, 2}
    assert all(0.0 < m < 1.0 for m in ds.mean)  # uint8 divided by 255


def test_npz_layout_keeps_pixels(tmp_path: Path) -> None:
    x = np.zeros((60, 4, 4, 3), dtype=np.float32)
    x[..., 0] = 1.0  # channel 0 constant 1, others 0
    x[::2, :, :, 2] = 0.5
    ds = load_dataset(_save_npz(tmp_path / "d.npz", x, _labels(60, 3)))
    assert ds.mean[0] == pytest.approx(1.0) and ds.mean[1] == pytest.approx(0.0)
    assert 0.0 < ds.mean[2] < 0.5


def test_npz_string_labels(tmp_path: Path) -> None:
    x = np.random.default_rng(1).random((60, 5, 5)).astype(np.float32)
    y = np.array(["zebra", "cat", "dog"])[_labels(60, 3)]
    ds = load_dataset(_save_npz(tmp_path / "s.npz", x, y))
    assert ds.class_names == ("cat", "dog", "zebra")
    assert ds.name == "s"
    full_y = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    assert np.bincount(full_y).tolist() == [20, 20, 20]


def test_image_folder(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("bird", "ant", "cow"):
        (tmp_path / cls).mkdir()
        for i in range(10):
            pixels = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels, mode="RGB").save(tmp_path / cls / f"{i}.png")
    ds = load_dataset(str(tmp_path), seed=0)
    assert ds.input_shape == (3, 8, 8)
    assert ds.class_names == ("ant", "bird", "cow")
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 30


def test_image_folder_size_mismatch(tmp_path: Path) -> None:
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("L", (8, 8)).save(tmp_path / cls / f"{i}.png")
    Image.new("L", (9, 8)).save(tmp_path / "b" / "odd.png")
    with pytest.raises(DataError, match="odd.png"):
        load_dataset(str(tmp_path))


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_mnist_keeps_official_test(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (50, 28, 28)))
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", _labels(50, 10))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28)))
    test_labels = _labels(20, 10)[::-1]
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", test_labels)
    ds = load_dataset("mnist", data_dir=tmp_path, seed=0, val_fraction=0.2)
    assert ds.input_shape == (1, 28, 28)
    assert ds.class_names == tuple(str(i) for i in range(10))
    assert len(ds.y_test) == 20 and np.array_equal(ds.y_test, test_labels)
    assert len(ds.y_train) == 40 and len(ds.y_val) == 10


def test_idx_bad_magic(tmp_path: Path) -> None:
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (tmp_path / name).write_bytes(b"\x12\x34\x56\x78" + bytes(16))
    with pytest.raises(DataError, match="not an IDX file"):
        load_dataset("mnist", data_dir=tmp_path)


def test_fashion_mnist_from_debian_package() -> None:
    if not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"dataset-fashion-mnist not installed at {FASHION_MNIST_DIR}")
    ds = load_dataset("fashion-mnist", max_train=1000, seed=0)
    assert ds.input_shape == (1, 28, 28)
    assert ds.num_classes == 10 and ds.class_names[0] == "T-shirt/top"
    assert len(ds.y_train) == 1000 and len(ds.y_val) == 12000 and len(ds.y_test) == 10000


def test_cifar10_pickle_folder(tmp_path: Path) -> None:
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.default_rng(0)
    names = [b"airplane", b"automobile", b"bird"]
    batches = {f"data_batch_{i}": 12 for i in range(1, 6)} | {"test_batch": 9}
    for name, n in batches.items():
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": list(_labels(n, 3)),
        }
        (root / name).write_bytes(pickle.dumps(batch))
    (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    for data_dir in (tmp_path, root):  # parent or the folder itself
        ds = load_dataset("cifar10", data_dir=data_dir, seed=0)
        assert ds.input_shape == (3, 32, 32) and len(ds.mean) == 3
        assert ds.class_names == ("airplane", "automobile", "bird")
        assert len(ds.y_test) == 9 and len(ds.y_train) + len(ds.y_val) == 60


def test_error_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_dataset(str(tmp_path / "nope.npz"))
    with pytest.raises(DataError, match="missing mnist file"):
        load_dataset("mnist", data_dir=tmp_path)


def test_error_nan(tmp_path: Path) -> None:
    x = np.zeros((30, 4, 4), dtype=np.float32)
    x[3, 1, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        load_dataset(_save_npz(tmp_path / "n.npz", x, _labels(30, 3)))


def test_error_one_class(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="at least 2 classes"):
        load_dataset(_save_npz(tmp_path / "o.npz", np.zeros((30, 4, 4)), np.zeros(30, int)))


def test_error_length_mismatch(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="30 samples but y has 29"):
        load_dataset(_save_npz(tmp_path / "m.npz", np.zeros((30, 4, 4)), _labels(29, 3)))


def test_error_unknown_builtin() -> None:
    with pytest.raises(DataError, match="unknown dataset 'cifar100'") as info:
        load_dataset("cifar100")
    assert all(name in str(info.value) for name in BUILTIN)


def test_error_bad_npz_shape(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="expected a table N x F, N x H x W"):
        load_dataset(_save_npz(tmp_path / "b.npz", np.zeros(30), _labels(30, 3)))
    with pytest.raises(DataError, match="expected a table N x F, N x H x W"):
        load_dataset(_save_npz(tmp_path / "c.npz", np.zeros((30, 5, 6, 7)), _labels(30, 3)))


def test_npz_table_and_fixed_splits(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(30, 16))
    table = load_dataset(_save_npz(tmp_path / "t.npz", x, _labels(30, 3)))
    assert table.input_shape == (16, 1, 1) and table.image_size == 1
    path = tmp_path / "fixed.npz"
    y = _labels(30, 3)
    np.savez(path, x=x[:20], y=y[:20], x_val=x[20:25], y_val=y[20:25], x_test=x[25:], y_test=y[25:])
    fixed = load_dataset(str(path))
    assert (len(fixed.x_train), len(fixed.x_val), len(fixed.x_test)) == (20, 5, 5)
    np.testing.assert_array_equal(fixed.y_val, y[20:25])
    np.savez(path, x=x, y=y, x_val=x[:5], y_val=y[:5])
    with pytest.raises(DataError, match="needs a fixed test split"):
        load_dataset(str(path))


def test_error_too_few_per_class(tmp_path: Path) -> None:
    y = np.array([0] * 10 + [1] * 10 + [2])
    with pytest.raises(DataError, match="class '2' has only 1 sample"):
        load_dataset(_save_npz(tmp_path / "f.npz", np.zeros((21, 4, 4)), y))


def test_image_size_requires_square(tmp_path: Path) -> None:
    ds = load_dataset(_save_npz(tmp_path / "r.npz", np.zeros((30, 4, 6)), _labels(30, 3)))
    assert ds.input_shape == (1, 4, 6)
    with pytest.raises(DataError, match="non-square"):
        _ = ds.image_size


class _Sentinel:
    """A pickle that would create a file when loaded (what a hostile 'CIFAR batch' does)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_cifar_loader_refuses_pickled_code_and_reads_real_batches(tmp_path: Path) -> None:
    import pickle

    sentinel = tmp_path / "SENTINEL"
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    (hostile / "batches.meta").write_bytes(pickle.dumps({b"label_names": _Sentinel(sentinel)}))
    with pytest.raises(DataError, match="refuses"):
        load_dataset("cifar10", data_dir=str(hostile))
    assert not sentinel.exists()
    good = tmp_path / "cifar-10-batches-py"
    good.mkdir()
    rng = np.random.default_rng(0)
    meta = {b"label_names": [f"class{i}".encode() for i in range(10)]}
    (good / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8),
                 b"labels": list(range(10)) * 2, b"filenames": [b"x.png"] * 20}  # fmt: skip
        (good / name).write_bytes(pickle.dumps(batch, protocol=2))
    ds = load_dataset("cifar10", data_dir=str(tmp_path))
    assert ds.input_shape == (3, 32, 32) and len(ds.x_test) == 20 and ds.class_names[0] == "class0"


def test_cifar10_reader_takes_numpy_1_and_2_pickles_and_refuses_code(tmp_path: Path) -> None:
    from neas.data.cifar import unpickle_cifar as _unpickle_cifar

    batch = {b"data": np.arange(6, dtype=np.uint8).reshape(2, 3), b"labels": [np.int64(1), 2]}
    new = pickle.dumps(batch, protocol=2)
    old = new.replace(b"numpy._core.", b"numpy.core.")  # as numpy 1 (and CIFAR-10) wrote them
    assert old != new
    for i, data in enumerate((new, old, pickle.dumps(batch, protocol=5))):
        (tmp_path / f"b{i}").write_bytes(data)
        loaded = _unpickle_cifar(tmp_path / f"b{i}")
        assert loaded[b"data"].tolist() == [[0, 1, 2], [3, 4, 5]]
    (tmp_path / "evil").write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    with pytest.raises(DataError, match="os.system"):
        _unpickle_cifar(tmp_path / "evil")


def test_arrays_in_memory_give_the_dataset_their_npz_gives(tmp_path: Path) -> None:
    """The estimator hands its arrays in memory (``raw_from_arrays`` + ``split_raw``); the
    dataset must be the one an ``.npz`` of the same arrays loads (the run folder names it)."""
    rng = np.random.default_rng(0)
    arrays = {
        "x": rng.normal(size=(60, 5)).astype(np.float32),
        "y": np.arange(60) % 3,
        "x_val": rng.normal(size=(15, 5)).astype(np.float32),
        "y_val": np.arange(15) % 3,
        "x_test": rng.normal(size=(15, 5)).astype(np.float32),
        "y_test": np.arange(15) % 3,
    }
    np.savez(tmp_path / "fit.npz", **arrays)
    from_file = load_dataset(str(tmp_path / "fit.npz"))
    in_memory = split_raw(raw_from_arrays(arrays, where="X"), name="fit")
    for field in dataclasses.fields(Dataset):
        a, b = getattr(from_file, field.name), getattr(in_memory, field.name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        else:
            assert a == b, field.name
    with pytest.raises(DataError, match="^X: x_val and y_val come together"):
        raw_from_arrays({"x": arrays["x"], "y": arrays["y"], "x_val": arrays["x_val"]}, where="X")

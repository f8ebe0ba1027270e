"""Tables end to end: a CSV with a text column and missing values -> search -> export -> ONNX."""

from __future__ import annotations

import json
import tempfile
import warnings

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from typer.testing import CliRunner

from neas import NEASClassifier
from neas.cli import app
from neas.config import SpaceOptions
from neas.data import load_dataset
from neas.deploy import load_ensemble
from neas.errors import DataError
from neas.job_space import build_space
from neas.table_columns import CARDINALITY_THRESHOLD
from neas.tabular import TableEncoder, read_csv

runner = CliRunner()


def cancer_csv(path, *, seed: int = 0) -> pd.DataFrame:
    """scikit-learn's breast_cancer with a text column, missing values and text labels."""
    d = load_breast_cancer(as_frame=True)
    frame = d.frame.drop(columns=["target"]).copy()
    rng = np.random.default_rng(seed)
    frame.loc[rng.random(len(frame)) < 0.1, "mean radius"] = np.nan
    frame["site"] = rng.choice(["north", "south", "east"], len(frame))
    frame.loc[rng.random(len(frame)) < 0.05, "site"] = None
    frame["diagnosis"] = np.where(d.target == 1, "benign", "malignant")
    frame.to_csv(path, index=False)
    return frame


def test_encoder_imputes_one_hots_and_round_trips() -> None:
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": ["x", "y", None], "c": [True, False, True]})
    enc = TableEncoder.fit(frame)
    assert enc.features == ("a", "b=x", "b=y", "c")
    out = enc.transform(frame)
    np.testing.assert_array_equal(out[:, 0], [1.0, 2.0, 3.0])  # median of 1 and 3
    np.testing.assert_array_equal(out[2, 1:3], [0.0, 0.0])  # missing text: no category set
    again = TableEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    unseen = pd.DataFrame({"c": [False], "b": ["z"], "a": [np.nan]})  # other order, new value
    np.testing.assert_array_equal(again.transform(unseen), [[2.0, 0.0, 0.0, 0.0]])
    with pytest.raises(DataError, match="lacks column"):
        enc.transform(frame.drop(columns=["b"]))
    ids = pd.DataFrame({"id": [f"row{i}" for i in range(CARDINALITY_THRESHOLD + 1)]})
    with pytest.raises(DataError, match="no usable feature column: 'id' is an id"):
        TableEncoder.fit(ids)  # ids are dropped: nothing is left


def test_csv_loads_as_a_table(tmp_path) -> None:
    cancer_csv(tmp_path / "t.csv")
    ds = load_dataset(str(tmp_path / "t.csv"), target="diagnosis")
    assert ds.input_shape == (33, 1, 1) and ds.class_names == ("benign", "malignant")
    assert ds.preprocessing["categories"] == {"site": ["east", "north", "south"]}
    np.testing.assert_allclose(ds.x_train.mean(axis=0).ravel(), 0.0, atol=1e-4)
    with pytest.raises(DataError, match="--target"):
        load_dataset(str(tmp_path / "t.csv"))
    with pytest.raises(DataError, match="no column 'label'"):
        load_dataset(str(tmp_path / "t.csv"), target="label")


@pytest.mark.parametrize("embedding", ["periodic", "piecewise"])
def test_csv_search_export_and_onnx_serving(tmp_path, embedding) -> None:
    """A table's search exports an ensemble whose ONNX graph, fed rows encoded as recorded,
    matches PyTorch, with each numeric-feature stem."""
    frame = cancer_csv(tmp_path / "cancer.csv")
    out = tmp_path / "run"
    args = ["search", "--data", str(tmp_path / "cancer.csv"), "--target",
            "diagnosis", "--budget", "300k", "--epochs", "6", "--population", "6",
            "--generations", "2", "--width-mult", "0.5", "--threads", "1",
            "--embedding", embedding, "--out", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    front = pd.read_csv(out / "pareto.csv")
    assert (front["macs"] <= 300_000).all() and front["test_accuracy"].max() > 0.85
    folder = out / "ensembles" / "e000"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["onnx"]["parity_max_abs_diff"] <= 1e-4
    assert manifest["input"]["preprocessing"]["columns"][-1] == "site"
    # serving: encode rows as recorded, normalise, run the ONNX graph
    model = load_ensemble(folder / "model.pt")
    rows = frame.drop(columns=["diagnosis"]).iloc[:50]
    raw = model.encode_table(rows)
    spec = manifest["input"]
    x = ((raw - np.array(spec["mean"])) / np.array(spec["std"])).astype(np.float32)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    probs = session.run(["probabilities"], {"input": x[:, :, None, None]})[0]
    np.testing.assert_allclose(probs, model.predict_proba(raw, normalize=True), atol=1e-4)
    truth = (frame["diagnosis"].iloc[:50] == "malignant").to_numpy()
    assert (probs.argmax(1) == truth).mean() > 0.8


def test_images_need_mbconv_and_tables_need_mlp(tmp_path) -> None:
    """The default space (auto) is picked from the data; a wrong explicit one is refused."""
    cancer_csv(tmp_path / "t.csv")
    table = load_dataset(str(tmp_path / "t.csv"), target="diagnosis")
    assert build_space(SpaceOptions(), table).block == "mlp"
    assert build_space(SpaceOptions(), load_dataset("digits")).block == "mbconv"
    result = runner.invoke(
        app, ["train", "--out", str(tmp_path / "r"), "--data", str(tmp_path / "t.csv"),
              "--target", "diagnosis", "--space", "mbconv"],
    )  # fmt: skip
    assert result.exit_code == 2 and "use --space mlp" in result.output
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "r"), "--space", "mlp"])
    assert result.exit_code == 2 and "use --space mbconv" in result.output
    assert not (tmp_path / "r").exists()


def test_csv_thousands_separators_and_missing_markers_are_numbers(tmp_path) -> None:
    rows = ['"1,234",?,a,x', '"2,345,678.5",1.5,b,y', "3,-,?,x", '"-4,000",NA,a,y', "5,2.5,b,x"]
    (tmp_path / "t.csv").write_text("n,m,c,label\n" + "\n".join(rows) + "\n")
    frame, _ = read_csv(str(tmp_path / "t.csv"), target="label")
    enc = TableEncoder.fit(frame)
    assert enc.features == ("n", "m", "c=a", "c=b")  # numbers, not one-hot; "?" is missing
    np.testing.assert_array_equal(
        enc.transform(frame)[:, :2], [[1234, 2], [2345678.5, 1.5], [3, 2], [-4000, 2], [5, 2.5]]
    )
    # the same for text columns given directly (NEASClassifier, serving); "1,2" is no number
    enc = TableEncoder.fit(pd.DataFrame({"a": ["1,234", "?", 5, None], "b": ["1,2", "?", 5, "7"]}))
    assert set(enc.medians) == {"a"} and enc.categories["b"] == ("1,2", "5", "7", "?")


def test_csv_too_large_values_refused_without_warnings(tmp_path) -> None:
    (tmp_path / "t.csv").write_text("a,label\n1e300,x\n2,y\n3,x\n4,y\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match=r"t\.csv: column 'a' holds values too large"):
            load_dataset(str(tmp_path / "t.csv"), target="label")


def test_estimator_errors_do_not_name_its_temp_file() -> None:
    x = np.random.default_rng(0).random((20, 2, 5, 7))  # 2 channels: no image layout
    with pytest.raises(DataError) as info:
        NEASClassifier(epochs=1).fit(x, np.arange(20) % 2)
    message = str(info.value)
    assert message.startswith("X: x has shape") and tempfile.gettempdir() not in message


def test_piecewise_linear_encoding_is_monotone_and_lossless() -> None:
    """Each feature's bins reconstruct it exactly (first edge + sum of bin fill x bin width,
    tails included), every bin is non-decreasing in the feature, and the middle bins are
    clamped to [0, 1]."""
    import torch

    from neas.nn.layers import PiecewiseLinearEncoding

    enc = PiecewiseLinearEncoding(8, tail=0.02)
    x = torch.linspace(-6.0, 6.0, 241)[:, None, None, None]
    e = enc(x).flatten(1)  # 241 x 8 (one feature)
    back = enc.left[0] + (e * enc.width).sum(1)
    torch.testing.assert_close(back, x.flatten(), atol=1e-5, rtol=0)
    assert (e.diff(dim=0) >= 0).all()
    assert e[:, 1:-1].min() == 0 and e[:, 1:-1].max() == 1
    assert e[0, 0] < 0 and e[-1, -1] > 1  # the outer bins extend past the edges
    two = enc(torch.tensor([[0.3, -1.2]])[:, :, None, None]).flatten(1)
    torch.testing.assert_close(two[:, :8], enc(torch.tensor([[[[0.3]]]])).flatten(1))


def test_periodic_embeddings_are_the_default_and_train(tmp_path) -> None:
    """``periodic`` (the default) makes the mlp stem embed each feature (trainable frequencies
    that learn), ``none`` feeds the values, and ``--embedding`` on images is refused with one
    line."""
    import torch

    from neas.nn.builder import build_stem

    cancer_csv(tmp_path / "t.csv")
    table = load_dataset(str(tmp_path / "t.csv"), target="diagnosis")
    periodic = build_space(SpaceOptions(), table)  # the default
    plain = build_space(SpaceOptions(embedding="none"), table)  # the features' own values
    assert periodic.stem.frequencies > 0 and plain.stem.frequencies == 0
    assert periodic.stem.linear_in == table.in_channels * periodic.stem.embedding_dim
    stem = build_stem(periodic)
    before = stem[0].frequencies.detach().clone()
    x = torch.from_numpy(table.x_train[:64])
    opt = torch.optim.SGD(stem.parameters(), lr=0.1)
    stem(x).square().mean().backward()
    opt.step()
    assert stem(x).shape == (64, periodic.stem.out_channels, 1, 1)
    assert not torch.equal(before, stem[0].frequencies)  # the frequencies are trained
    assert build_stem(plain)(x).shape == (64, plain.stem.out_channels, 1, 1)
    result = runner.invoke(
        app, ["train", "--out", str(tmp_path / "r"), "--embedding", "none", "--epochs", "1"]
    )
    assert result.exit_code == 2 and "--embedding applies to tables" in result.output
    result = runner.invoke(
        app, ["train", "--out", str(tmp_path / "r"), "--data", str(tmp_path / "t.csv"),
              "--target", "diagnosis", "--embedding", "fourier"],
    )  # fmt: skip
    assert result.exit_code == 2 and "unknown --embedding 'fourier'" in result.output
    assert not (tmp_path / "r").exists()

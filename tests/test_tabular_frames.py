"""Real DataFrames: dates, ids, free text, missing and unseen values fit, predict and serve."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from neas import NEASClassifier
from neas.cli import app
from neas.deploy import load_ensemble
from neas.errors import DataError, ModelFileError
from neas.run import Run
from neas.table_columns import DATE_PARTS
from neas.tabular import TableEncoder

runner = CliRunner()
WORDS = [
    "red",
    "green",
    "blue",
    "fast",
    "slow",
    "big",
    "small",
    "cat",
    "dog",
    "bird",
    "runs",
    "eats",
    "sleeps",
    "near",
    "far",
]


def real_frame(n: int = 300, *, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Every kind of column a real table has, and a label that depends on some of them."""
    rng = np.random.default_rng(seed)
    when = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700 * 24, n), unit="h")
    day = [f"2024-{m:02d}-{d:02d}" for m, d in zip(rng.integers(1, 13, n), rng.integers(1, 29, n))]
    frame = pd.DataFrame(
        {
            "when": when,  # a datetime column
            "day": day,  # dates as text
            "name": [f"user{i:05d}" for i in rng.permutation(n)],  # an id: dropped
            "note": [" ".join(rng.choice(WORDS, 4)) for _ in range(n)],  # free text
            "color": rng.choice(["red", "green", "blue"], n).astype(object),
            "shop": rng.choice([f"s{i}" for i in range(60)], n).astype(object),  # target-encoded
            "x": rng.normal(size=n),
            "empty": np.full(n, np.nan),  # all missing: dropped
        }
    )
    frame.loc[rng.random(n) < 0.1, "color"] = None
    frame.loc[rng.random(n) < 0.1, "x"] = np.nan
    frame.loc[rng.random(n) < 0.05, "when"] = pd.NaT
    y = np.where((frame["x"].fillna(0) > 0) ^ (frame["color"] == "red"), "yes", "no")
    return frame, y


def unseen_frame() -> pd.DataFrame:
    """New rows: unseen categories, strings, ids and dates, and missing values everywhere."""
    return pd.DataFrame(
        {
            "when": pd.to_datetime(["2030-05-05 10:00", None, "1999-12-31 23:59"]),
            "day": ["2031-02-03", "not a date", None],
            "name": ["someone new", "user00001", None],
            "note": ["a purple elephant sings", "", None],
            "color": ["purple", None, "red"],
            "shop": ["s999", None, "s3"],
            "x": [np.nan, 1e6, -3.0],
            "empty": [1.0, np.nan, "text"],
        }
    )


def tiny(**kw) -> NEASClassifier:
    """An estimator whose fit takes a few seconds: these tests check the frames, not the fit."""
    params = dict(
        epochs=1,
        population=2,
        generations=1,
        width_mult=0.25,
        head_width=16,
        feature_width=16,
        shrink=False,
        final_epochs=1,
        threads=1,
    )
    return NEASClassifier(**(params | kw))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> NEASClassifier:
    frame, y = real_frame()
    return tiny(run_dir=tmp_path_factory.mktemp("frames")).fit(frame, y)


def test_a_real_frame_fits_predicts_and_serves_from_model_pt(fitted) -> None:
    enc = fitted.encoder_
    assert set(enc.dropped) == {"name", "empty"}
    assert set(enc.dates) == {"when", "day"} and set(enc.texts) == {"note"}
    assert set(enc.categories) == {"color"} and set(enc.medians) == {"x"}
    assert set(enc.targets) == {"shop"} and "shop_target0" in enc.features  # two classes: one
    new = unseen_frame()
    probs = fitted.predict_proba(new)
    assert probs.shape == (3, 2) and np.all(np.isfinite(probs))
    assert set(fitted.predict(new)) <= {"yes", "no"}
    (model_file,) = fitted.run_dir_.glob("ensembles/*/model.pt")
    model = load_ensemble(model_file)
    frame, _ = real_frame()
    lean = new.drop(columns=["name", "empty"])  # serving needs no dropped column
    for rows, expected in ((frame, fitted.predict_proba(frame)), (new, probs), (lean, probs)):
        served = model.predict_proba(model.encode_table(rows), normalize=True)
        np.testing.assert_allclose(served, expected, atol=1e-6)
    manifest = json.loads((model_file.parent / "manifest.json").read_text())
    assert manifest["input"]["preprocessing"] == model.input_spec.preprocessing


def test_the_estimators_refit_scores_only_rows_it_has_not_seen(
    tmp_path, held_out_says_class_0
) -> None:
    """The estimator's run has no test split (its test rows are its val rows): once the final
    stage refits on train + val, the manifest's and ``pareto.csv``'s test scores are the
    early-stopped ensemble's on those rows (here one that answers class 0), not the refitted
    one's on rows it trained on."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    y = np.where(frame["a"] + 0.3 * frame["b"] > 0, "pos", "neg")  # "neg" is class 0
    clf = NEASClassifier(
        epochs=2, population=2, generations=1, width_mult=0.25, head_width=16,
        feature_width=16, shrink=False, final_epochs=6, threads=1, run_dir=tmp_path,
    ).fit(frame, y)  # fmt: skip
    (manifest_file,) = clf.run_dir_.glob("ensembles/*/manifest.json")
    m = json.loads(manifest_file.read_text())
    assert m["final"]["refit"] is True and m["final"]["refit_rows"] == 400
    share = float((Run.open(clf.run_dir_).dataset.y_val == 0).mean())  # class 0 in val
    assert m["accuracy"]["val"] == pytest.approx(share)
    assert m["accuracy"]["test"] == pytest.approx(share)
    front = pd.read_csv(clf.run_dir_ / "pareto.csv", dtype={"id": str}).set_index("id")
    assert front.loc[m["id"], "final_test_accuracy"] == pytest.approx(share)
    assert (clf.predict(frame) == y).mean() > 0.9  # the refitted ensemble is the one served


def test_a_model_pt_with_a_damaged_encoding_is_refused_on_load(fitted, tmp_path) -> None:
    (model_file,) = fitted.run_dir_.glob("ensembles/*/model.pt")
    payload = torch.load(model_file, weights_only=True)
    payload["input"]["preprocessing"]["dates"]["when"]["parts"] = ["year", "__import__"]
    torch.save(payload, tmp_path / "model.pt")
    with pytest.raises(ModelFileError, match="damaged neas ensemble: unknown date parts") as info:
        load_ensemble(tmp_path / "model.pt")
    assert "\n" not in str(info.value)


def test_encoder_round_trips_through_json_with_the_same_transform() -> None:
    frame, y = real_frame(120, seed=1)
    enc = TableEncoder.fit(frame, (y == "yes").astype(int))
    data = json.loads(json.dumps(enc.to_dict()))
    assert data["version"] == 3 and data["features"] == list(enc.features)
    assert set(data["targets"]) == {"shop"}
    again = TableEncoder.from_dict(data)
    for rows in (frame, unseen_frame()):
        np.testing.assert_array_equal(again.transform(rows), enc.transform(rows))
    assert enc.features[:6] == tuple(f"when_{p}" for p in DATE_PARTS)  # it has times of day
    assert "day_hour" not in enc.features and "note_minhash29" in enc.features


def test_skewed_numbers_reach_the_network_as_normal_scores() -> None:
    """A heavy-tailed column is spread by its quantiles (scikit-learn's QuantileTransformer
    with a normal output, to rounding), flags and small codes keep their values, and the
    recorded grid reproduces the map after a JSON round trip."""
    from sklearn.preprocessing import QuantileTransformer

    rng = np.random.default_rng(0)
    income = rng.lognormal(10, 2, 400)
    income[:5] = np.nan
    frame = pd.DataFrame({"income": income, "flag": rng.integers(0, 2, 400),
                          "grade": rng.integers(1, 6, 400)})  # fmt: skip
    enc = TableEncoder.fit(frame)
    assert set(enc.quantiles) == {"income"}
    x = enc.transform(frame)
    filled = np.where(np.isnan(income), np.nanmedian(income), income)
    expected = QuantileTransformer(n_quantiles=256, output_distribution="normal")
    want = expected.fit(income[~np.isnan(income), None]).transform(filled[:, None])[:, 0]
    np.testing.assert_allclose(x[:, 0], want, atol=1e-5)
    assert abs(x[:, 0].mean()) < 0.1 and 0.8 < x[:, 0].std() < 1.2  # spread, not squeezed
    np.testing.assert_array_equal(x[:, 1:], frame[["flag", "grade"]].to_numpy(np.float32))
    again = TableEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    np.testing.assert_array_equal(again.transform(frame), x)


def test_minhash_is_the_same_for_two_fits_on_unseen_text() -> None:
    a = TableEncoder.fit(real_frame(100, seed=2)[0])
    b = TableEncoder.fit(real_frame(100, seed=3)[0])
    new = unseen_frame()
    cols = [i for i, f in enumerate(a.features) if f.startswith("note_")]
    np.testing.assert_array_equal(a.transform(new)[:, cols], b.transform(new)[:, cols])
    assert np.all(a.transform(new)[2, cols] == 0)  # missing text: zeros


def test_dropped_columns_are_named_in_one_notice(caplog) -> None:
    frame = pd.DataFrame(
        {"id": np.arange(50) + 1000, "code": [f"c{i}" for i in range(50)], "a": [np.nan] * 50}
    )
    frame["b"] = np.arange(50) % 3
    with caplog.at_level(logging.WARNING, logger="neas"):
        enc = TableEncoder.fit(frame)
    assert enc.columns == ("b",)
    (record,) = caplog.records
    assert record.getMessage() == (
        "table: dropped column(s) 'id' (a row id), 'code' (an id: every value distinct), "
        "'a' (no values)"
    )
    with pytest.raises(DataError, match="no usable feature column: 'a' is no values"):
        TableEncoder.fit(frame[["a"]])
    with pytest.raises(DataError, match="no rows"):
        TableEncoder.fit(frame.iloc[:0])
    # distinct integers are ids by name (customerId) or when they count up by one
    spread = np.random.default_rng(0).permutation(1000)[:50] * 7
    named = TableEncoder.fit(pd.DataFrame({"customerId": spread, "row_count": spread, "b": 1}))
    assert named.columns == ("row_count", "b") and set(named.dropped) == {"customerId"}
    # distinct numbers that are no row ids, free text and small tables are kept
    keep = pd.DataFrame({"n": np.linspace(0, 1, 50), "t": [f"a b c {i}" for i in range(50)]})
    assert TableEncoder.fit(keep).columns == ("n", "t")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: d.update(version=7), "version 7"),
        (lambda d: d.update(columns="when"), "'columns' is not a list"),
        (lambda d: d["dates"]["when"].update(parts=["eon"]), "unknown date parts"),
        (lambda d: d["dates"]["when"].update(median="soon"), "'median' is a str"),
        (lambda d: d["texts"]["note"].update(probe=[1.0]), "components"),
        (lambda d: d["texts"]["note"].update(encoder="pickle"), "unknown text encoder"),
        (lambda d: d["medians"].update(x=[1]), "'medians'"),
        (lambda d: d["columns"].append("ghost"), "do not match"),
        (lambda d: d["quantiles"].update(x=[3.0, 1.0]), "non-decreasing"),
        (lambda d: d["quantiles"].update(x=[1.0]), "at least two"),
        (lambda d: d["quantiles"].update(color=[0.0, 1.0]), "no number"),
    ],
)
def test_a_damaged_encoding_is_one_line(damage, message) -> None:
    data = TableEncoder.fit(real_frame(60)[0]).to_dict()
    damage(data)
    with pytest.raises(DataError, match=message) as info:
        TableEncoder.from_dict(json.loads(json.dumps(data)))
    assert "\n" not in str(info.value)


def test_a_version_1_encoding_still_reads() -> None:
    old = {"kind": "table", "columns": ["a", "b"], "medians": {"a": 2.0},
           "categories": {"b": ["x", "y"]}, "features": ["a", "b=x", "b=y"]}  # fmt: skip
    enc = TableEncoder.from_dict(old)
    rows = pd.DataFrame({"a": [np.nan], "b": ["y"]})
    np.testing.assert_array_equal(enc.transform(rows), [[2.0, 0.0, 1.0]])


def test_cli_trains_on_a_real_csv(tmp_path) -> None:
    frame, y = real_frame()
    frame.assign(label=y).to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "out"
    args = ["search", "--data", str(tmp_path / "t.csv"), "--target", "label", "--out", str(out),
            "--width-mult", "0.25", "--head-width", "16", "--feature-width", "16",
            "--epochs", "1", "--shrink-at", "none", "--population", "2", "--generations", "1",
            "--final-epochs", "1", "--threads", "1", "--no-latency"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "dropped column(s) 'name' (an id: every value distinct), 'empty'" in result.output
    (model_file, *_) = sorted(out.glob("ensembles/*/model.pt"))
    enc = TableEncoder.from_dict(load_ensemble(model_file).input_spec.preprocessing)
    assert enc.dates["day"].format == "%Y-%m-%d" and enc.dates["when"].format is not None


def test_target_encoding_never_shows_a_fit_row_its_own_label() -> None:
    """Codes that carry no signal, each on a few rows: encoded from every fit row they predict
    the fit rows' own labels (each row's label is in its code's share); cross-fitted, as the
    network trains on them, they do not."""
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"code": [f"c{i}" for i in rng.integers(0, 200, n)]})
    y = rng.integers(0, 2, n)
    enc, fitted = TableEncoder.fit_transform(frame, y, seed=0)
    assert enc.features == ("code_target0",)

    def accuracy(feature: np.ndarray) -> float:
        return float(((feature > np.median(feature)) == y).mean())

    assert accuracy(enc.transform(frame)[:, 0]) > 0.65
    assert abs(accuracy(fitted[:, 0]) - 0.5) < 0.06
    unseen = enc.transform(pd.DataFrame({"code": ["never seen", None]}))
    assert unseen[0, 0] == pytest.approx(y.mean())  # an unseen code: the fit rows' share


def test_many_valued_codes_get_one_feature_per_class_with_labels_and_minhash_without() -> None:
    rng = np.random.default_rng(1)
    states = rng.integers(0, 51, 2000)
    frame = pd.DataFrame({"state": [f"st{i}" for i in states]})
    y = np.where(states < 10, 2, rng.integers(0, 2, 2000))  # st0-st9: always class 2
    with_labels = TableEncoder.fit(frame, y)
    assert with_labels.features == ("state_target0", "state_target1", "state_target2")
    rows = with_labels.transform(pd.DataFrame({"state": ["st3", "st30"]}))
    assert rows[0, 2] > 0.9 and rows[0, :2].max() < 0.1  # class 2's share, the others' none
    assert rows[1, 2] < 0.1 and min(rows[1, :2]) > 0.35  # classes 0 and 1 about half each
    assert set(TableEncoder.fit(frame).texts) == {"state"}  # no labels: MinHash features


def test_a_csv_tables_encoding_is_fitted_without_its_test_rows(tmp_path) -> None:
    """``neas search --data t.csv``: the test rows' labels reach neither the target encodings
    nor the medians and quantiles; the encoder is the one fitted on the other rows."""
    from neas.config import TEST_FRACTION, VAL_FRACTION
    from neas.data import load_dataset
    from neas.data.splits import split
    from neas.tabular import read_csv

    frame, y = real_frame(300, seed=4)
    frame.assign(label=y).to_csv(tmp_path / "t.csv", index=False)
    ds = load_dataset(str(tmp_path / "t.csv"), target="label", seed=3)
    read, _ = read_csv(str(tmp_path / "t.csv"), target="label")
    labels = (y == "yes").astype(int)
    test = split(labels, class_names=("no", "yes"), has_test=False, seed=3,
                 val_fraction=VAL_FRACTION, test_fraction=TEST_FRACTION)[2]  # fmt: skip
    fit = np.setdiff1d(np.arange(300), test)
    expected = TableEncoder.fit(read.iloc[fit], labels[fit], seed=3).to_dict()
    assert set(expected["targets"]) == {"shop"}
    assert ds.preprocessing == expected
    assert TableEncoder.fit(read, labels, seed=3).to_dict() != expected


def nullable_frame(n: int = 120, *, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Only numbers and a datetime column (no common numpy dtype), and pandas' nullable dtypes
    with ``pd.NA``; then the same values in numpy's dtypes, missing as NaN or None."""
    rng = np.random.default_rng(seed)
    ints = rng.choice([1, 2, 3, None], n).tolist()
    words = rng.choice(["a", "b", "c", None], n).tolist()
    flags = rng.choice([True, False, None], n).tolist()
    when = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    nullable = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "when": when,
            "k": pd.array(ints, dtype="Int64"),
            "s": pd.array(words, dtype="string"),
            "b": pd.array(flags, dtype="boolean"),
        }
    )
    plain = nullable.assign(
        k=[np.nan if v is None else float(v) for v in ints],
        s=pd.Series(words, dtype=object),
        b=[np.nan if v is None else float(v) for v in flags],
    )
    return nullable, plain


def test_nullable_dtypes_encode_as_their_numpy_kinds() -> None:
    nullable, plain = nullable_frame()
    enc = TableEncoder.fit(nullable)
    x = enc.transform(nullable)
    assert np.isfinite(x).all()
    np.testing.assert_array_equal(x, enc.transform(plain))
    np.testing.assert_array_equal(x, TableEncoder.fit(plain).transform(plain))


def test_numbers_beside_a_date_and_nullable_columns_fit_and_predict(tmp_path) -> None:
    nullable, plain = nullable_frame()
    y = np.where(nullable["x"] > 0, "yes", "no")
    clf = tiny(final_epochs=0, run_dir=tmp_path)
    clf.fit(nullable[["x", "when"]], y)  # numbers and a date: no common numpy dtype
    assert clf.predict(nullable[["x", "when"]]).shape == (len(y),)
    clf.fit(nullable, y)
    p = clf.predict_proba(nullable)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p, clf.predict_proba(plain), rtol=0, atol=1e-6)

"""NEASClassifier: scikit-learn's own conformance suite, pipelines, tables and images."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, load_wine
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from neas import NEASClassifier
from neas.estimator import SCRATCH_PREFIX
from neas.files import scratch_folder


def tiny(**kw) -> NEASClassifier:
    """Small enough that scikit-learn's check suite (dozens of fits) takes under a minute."""
    params = dict(
        epochs=10,
        population=2,
        generations=1,
        width_mult=0.25,
        head_width=16,
        feature_width=16,
        shrink=False,
        final_epochs=1,  # tables' default trains the chosen ensemble as long as the supernet
        threads=1,
    )
    return NEASClassifier(**(params | kw))


@parametrize_with_checks([tiny()])
def test_scikit_learn_estimator_checks(estimator, check) -> None:
    check(estimator)


def test_pipeline_grid_search_and_cross_validation() -> None:
    X, y = load_wine(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), tiny(epochs=15))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.85  # 3 classes: chance is 0.4
    grid = GridSearchCV(pipe, {"neasclassifier__budget": ["20k", "1M"]}, cv=2).fit(X, y)
    assert grid.best_params_["neasclassifier__budget"] in ("20k", "1M")
    small = grid.cv_results_["param_neasclassifier__budget"].tolist().index("20k")
    assert np.isfinite(grid.cv_results_["mean_test_score"][small])


def test_budget_binds_and_selection_picks_the_cheapest_within_tolerance() -> None:
    X, y = load_wine(return_X_y=True)
    best = tiny(epochs=15, population=6, generations=2).fit(X, y)
    cheap = clone(best).set_params(selection="cheapest", tolerance=0.05).fit(X, y)
    front = best.pareto_front_
    chosen = front.set_index("id").loc[cheap.ensemble_id_]
    assert chosen["val_accuracy"] >= front["val_accuracy"].max() - 0.05 - 1e-12
    assert chosen["macs"] == front[front["val_accuracy"] >= chosen["val_accuracy"]]["macs"].min()
    tight = tiny(budget="60k").fit(X, y)
    assert (tight.pareto_front_["macs"] <= 60_000).all()


def test_dataframe_with_text_and_missing_values_string_labels_and_pickle() -> None:
    X, y = load_wine(return_X_y=True, as_frame=True)
    X = X.copy()
    rng = np.random.default_rng(0)
    X.loc[rng.random(len(X)) < 0.1, "alcohol"] = np.nan
    X["region"] = np.where(y == 0, "north", rng.choice(["south", "east"], len(X)))
    X.loc[rng.random(len(X)) < 0.05, "region"] = None
    labels = np.array(["barolo", "grignolino", "barbera"])[y]
    Xtr, Xte, ytr, yte = train_test_split(X, labels, test_size=0.3, random_state=0, stratify=y)
    clf = tiny(epochs=15).fit(Xtr, ytr)
    assert list(clf.feature_names_in_) == list(X.columns) and clf.n_features_in_ == 14
    assert "region=north" in clf.encoder_.features
    assert set(clf.predict(Xte)) <= set(labels) and clf.score(Xte, yte) > 0.8
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(Xte), clf.predict_proba(Xte))
    probs = clf.predict_proba(Xte)  # rows sum to 1 at float64's precision (log_loss checks)
    assert probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=np.sqrt(np.finfo(np.float64).eps))


def test_images_use_the_mbconv_space() -> None:
    d = load_digits()
    images = (d.images * 15).astype(np.uint8)  # uint8 pixels, N x H x W
    clf = tiny(epochs=6).fit(images[:1000], d.target[:1000])
    assert clf.ensemble_.space.name == "mbconv" and clf.encoder_ is None
    assert clf.score(images[1000:], d.target[1000:]) > 0.3  # 10 classes: chance is 0.1
    with pytest.raises(ValueError):
        clf.predict(pd.DataFrame(np.zeros((2, 3))))


def test_run_dir_keeps_each_fit(tmp_path) -> None:
    X, y = load_wine(return_X_y=True)
    clf = tiny(run_dir=tmp_path).fit(X, y)
    assert clf.run_dir_.parent == tmp_path and (clf.run_dir_ / "pareto.csv").is_file()
    clone(clf).fit(X, y)
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2


KILLED_FIT = """
import numpy as np
from neas import NEASClassifier
x = np.random.default_rng(0).normal(size=(3000, 8)).astype(np.float32)
NEASClassifier(epochs=1000, threads=1, shrink=False).fit(x, (x[:, 0] > 0).astype(int))
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_fits_temp_folder_is_removed_by_the_next_fit(tmp_path, monkeypatch, sig):
    """A fit killed before its cleanup leaves its temp run folder (the kernel gives a killed
    process no ``finally``); the next fit finds its lock free and removes it, and leaves alone
    a folder still in use."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # this process's temp folder too
    with scratch_folder(SCRATCH_PREFIX) as live:
        job = subprocess.Popen([sys.executable, "-c", KILLED_FIT], env=env)
        try:
            deadline = time.monotonic() + 120
            while not (started := list(tmp_path.glob(f"{SCRATCH_PREFIX}*/run/config.json"))):
                assert job.poll() is None and time.monotonic() < deadline, "no fit started"
                time.sleep(0.2)
        finally:
            job.send_signal(sig)
            job.wait(60)
        left = started[0].parents[1]
        assert left.is_dir()  # what the killed fit left
        X, y = load_wine(return_X_y=True)
        tiny().fit(X, y)
        assert not left.exists() and live.is_dir()
    assert not list(tmp_path.glob(f"{SCRATCH_PREFIX}*"))

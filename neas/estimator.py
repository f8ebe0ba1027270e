"""``NEASClassifier``: the main job as a scikit-learn estimator, for AutoML pipelines.

``fit(X, y)`` hands the data in memory to the one pipeline (train with shrinking, search
under the MACs budget; the run folder is a temporary one unless ``run_dir`` is given), picks
one ensemble of the Pareto front and keeps it in memory; ``predict``/``predict_proba`` run it.
Tables (2-D arrays or DataFrames with numbers, dates, categories and text, ids dropped:
``neas.tabular``) use the ``mlp`` space, images (N x H x W or N x C x H x W, uint8 pixels or
floats) the ``mbconv`` space. Every default is the main job's
(``neas.config``).

Example (not run as a doctest: it trains or needs a run folder)::

    from sklearn.datasets import load_iris
    X, y = load_iris(return_X_y=True)
    clf = NEASClassifier(epochs=2, population=4, generations=1, width_mult=0.25)
    clf.fit(X, y).predict(X[:3]).shape, clf.classes_.tolist()
"""

from __future__ import annotations

import json
import uuid
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from neas.config import (
    CASCADE_TOLERANCE,
    ESTIMATOR_THREADS,
    VAL_FRACTION,
    DataOptions,
    FinalOptions,
    RunConfig,
    SearchOptions,
    ShrinkConfig,
    SpaceOptions,
    TrainConfig,
)
from neas.data.load import split_raw
from neas.data.npz import raw_from_arrays
from neas.deploy import DeployedEnsemble, load_ensemble
from neas.device import resolve_device
from neas.errors import ConfigError
from neas.files import scratch_folder
from neas.front import best as best_row
from neas.front import cheapest_within
from neas.layout import MODEL_PT
from neas.pipeline import search
from neas.stages import ExportStage
from neas.tabular import TableEncoder
from neas.time_limit import parse_duration
from neas.training.distributed import world_from_env

SELECTIONS = ("best", "cheapest")

#: The temporary run folders of fits that keep none (``run_dir=None``), in the temp folder.
SCRATCH_PREFIX = "neas-fit-"


def _holdout(y: np.ndarray, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices: a stratified ``VAL_FRACTION`` when every class allows it, else a
    plain random one; data too small to split (a class missing from train) is used whole."""
    idx = np.arange(len(y))
    try:
        train, val = train_test_split(idx, test_size=VAL_FRACTION, stratify=y, random_state=seed)
    except ValueError:
        try:
            train, val = train_test_split(idx, test_size=VAL_FRACTION, random_state=seed)
        except ValueError:
            return idx, idx
    if len(np.unique(y[train])) < len(np.unique(y)):
        return idx, idx
    return np.sort(train), np.sort(val)


class NEASClassifier(ClassifierMixin, BaseEstimator):
    """A neural ensemble found by one-shot ensemble architecture search, as a classifier.

    Parameters are the main job's (``neas search``): ``budget`` (MACs per ensemble), ``space``
    (``"auto"``: ``mlp`` for tables, ``mbconv`` for images), ``members`` (K), ``epochs``
    (supernet training; ``None``: the main job's for images, a step budget for tables, see
    ``neas.config.table_schedule``, which also sets tables' batch size), ``strategy``,
    ``population``/``generations``/``evaluations`` (search proposals), ``weights`` (weight
    sharing), ``width_mult``/``head_width``/``feature_width`` (space size), ``embedding``
    (tables: ``"none"``, ``"periodic"`` or ``"piecewise"``; ``None`` keeps the space's default,
    ``neas.search_spaces.mlp.EMBEDDING``), ``final_epochs``/``final_init``/
    ``final_patience``/``final_refit`` (the chosen ensemble's final training,
    ``neas.config.FinalOptions``; ``None``: the data's). ``selection``
    picks the ensemble from the front: ``"best"`` validation accuracy, or the ``"cheapest"``
    (fewest MACs) within ``tolerance`` of it. ``latency`` (measured latency as a third
    objective) is off by default so that the same ``random_state`` gives the same model
    (``None`` means 0). ``run_dir``: where each fit's run folder is kept (a new sub-folder per
    fit); ``None`` uses a temporary folder (``neas-fit-*``) that is removed, by the next fit if
    this one is killed. ``threads``: torch CPU threads,
    ``N`` (default 1, ``neas.config.ESTIMATOR_THREADS``, unlike the CLI's ``auto``: the same
    fit twice gives the same model, and parallel fits of a grid search share the cores),
    ``"auto"`` (``neas.device.resolve_threads``) or ``None`` (torch's default).
    ``time_limit`` (seconds, or ``"30m"``) fits within that
    wall-clock time (``neas.time_limit``): epochs, proposals and the chosen ensemble's
    final-training epochs come from a plan timed on this machine (``final_epochs`` caps the
    last); ``None`` (default) runs the configured work however long it takes.

    Fitted attributes: ``classes_``, ``n_features_in_`` (``feature_names_in_`` for DataFrames),
    ``ensemble_`` (a ``neas.deploy.DeployedEnsemble``), ``ensemble_id_``, ``pareto_front_``
    (DataFrame), ``encoder_`` (the table encoding, or ``None`` for images), ``run_dir_``.
    """

    def __init__(
        self,
        *,
        budget: str | int = SearchOptions.budget,
        space: str = "auto",
        members: int | None = None,
        epochs: int | None = None,
        strategy: str = SearchOptions.strategy,
        population: int = SearchOptions.population,
        generations: int = SearchOptions.generations,
        evaluations: int | None = None,
        weights: str = TrainConfig.weights,
        width_mult: float | None = None,
        head_width: int | None = None,
        feature_width: int | None = None,
        embedding: str | None = None,
        shrink: bool = True,
        final_epochs: int | None = None,
        final_init: str | None = None,
        final_patience: int | None = None,
        final_refit: bool | None = None,
        selection: str = "best",
        tolerance: float = CASCADE_TOLERANCE,
        latency: bool = False,
        device: str | None = None,
        threads: int | str | None = ESTIMATOR_THREADS,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
        run_dir: str | Path | None = None,
        time_limit: float | str | None = None,
    ) -> None:
        self.budget = budget
        self.space = space
        self.members = members
        self.epochs = epochs
        self.strategy = strategy
        self.population = population
        self.generations = generations
        self.evaluations = evaluations
        self.weights = weights
        self.width_mult = width_mult
        self.head_width = head_width
        self.feature_width = feature_width
        self.embedding = embedding
        self.shrink = shrink
        self.final_epochs = final_epochs
        self.final_init = final_init
        self.final_patience = final_patience
        self.final_refit = final_refit
        self.selection = selection
        self.tolerance = tolerance
        self.latency = latency
        self.device = device
        self.threads = threads
        self.random_state = random_state
        self.verbose = verbose
        self.run_dir = run_dir
        self.time_limit = time_limit

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # tables: missing values become the column's median
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags

    # -- input handling ------------------------------------------------------------------------

    def _features(
        self, X: Any, *, reset: bool, y: np.ndarray | None = None, seed: int = 0
    ) -> np.ndarray:
        """``X`` as raw network input: N x F table rows (encoded) or N x C x H x W images.
        Fitting (``reset``) on a table with its labels ``y``, many-valued categories are
        target-encoded, the rows' own encodings cross-fitted with folds drawn by ``seed``."""
        if isinstance(X, pd.DataFrame):  # its columns keep their own dtypes (no common one)
            validate_data(self, X, reset=reset, skip_check_array=True)
            return self._table(X, reset=reset, y=y, seed=seed)
        arr = validate_data(
            self, X, reset=reset, dtype=None, ensure_all_finite=False, allow_nd=True
        )
        if arr.ndim in (3, 4):  # images
            if reset:
                self.encoder_ = None
            elif self.encoder_ is not None:
                raise ValueError("this classifier was fitted on a table, not on images")
            x = arr[:, None] if arr.ndim == 3 else arr
            if x.dtype == np.uint8:
                return x.astype(np.float32) / np.float32(255.0)
            with np.errstate(over="ignore"):  # too large for float32: inf, refused below
                x = np.asarray(x, dtype=np.float32)
            if not np.all(np.isfinite(x)):
                raise ValueError("images contain NaN or infinite values")
            return x
        names = getattr(self, "feature_names_in_", None)
        columns = [str(c) for c in names] if names is not None else None
        frame = pd.DataFrame(arr, columns=columns)
        if columns is None:
            frame.columns = [f"x{i}" for i in range(arr.shape[1])]
        return self._table(frame, reset=reset, y=y, seed=seed)

    def _table(
        self, frame: pd.DataFrame, *, reset: bool, y: np.ndarray | None, seed: int
    ) -> np.ndarray:
        """The rows of ``frame`` encoded (``_features``), the encoder fitted first if ``reset``."""
        if reset:
            labels = None
            if y is not None and len(y) == len(frame):
                classes, labels = np.unique(y, return_inverse=True)
                labels = labels if len(classes) > 1 else None  # refused after, in one line
            self.encoder_, x = TableEncoder.fit_transform(frame, labels, seed=seed)
            return x
        if self.encoder_ is None:
            raise ValueError("this classifier was fitted on images, not on a table")
        return self.encoder_.transform(frame.set_axis(list(self.encoder_.inputs), axis=1))

    # -- fit / predict -------------------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> NEASClassifier:
        """Search an ensemble for (``X``, ``y``) under ``budget``; returns ``self``."""
        if self.selection not in SELECTIONS:
            raise ConfigError(f"unknown selection {self.selection!r}; valid: best, cheapest")
        if not 0.0 <= self.tolerance < 1.0:
            raise ConfigError(f"tolerance must be in [0, 1), got {self.tolerance}")
        if world_from_env().distributed:
            raise ConfigError(
                "NEASClassifier.fit runs in one process; for data-parallel training use "
                "`torchrun --nproc-per-node N -m neas search ...`"
            )
        y = column_or_1d(np.asarray(y), warn=True)
        check_classification_targets(y)
        seed = self._seed()
        x = self._features(X, reset=True, y=y, seed=seed)
        if len(y) != len(x):
            raise ValueError(f"X has {len(x)} samples but y has {len(y)}")
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y has {len(self.classes_)} class; a classifier needs at least 2")
        limit = parse_duration(self.time_limit) if self.time_limit is not None else None
        keep = self.run_dir is not None
        # a temporary folder for a fit that keeps nothing: one a killed fit left is removed by
        # the next fit (files.scratch_folder)
        where = nullcontext(Path(self.run_dir)) if keep else scratch_folder(SCRATCH_PREFIX)
        with where as root:
            run = root / f"fit-{uuid.uuid4().hex[:8]}" if keep else root / "run"
            data = run.parent / f"{run.name}.npz"
            run.parent.mkdir(parents=True, exist_ok=True)
            train, val = _holdout(y_idx, seed=seed)
            arrays = {
                "x": x[train],
                "y": y_idx[train],
                "x_val": x[val],
                "y_val": y_idx[val],
                "x_test": x[val],  # the estimator keeps no test split: scores on it are val's
                "y_test": y_idx[val],
            }
            encoding = self._encoding()
            if keep:  # a kept run folder names its data: `neas export RUN` reopens it
                np.savez(data, **arrays, **encoding)
            raw = raw_from_arrays(arrays, encoding.get("preprocessing"), where="X")
            dataset = split_raw(raw, name=run.name)  # handed to the job in memory
            result = search(
                out=run,
                config=self._config(str(data), table=self.encoder_ is not None),
                options=SearchOptions(
                    budget=self.budget,
                    strategy=self.strategy,
                    population=self.population,
                    generations=self.generations,
                    evaluations=self.evaluations,
                    latency=self.latency,
                ),
                seed=seed,
                device=self.device,
                threads=self.threads,
                export=False,
                show_progress=self.verbose,
                plots=False,
                time_limit=limit,
                dataset=dataset,
            )
            assert result is not None  # one process: search returns its result
            front = result.search.front
            chosen = self._select(front)
            final = self._final()
            (folder,) = ExportStage(  # the chosen ensemble alone, with final training
                device=resolve_device(self.device),
                final=final,
                select=chosen,
                rest=False,
                formats=("torch",),
                cascade=False,
                show_progress=self.verbose,
                clock=result.clock,
                calibrated=result.search.calibrated,
            ).run(result.run)
            self.ensemble_: DeployedEnsemble = load_ensemble(folder / MODEL_PT)
        self.ensemble_id_ = chosen
        self.pareto_front_ = front.copy()
        self.run_dir_ = run if keep else None
        return self

    def _encoding(self) -> dict[str, np.ndarray]:
        """The table encoding for the run's ``.npz``, so the exported model records it."""
        if self.encoder_ is None:
            return {}
        return {"preprocessing": np.array(json.dumps(self.encoder_.to_dict()))}

    def _seed(self) -> int:
        if self.random_state is None:
            return 0
        if isinstance(self.random_state, (int, np.integer)):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(0, 2**31 - 1))

    def _config(self, data: str, *, table: bool) -> RunConfig:
        """The job's configuration; the training schedule left to the data (tables: a step
        budget, ``neas.config.table_schedule``), as ``neas search`` leaves it."""
        space = self.space if self.space != "auto" else ("mlp" if table else "mbconv")
        return RunConfig(
            data=DataOptions(source=data),
            space=SpaceOptions(
                name=space,
                members=self.members,
                width_mult=self.width_mult,
                head_width=self.head_width,
                feature_width=self.feature_width,
                embedding=self.embedding,
            ),
            train=TrainConfig(
                epochs=self.epochs,
                weights=self.weights,
                summary_samples=0,
            ),
            shrink=ShrinkConfig() if self.shrink else ShrinkConfig(at=()),
        )

    def _final(self) -> FinalOptions:
        """The final training stage: what is not given is the data's, as in the main job
        (``FinalOptions.settled``: images the main job's, tables as long as the supernet's
        training, stopped early on validation and refitted on train + val)."""
        return FinalOptions(
            epochs=self.final_epochs,
            init=self.final_init,
            patience=self.final_patience,
            refit=self.final_refit,
        )

    def _select(self, front: pd.DataFrame) -> str:
        if self.selection == "cheapest":
            return str(cheapest_within(front, self.tolerance)["id"])
        return str(best_row(front)["id"])

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (N x classes, columns in ``classes_`` order)."""
        check_is_fitted(self, "ensemble_")
        x = self._features(X, reset=False)
        probs = self.ensemble_.predict_proba(x, normalize=True).astype(np.float64)
        # renormalised in float64: float32 rows miss 1 by ~1e-7, which scikit-learn's
        # log_loss warns about (its tolerance is float64's)
        return probs / probs.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (of the type of ``y`` in ``fit``)."""
        probs = self.predict_proba(X)
        return self.classes_[np.argmax(probs, axis=1)]


__all__ = ["NEASClassifier"]

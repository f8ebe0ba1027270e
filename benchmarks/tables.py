"""Real tables: NEASClassifier against gradient boosting, TabM, RealMLP and logistic regression.

Tables: 18 classification tables from the R packages mlbench and modeldata
(``_tables_data.py``: raw frames, text and factors kept, NaN kept; tables over 10,000 rows
subsampled, stratified, to 10,000 rows with seed 0). For each table and seed: one stratified
70/30 train/test split (``random_state=seed``), shared by every method. Every fit runs on one
thread (``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``, ``n_jobs=1``).

What each method gets:

- ``neas``: ``NEASClassifier(random_state=seed, threads=1)`` at its defaults, fitted on the raw
  train frame exactly as loaded. Where it refuses the frame, the row keeps ``accuracy=None``
  and the error's first line in ``error``.
- the baselines get ``baseline_frame`` (one function, the same for all of them): text columns
  whose values are mostly distinct (more than half of the train rows: ids such as
  BreastCancer's ``Id``) are dropped; date columns become numeric year/month/day/weekday
  columns; the other text and bool columns become ``category`` with the train part's
  categories (unseen test values -> NaN); numbers and NaN are left as they are. Then:
- ``hist_gradient_boosting``: scikit-learn defaults, ``categorical_features="from_dtype"``.
- ``lightgbm``: ``LGBMClassifier(random_state=seed, n_jobs=1, verbose=-1)``, which takes the
  ``category`` columns as categorical features.
- ``tabm``: ``_tabm_method.TabMClassifier`` (TabM k=32 with piecewise-linear embeddings, the
  authors' recipe; numbers median-imputed and quantile-transformed, categories one-hot inside
  TabM). On this CPU it is capped: at most ``--tabm-max-epochs`` epochs and ``--tabm-time-limit``
  seconds of training per fit (checked after each epoch; the best epoch on validation is kept).
- ``realmlp``: ``pytabkit.RealMLP_TD_Classifier(random_state=seed, n_threads=1, device="cpu")``
  at its defaults, on the frame with numbers median-imputed (it refuses NaN in numerical
  columns; it encodes the ``category`` columns itself).
- ``logistic_regression``: numbers median-imputed and standardised, categories one-hot (NaN as
  its own category), ``LogisticRegression(C=1, max_iter=5000)``.

Rows (table, method, seed) are merged into ``results/tables.json`` as soon as each is measured:
re-running with ``--methods neas`` replaces only neas's rows. At the start the fixed plain-torch
reference workload (``shared/tools/ref_workload.py``, one thread) is timed (again before each
seed's pass) and stored with each row, so that fit times can be compared across machines and
days. The RESULTS.md section is rebuilt from the whole json after each run (``--report``
rebuilds it without fitting).

    pip install -e '.[bench]'   # the baselines' packages: lightgbm, tabm, pytabkit, ...
    python benchmarks/tables.py [--tables a,b] [--methods neas,tabm] [--seeds 0,1,2]

The tables come from R (``_tables_data.py``): ``apt-get install r-cran-mlbench
r-cran-modeldata`` once (R comes with them); each is exported to ``benchmarks/.tables`` on
first use.

A variant of neas against the committed defaults: ``--methods neas --neas-params
'{"embedding": "piecewise"}' --results results/tables_piecewise.json`` (rows go to that json;
RESULTS.md is rebuilt only from ``results/tables.json``). Once a variant becomes the default,
``--merge FILE`` replaces neas's rows in ``results/tables.json`` by FILE's (the seeds FILE has)
and rebuilds the section.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import fcntl  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from _results import HERE, write_section  # noqa: E402
from _tables_data import MAX_ROWS, SUBSAMPLE_SEED, TABLES, load  # noqa: E402
from scipy.stats import rankdata  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

METHODS = ["neas", "hist_gradient_boosting", "lightgbm", "tabm", "realmlp", "logistic_regression"]
RESULTS = HERE / "results" / "tables.json"
REF = Path(__file__).resolve().parents[2] / "shared/tools/ref_workload.py"
TITLE = "## Real tables: NEASClassifier vs GBDTs, TabM, RealMLP"


# -- preprocessing for the baselines ---------------------------------------------------------
def baseline_frame(Xtr: pd.DataFrame, Xte: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The one preprocessing every baseline shares (see the module docstring)."""
    tr, te = {}, {}
    for c in Xtr.columns:
        a, b = Xtr[c], Xte[c]
        if pd.api.types.is_datetime64_any_dtype(a):
            for part in ("year", "month", "day", "dayofweek"):
                tr[f"{c}_{part}"] = getattr(a.dt, part).astype(float)
                te[f"{c}_{part}"] = getattr(b.dt, part).astype(float)
        elif isinstance(a.dtype, pd.CategoricalDtype):
            tr[c], te[c] = a, b.cat.set_categories(a.cat.categories)
        elif pd.api.types.is_bool_dtype(a) or not pd.api.types.is_numeric_dtype(a):
            if a.dtype == object and a.nunique() > len(a) / 2:
                continue  # id-like text column
            cats = pd.Index(sorted(a.dropna().astype(str).unique()))
            tr[c] = pd.Categorical(a.astype(str).where(a.notna()), categories=cats)
            te[c] = pd.Categorical(b.astype(str).where(b.notna()), categories=cats)
        else:
            tr[c], te[c] = a.astype(float), b.astype(float)
    return pd.DataFrame(tr, index=Xtr.index), pd.DataFrame(te, index=Xte.index)


def _num_cat(X: pd.DataFrame) -> tuple[list, list]:
    cat = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    return [c for c in X.columns if c not in cat], cat


def _impute_numbers(Xtr: pd.DataFrame, Xte: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    num, _ = _num_cat(Xtr)
    med = Xtr[num].median().fillna(0.0)
    Xtr, Xte = Xtr.copy(), Xte.copy()
    Xtr[num], Xte[num] = Xtr[num].fillna(med), Xte[num].fillna(med)
    return Xtr, Xte


class _Logistic:
    def fit(self, X, y):
        num, cat = _num_cat(X)
        self.cat_ = cat
        self.model_ = make_pipeline(
            ColumnTransformer(
                [
                    ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
                    ("cat", OneHotEncoder(handle_unknown="ignore"), cat),
                ]
            ),
            LogisticRegression(C=1.0, max_iter=5000),
        ).fit(self._obj(X), y)
        self.classes_ = self.model_.classes_
        return self

    def _obj(self, X):
        X = X.copy()
        for c in self.cat_:
            X[c] = X[c].astype(object).where(X[c].notna(), "__missing__")
        return X

    def predict_proba(self, X):
        return self.model_.predict_proba(self._obj(X))


class _ImputedRealMLP:
    def __init__(self, seed: int):
        from pytabkit import RealMLP_TD_Classifier

        self.model_ = RealMLP_TD_Classifier(random_state=seed, n_threads=1, device="cpu")

    def fit(self, X, y):
        num, _ = _num_cat(X)
        self.med_ = X[num].median().fillna(0.0)
        self.model_.fit(X.fillna(self.med_), y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X.fillna(self.med_))


def make(method: str, seed: int, args):
    if method == "neas":
        from neas import NEASClassifier

        return NEASClassifier(random_state=seed, threads=1, **args.neas_params)
    if method == "hist_gradient_boosting":
        return HistGradientBoostingClassifier(random_state=seed, categorical_features="from_dtype")
    if method == "lightgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(random_state=seed, n_jobs=1, verbose=-1)
    if method == "tabm":
        from _tabm_method import TabMClassifier

        return TabMClassifier(
            random_state=seed, max_epochs=args.tabm_max_epochs, time_limit_s=args.tabm_time_limit
        )
    if method == "realmlp":
        return _ImputedRealMLP(seed)
    if method == "logistic_regression":
        return _Logistic()
    raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


# -- one measurement ---------------------------------------------------------------------------
def measure(table, X, y, method, seed, args, ref_s) -> dict:
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    row = {"table": table, "rows": len(X), "features": X.shape[1], "method": method,
           "seed": seed, "accuracy": None, "log_loss": None, "fit_s": None, "macs": None,
           "error": None, "ref_workload_s": ref_s}  # fmt: skip
    try:
        if method != "neas":
            Xtr, Xte = baseline_frame(Xtr, Xte)
        model = make(method, seed, args)
        t0 = time.perf_counter()
        model.fit(Xtr, ytr)
        row["fit_s"] = time.perf_counter() - t0
        proba = np.asarray(model.predict_proba(Xte), dtype=float)
        proba /= proba.sum(1, keepdims=True)  # float32 outputs: sum to one in float64
        classes = np.asarray(model.classes_).astype(str)
        pred = classes[proba.argmax(1)]
        row["accuracy"] = float((pred == yte.to_numpy()).mean())
        row["log_loss"] = float(log_loss(yte, proba, labels=classes))
        if method == "neas":
            row["neas_params"] = args.neas_params
            row["macs"] = int(model.pareto_front_.set_index("id").loc[model.ensemble_id_, "macs"])
        if method == "tabm":
            row["epochs"] = model.epochs_
    except Exception as e:  # noqa: BLE001 - a failing method is a result, not a crash
        msg = f"{type(e).__name__}: {e}".strip().splitlines()
        row["error"] = msg[0][:300] if msg else type(e).__name__
    return row


# -- the json ----------------------------------------------------------------------------------
def read_results(path: Path = RESULTS) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    return {"rows": []}


def _key(r: dict) -> tuple:
    return r["table"], r["method"], r["seed"]


def save_rows(path: Path, new: list[dict], meta: dict, *, drop=lambda r: False) -> None:
    """Merge ``new`` rows into the json at ``path`` (each replacing the same table/method/seed;
    rows for which ``drop(row)`` holds are removed first) and write atomically; a lock file lets
    two runs (say baselines and neas) write side by side."""
    path.parent.mkdir(exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read_results(path) | meta
        keys = {_key(r) for r in new}
        rows = [r for r in data["rows"] if _key(r) not in keys and not drop(r)]
        data["rows"] = sorted([*rows, *new], key=_key)
        tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)


def done(path: Path) -> set:
    """(table, method, seed) already measured without error, read afresh: two runs with
    ``--skip-done`` can share the work."""
    rows = read_results(path)["rows"]
    return {(r["table"], r["method"], r["seed"]) for r in rows if r["accuracy"] is not None}


def ref_workload() -> float | None:
    if not REF.exists():
        print(f"reference workload not found at {REF}; ref_workload_s is None", flush=True)
        return None
    out = subprocess.run(
        [sys.executable, str(REF)],
        env=os.environ | {"OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


# -- the report --------------------------------------------------------------------------------
def report(data: dict) -> list[str]:
    rows = data["rows"]
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    tables = [t for t in TABLES if any(r["table"] == t for r in rows)]

    def seeds(t, m):
        return {r["seed"] for r in rows if (r["table"], r["method"]) == (t, m) and r["accuracy"]}

    # Per table, the seeds every method has a result for; means (and ranks) use only those, so
    # that a run cut short compares like with like. Without a common seed: each method's own.
    common = {t: set.intersection(*(seeds(t, m) for m in methods)) for t in tables}

    def cell(t, m, key):
        v = [r[key] for r in rows if (r["table"], r["method"]) == (t, m) and r[key] is not None
             and (not common[t] or r["seed"] in common[t])]  # fmt: skip
        return float(np.mean(v)) if v else None

    lines = [
        "",
        "Commands (run side by side): `python benchmarks/tables.py --methods "
        "hist_gradient_boosting,lightgbm,tabm,realmlp,logistic_regression` and "
        "`python benchmarks/tables.py --methods neas` "
        f"(torch {torch.__version__}, 2-core CPU shared with another job, one thread per fit; "
        f"seeds {', '.join(map(str, sorted({r['seed'] for r in rows})))}). Stratified 70/30 "
        f"train/test splits; tables over {MAX_ROWS:,} rows subsampled, stratified, to "
        f"{MAX_ROWS:,} rows (seed {SUBSAMPLE_SEED}). What each method receives: the docstring "
        "of `benchmarks/tables.py`. "
        + (
            f"TabM capped at {data['tabm_max_epochs']} epochs and "
            f"{data['tabm_time_limit_s']:.0f} s of training per fit. "
            if data.get("tabm_time_limit_s")
            else ""
        )
        + "Mean test accuracy (%) over the seeds where every method has a result (column "
        "`seeds`; 0: no such seed, each method's own seeds); – : no result (see `error` in "
        "`results/tables.json`).",
        "",
        "| table | rows | features | seeds | " + " | ".join(methods) + " |",
        "|---|---|---|---|" + "---|" * len(methods),
    ]
    for t in tables:
        r0 = next(r for r in rows if r["table"] == t)
        accs = [cell(t, m, "accuracy") for m in methods]
        lines.append(
            f"| {t} | {r0['rows']} | {r0['features']} | {len(common[t])} | "
            + " | ".join("–" if a is None else f"{100 * a:.2f}" for a in accs)
            + " |"
        )
    complete = [t for t in tables if all(cell(t, m, "accuracy") is not None for m in methods)]
    ranks = {"accuracy": [], "log_loss": []}
    for t in complete:
        ranks["accuracy"].append(rankdata([-cell(t, m, "accuracy") for m in methods]))
        ranks["log_loss"].append(rankdata([cell(t, m, "log_loss") for m in methods]))
    lines.append("")
    if complete:
        acc_r = np.mean(ranks["accuracy"], 0)
        ll_r = np.mean(ranks["log_loss"], 0)
        fit = [np.mean([cell(t, m, "fit_s") for t in complete]) for m in methods]
        lines.append(
            f"Mean rank over the {len(complete)} of {len(tables)} tables where every method has "
            "a result (1 = best; ties averaged), accuracy / log-loss, and mean fit seconds on "
            "those tables: "
            + "; ".join(
                f"**{m}** {a:.2f} / {ll:.2f}, {f:.1f} s"
                for m, a, ll, f in zip(methods, acc_r, ll_r, fit, strict=True)
            )
            + "."
        )
    neas = [r for r in rows if r["method"] == "neas" and r["fit_s"] is not None
            and r["rows"] <= MAX_ROWS and r.get("ref_workload_s")]  # fmt: skip
    if neas:
        ratio = np.mean([r["fit_s"] / r["ref_workload_s"] for r in neas])
        refs = sorted({r["ref_workload_s"] for r in neas})
        lines.append(
            f"neas fit time / reference workload time (`shared/tools/ref_workload.py`, one "
            f"thread, timed before each seed's pass, each fit against the latest; tables ≤ "
            f"{MAX_ROWS:,} rows, {len(neas)} fits): {ratio:.1f} on average (reference "
            f"{', '.join(f'{v:.2f}' for v in refs)} s)."
        )
    tabm = {t: cell(t, "tabm", "epochs") for t in tables if "tabm" in methods}
    if any(v is not None for v in tabm.values()):
        lines.append(
            "TabM epochs trained (mean over seeds): the time cap stops it after a few epochs "
            "on the tables over about 2,000 rows, where its figures say little about TabM "
            "trained to convergence: "
            + ", ".join(f"{t} {v:.0f}" for t, v in tabm.items() if v is not None)
            + "."
        )
    errors = sorted({(r["method"], r["table"], r["error"]) for r in rows if r["error"]})
    if errors:
        lines.append("")
        lines.append("Failures: " + "; ".join(f"{m} on {t}: `{e}`" for m, t, e in errors) + ".")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tables", default=",".join(TABLES))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--tabm-max-epochs", type=int, default=200)
    p.add_argument("--tabm-time-limit", type=float, default=30.0, help="seconds per TabM fit")
    p.add_argument("--report", action="store_true", help="only rebuild the RESULTS.md section")
    p.add_argument(
        "--skip-done",
        action="store_true",
        help="skip rows already measured without error (resume a run, or share the work)",
    )
    p.add_argument(
        "--neas-params",
        type=json.loads,
        default={},
        help="JSON keyword arguments for NEASClassifier beyond random_state and threads",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="the json rows go to (RESULTS.md is written only for the default)",
    )
    p.add_argument(
        "--merge",
        type=Path,
        help="replace neas's rows in results/tables.json by this file's (a run of the defaults)",
    )
    args = p.parse_args()
    if args.merge:
        merged = read_results(args.merge)["rows"]
        seeds = {r["seed"] for r in merged}
        save_rows(RESULTS, merged, {}, drop=lambda r: r["method"] == "neas" and r["seed"] in seeds)
        args.report = True
    torch.set_num_threads(1)
    out = args.results.resolve()
    if not args.report:
        tables = args.tables.split(",")
        methods = args.methods.split(",")
        seeds = [int(s) for s in args.seeds.split(",")]
        for name in [*tables, *methods]:
            if name not in TABLES and name not in METHODS:
                p.error(f"unknown table or method {name!r}")
        meta = {"max_rows": MAX_ROWS, "subsample_seed": SUBSAMPLE_SEED, "ref_workload_s": []}
        if "tabm" in methods:
            meta |= {"tabm_max_epochs": args.tabm_max_epochs,
                     "tabm_time_limit_s": args.tabm_time_limit}  # fmt: skip
        # Seed-major order: a run cut short still has every table for the first seed(s). The
        # reference is timed again before each seed's pass (a run takes minutes to hours and
        # this machine's speed drifts in that time); each row carries the latest timing.
        for seed in seeds:
            ref_s = ref_workload()
            meta["ref_workload_s"].append(ref_s)
            print(f"reference workload: {ref_s} s", flush=True)
            for table in tables:
                X, y = load(table)
                for method in methods:
                    if args.skip_done and (table, method, seed) in done(out):
                        continue
                    row = measure(table, X, y, method, seed, args, ref_s)
                    save_rows(out, [row], meta)
                    print(json.dumps(row), flush=True)
    lines = report(read_results(out))
    print("\n".join(lines))
    if out == RESULTS.resolve():
        write_section(TITLE, lines)


if __name__ == "__main__":
    main()

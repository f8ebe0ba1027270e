"""Real classification tables for ``benchmarks/tables.py``, offline, as raw pandas frames.

Sources: the Debian packages r-cran-mlbench (``.rda`` files) and r-cran-modeldata (a lazy-load
database). Each table is exported once with ``Rscript`` to ``benchmarks/.tables/<name>.csv``
(gitignored) together with ``<name>.json`` holding each column's R class and factor levels, so
that the frame comes back as R had it: R factors become pandas ``category`` columns (levels in
R's order; ordered factors stay ordered, even where the levels look like numbers, as in
BreastCancer), character columns stay text (``object``), numbers stay numbers, R's ``NA``
becomes NaN. Nothing is encoded here: the methods receive the raw frame.

Tables over ``MAX_ROWS`` rows are subsampled, stratified on the label, to ``MAX_ROWS`` rows
with ``SUBSAMPLE_SEED`` (only LetterRecognition, 20,000 rows, today).

    X, y = load("credit")  # X: DataFrame of the raw feature columns, y: Series of labels
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

CACHE = Path(__file__).resolve().parent / ".tables"
MAX_ROWS = 10_000
SUBSAMPLE_SEED = 0


@dataclass(frozen=True)
class Table:
    package: str  # R package holding the data set
    dataset: str  # its name there
    target: str
    drop: tuple[str, ...] = ()  # the target in disguise, or not a feature at all (see TABLES)


TABLES: dict[str, Table] = {
    # mlbench (UCI tables)
    "letter": Table("mlbench", "LetterRecognition", "lettr"),  # 20,000 rows -> 10,000
    "satellite": Table("mlbench", "Satellite", "classes"),
    "dna": Table("mlbench", "DNA", "Class"),  # 180 binary factor columns
    "vehicle": Table("mlbench", "Vehicle", "Class"),
    "glass": Table("mlbench", "Glass", "Type"),
    "pima": Table("mlbench", "PimaIndiansDiabetes", "diabetes"),
    "sonar": Table("mlbench", "Sonar", "Class"),
    "ionosphere": Table("mlbench", "Ionosphere", "Class"),
    "votes": Table("mlbench", "HouseVotes84", "Class"),  # all factors, many NA
    "soybean": Table("mlbench", "Soybean", "Class"),  # factors and ordered factors, many NA
    # BreastCancer keeps its ``Id`` column (text, the sample code number): the table has it.
    "breast_cancer": Table("mlbench", "BreastCancer", "Class"),
    "vowel": Table("mlbench", "Vowel", "Class"),  # V1 is a factor (the speaker)
    # modeldata
    "credit": Table("modeldata", "credit_data", "Status"),
    "attrition": Table("modeldata", "attrition", "Attrition"),
    "mlc_churn": Table("modeldata", "mlc_churn", "churn"),
    "wa_churn": Table("modeldata", "wa_churn", "churn"),
    "hpc": Table("modeldata", "hpc_data", "class"),
    # cells: ``case`` is the authors' Train/Test split column, not a property of the cell.
    "cells": Table("modeldata", "cells", "class", drop=("case",)),
}

_EXPORT = r"""
args <- commandArgs(trailingOnly = TRUE)
data(list = args[2], package = args[1])
x <- as.data.frame(get(args[2]))
info <- lapply(x, function(c) list(class = class(c)[1],
                                   levels = if (is.factor(c)) levels(c) else NULL))
write.csv(x, args[3], row.names = FALSE, na = "")
jsonlite::write_json(info, args[4], auto_unbox = TRUE, null = "null")
"""


def _export(name: str) -> None:
    t = TABLES[name]
    if shutil.which("Rscript") is None:
        raise RuntimeError("Rscript not found: install R with r-cran-mlbench and r-cran-modeldata")
    CACHE.mkdir(exist_ok=True)
    csv, info = CACHE / f"{name}.csv", CACHE / f"{name}.json"
    # Per-process temporary names: two benchmark runs may export the same table at once.
    pid = os.getpid()
    script = CACHE / f"_export.{pid}.R"
    script.write_text(_EXPORT)
    tmp_csv, tmp_info = csv.with_suffix(f".csv.{pid}.tmp"), info.with_suffix(f".json.{pid}.tmp")
    subprocess.run(
        ["Rscript", str(script), t.package, t.dataset, str(tmp_csv), str(tmp_info)],
        check=True,
        capture_output=True,
    )
    tmp_csv.replace(csv)
    tmp_info.replace(info)
    script.unlink()


def load_raw(name: str) -> pd.DataFrame:
    """The whole table as R has it (target included, nothing dropped, no subsampling)."""
    csv, info_path = CACHE / f"{name}.csv", CACHE / f"{name}.json"
    if not (csv.exists() and info_path.exists()):
        _export(name)
    info = json.loads(info_path.read_text())
    # Only empty fields are missing (R's NA was written as ""): a level named "NA" stays text.
    df = pd.read_csv(csv, keep_default_na=False, na_values=[""], dtype=str)
    out = {}
    for col, meta in info.items():
        s = df[col]
        kind = meta["class"]
        if kind in ("factor", "ordered"):
            levels = meta["levels"]
            levels = [levels] if isinstance(levels, str) else list(levels)
            out[col] = pd.Categorical(s, categories=levels, ordered=kind == "ordered")
        elif kind in ("numeric", "integer"):
            out[col] = pd.to_numeric(s)
        elif kind == "logical":
            out[col] = s.map({"TRUE": True, "FALSE": False}).astype("boolean")
        else:  # character (and anything else): text
            out[col] = s.astype(object)
    return pd.DataFrame(out, index=df.index)


def load(name: str) -> tuple[pd.DataFrame, pd.Series]:
    """Raw feature frame and label Series of table ``name`` (subsampled to MAX_ROWS rows)."""
    t = TABLES[name]
    df = load_raw(name)
    y = df[t.target].astype(str).rename("target")
    X = df.drop(columns=[t.target, *t.drop])
    if len(X) > MAX_ROWS:
        X, _, y, _ = train_test_split(
            X, y, train_size=MAX_ROWS, random_state=SUBSAMPLE_SEED, stratify=y
        )
        X, y = X.reset_index(drop=True), y.reset_index(drop=True)
    return X, y


if __name__ == "__main__":
    for n in TABLES:
        X, y = load(n)
        kinds = X.dtypes.astype(str).value_counts().to_dict()
        print(f"{n:14s} {X.shape[0]:6d} x {X.shape[1]:3d}  classes={y.nunique():2d}  "
              f"NaN={int(X.isna().sum().sum()):5d}  {kinds}")  # fmt: skip

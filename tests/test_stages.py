"""The job as stages over a ``Run``: every stage is done exactly when its record matches the
inputs it would run with now, and a resumed finished job redoes nothing."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from neas import pipeline
from neas.config import (
    FINAL_EPOCHS,
    FINAL_INIT,
    FINAL_PATIENCE,
    FINAL_REFIT,
    IMAGE_BATCH,
    IMAGE_EPOCHS,
    TABLE_FINAL_INIT,
    TABLE_PATIENCE,
    TABLE_REFIT,
    DataOptions,
    FinalOptions,
    RunConfig,
    SearchOptions,
    TrainConfig,
    table_schedule,
)
from neas.layout import CHECKPOINT, MANIFEST, PARETO, SEARCH_DIR, SEARCH_SUMMARY, STAGES_DIR
from neas.run import Run
from neas.stages import ExportStage, SearchStage, TrainStage
from tests.conftest import tiny_run

OPTIONS = SearchOptions(budget="600M", population=4, generations=2, latency=False)
FINAL = FinalOptions(epochs=1)


def _job(out: Path, **kw):
    return pipeline.search(
        out=out,
        config=tiny_run(max_train=200),
        options=kw.pop("options", OPTIONS),
        final=FINAL,
        device="cpu",
        threads=1,
        show_progress=False,
        plots=False,
        **kw,
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stages") / "run"
    _job(out)
    return out


def _mtimes(run: Path) -> dict[str, int]:
    watched = [CHECKPOINT, f"{SEARCH_DIR}/{SEARCH_SUMMARY}", PARETO]
    watched += [str(p.relative_to(run)) for p in run.glob(f"ensembles/*/{MANIFEST}")]
    return {name: (run / name).stat().st_mtime_ns for name in watched}


def test_every_stage_leaves_its_record(finished: Path) -> None:
    run = Run.open(finished)
    cpu = torch.device("cpu")
    assert sorted(p.stem for p in (finished / STAGES_DIR).iterdir()) == [
        "export",
        "search",
        "train",
    ]
    assert TrainStage(device=cpu).is_done(run)
    assert SearchStage(OPTIONS, cpu).is_done(run)
    assert ExportStage(device=cpu, final=FINAL).is_done(run)
    # other inputs: not done
    assert not SearchStage(replace(OPTIONS, population=6), cpu).is_done(run)
    assert not ExportStage(device=cpu, final=FinalOptions(epochs=2)).is_done(run)
    other = Run(finished, config=replace(run.config, train=replace(run.config.train, epochs=3)))
    assert not TrainStage(device=cpu).is_done(other)
    # each record says what the stage made
    assert run.record("search")["proposals"] == 8
    front = pd.read_csv(finished / PARETO, dtype={"id": str})
    assert sorted(run.record("export")["exported"]) == sorted(front["id"])


def test_resuming_a_finished_job_redoes_nothing(finished: Path) -> None:
    before = _mtimes(finished)
    front = (finished / PARETO).read_text()
    result = _job(finished, resume=True)
    assert _mtimes(finished) == before
    assert (finished / PARETO).read_text() == front
    assert result is not None and len(result.exported) == len(result.search.front)


def test_a_damaged_record_runs_its_stage_and_the_later_ones_again(
    finished: Path, tmp_path: Path
) -> None:
    out = Path(shutil.copytree(finished, tmp_path / "run"))
    (out / STAGES_DIR / "search.json").write_text("{not json")
    run = Run.open(out)
    assert run.record("search") is None
    assert not SearchStage(OPTIONS, torch.device("cpu")).is_done(run)
    summary = out / SEARCH_DIR / SEARCH_SUMMARY
    stamp = summary.stat().st_mtime_ns
    exported = {p: p.stat().st_mtime_ns for p in out.glob(f"ensembles/*/{MANIFEST}")}
    _job(out, resume=True)
    assert summary.stat().st_mtime_ns != stamp  # searched again
    # the same front, so the finished exports are kept, and the export stage (a new search
    # result) ran again: pareto.csv has the final stage's columns back
    assert {p: p.stat().st_mtime_ns for p in exported} == exported
    assert (out / PARETO).read_text() == (finished / PARETO).read_text()
    assert Run.open(out).record("search") is not None


def test_the_training_schedule_is_the_datas_where_left_open(tmp_path: Path) -> None:
    """`neas search` on a table trains on the tables' step budget and final-trains as the
    estimator does: what the configuration leaves ``None`` is settled from the data."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.choice(["x", "y"], size=300)})
    frame["label"] = np.where(frame["a"] > 0, "pos", "neg")
    frame.to_csv(tmp_path / "t.csv", index=False)
    cpu = torch.device("cpu")
    table = Run.for_job(
        tmp_path / "run",
        config=RunConfig(data=DataOptions(source=str(tmp_path / "t.csv"), target="label")),
        resume=False,
    )
    TrainStage(device=cpu).preflight(table)
    rows = len(table.dataset.y_train)
    assert (table.config.train.epochs, table.config.train.batch_size) == table_schedule(rows)
    final = ExportStage(device=cpu).settled(table)
    assert (final.epochs, final.init, final.patience, final.refit) == (
        table_schedule(rows)[0],
        TABLE_FINAL_INIT,
        TABLE_PATIENCE,
        TABLE_REFIT,
    )
    images = Run.for_job(tmp_path / "img", config=RunConfig(), resume=False)
    TrainStage(device=cpu).preflight(images)
    assert (images.config.train.epochs, images.config.train.batch_size) == (
        IMAGE_EPOCHS,
        IMAGE_BATCH,
    )
    assert ExportStage(device=cpu).settled(images) == FinalOptions(
        epochs=FINAL_EPOCHS, init=FINAL_INIT, patience=FINAL_PATIENCE, refit=FINAL_REFIT
    )
    given = Run.for_job(
        tmp_path / "given",
        config=RunConfig(
            data=DataOptions(source=str(tmp_path / "t.csv"), target="label"),
            train=TrainConfig(epochs=3),
        ),
        resume=False,
    )
    TrainStage(device=cpu).preflight(given)
    assert given.config.train.epochs == 3  # what the user gave stays
    assert not (tmp_path / "run").exists()  # preflight writes nothing

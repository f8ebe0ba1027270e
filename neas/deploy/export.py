"""Export Pareto-front ensembles of a run as deployable, verified, timed artifacts.

For each selected row of ``RUN/pareto.csv``, ``export_run`` writes ``RUN/ensembles/<id>/``:

    model.onnx      one graph: trunk once, K branches; outputs probabilities, logits_0..K-1
    model.pt        weights + architecture JSON (``neas.load_ensemble``; no pickled code)
    cascade.csv     early-exit cascade: accuracy vs mean MACs per threshold (val and test)
    cascade.png     the same as a plot
    manifest.json   architecture, cost, accuracies, ONNX parity, ORT latency, input spec

Every ONNX export is checked (ONNX checker, ORT vs PyTorch on real validation images: an
``ExportError`` above 1e-4) and timed in ONNX Runtime. ``manifest.json`` is written last.

Example (not run as a doctest: it trains or needs a run folder)::

    folders = export_run("runs/digits", select="best")
    sorted(p.name for p in folders[0].iterdir())
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import neas.deploy.cascade as casc
from neas.config import (
    CALIBRATION_IMAGES,
    EXPORT_FINAL_EPOCHS,
    EXPORT_THREADS,
    FINAL_INIT,
    FINAL_PATIENCE,
    FINAL_REFIT,
    FinalOptions,
)
from neas.cost import CostTable
from neas.data import Dataset
from neas.deploy.final import final_train, refit_checkpoint
from neas.deploy.metrics import accuracies, softmax_np
from neas.deploy.model_file import InputSpec, save_ensemble_file
from neas.deploy.onnx_export import export_onnx
from neas.device import resolve_device, torch_threads
from neas.errors import ConfigError, InvalidArchError, RunDirError, SelectError
from neas.evaluate import (
    CalibratedEnsemble,
    calibrate_ensemble,
    calibration_images,
    ensemble_logits,
)
from neas.files import atomic_write_text, file_lock, read_json, write_json
from neas.front import best as best_row
from neas.layout import (
    CASCADE_PLOT,
    CASCADE_TABLE,
    ENSEMBLES,
    FINAL_CHECKPOINT,
    MANIFEST,
    MODEL_ONNX,
    MODEL_PT,
    PARETO,
    SEARCH_LOCK,
)
from neas.nn.ensemble import EnsembleNet
from neas.progress import make_progress
from neas.run import (
    TrainedRun,
    ensemble_dir,
    export_matches,
    front_archs,
    open_trained,
    read_pareto,
    real_dir,
    remove_stale_exports,
    writable_dir,
)
from neas.search_spaces.arch import EnsembleArch
from neas.workers import Workers, cpu_workers

log = logging.getLogger("neas")

FORMATS: tuple[str, ...] = ("onnx", "torch")
ARTIFACTS = (MANIFEST, MODEL_ONNX, MODEL_PT, CASCADE_TABLE, CASCADE_PLOT)


def select_rows(table: pd.DataFrame, select: str | Sequence[str]) -> pd.DataFrame:
    """Rows for ``"all"``, ``"best"`` (highest val accuracy, then fewest MACs) or a list of ids.

    >>> t = pd.DataFrame({"id": ["e0", "e1"], "val_accuracy": [0.9, 0.95], "macs": [1, 2]})
    >>> select_rows(t, "best")["id"].tolist(), select_rows(t, ["e0"])["id"].tolist()
    (['e1'], ['e0'])
    """
    ids = [select] if isinstance(select, str) else list(select)
    if ids == ["all"] or not ids:
        return table
    if ids == ["best"]:
        return table.loc[[best_row(table).name]]
    valid = table["id"].tolist()
    unknown = [i for i in ids if i not in valid]
    if unknown:
        raise SelectError(
            f"unknown ensemble id {', '.join(unknown)}; valid: all, best, {', '.join(valid)}"
        )
    return table.set_index("id", drop=False).loc[list(dict.fromkeys(ids))]


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise ConfigError(f"unknown export format {', '.join(bad)!r}; valid: {', '.join(FORMATS)}")
    return chosen


def input_spec(dataset: Dataset) -> InputSpec:
    """What an exported network expects, from the dataset it was trained on."""
    return InputSpec(
        dataset.input_shape,
        dataset.mean,
        dataset.std,
        dataset.class_names,
        preprocessing=dataset.preprocessing,
    )


def export_ensemble(
    run: TrainedRun,
    row: pd.Series,
    *,
    out_dir: Path,
    formats: tuple[str, ...],
    final_epochs: int = EXPORT_FINAL_EPOCHS,
    final_init: str = FINAL_INIT,
    final_patience: int = FINAL_PATIENCE,
    final_refit: bool = FINAL_REFIT,
    cascade: bool = True,
    threads: int = EXPORT_THREADS,
    device: torch.device,
    show_progress: bool = False,
    final_time_share: Callable[[], float] | None = None,
    calibrated: CalibratedEnsemble | None = None,
) -> dict[str, Any]:
    """Export one Pareto row into ``out_dir``; returns its manifest (also written there).

    ``calibrated``: the row's ensemble as the search calibrated it on this run's supernet
    (``neas.evaluate.calibrate_ensemble``); used instead of recalibrating when its architecture
    and calibration images are the row's and the run's, else computed here.

    Earlier artifacts in ``out_dir`` are removed first (but not a final-training checkpoint
    of a killed export, which is resumed); ``manifest.json`` is written last, so a folder
    without one holds an export that did not finish.
    """
    for name in ARTIFACTS:
        (out_dir / name).unlink(missing_ok=True)
    ds, space, costs = run.dataset, run.space, CostTable.from_space(run.space)
    arch = EnsembleArch.from_json(str(row["arch"]), space)
    labels = {"val": ds.y_val, "test": ds.y_test}
    calibration = (CALIBRATION_IMAGES, run.config.train.seed)  # (images, seed)
    wanted = (arch.to_json(space), calibration)
    if calibrated is None or (calibrated.arch, calibrated.calibration) != wanted:
        # the search's memory format (``run_search``): the same statistics and logits as it
        # computes, to the last bit
        supernet = run.supernet.to(memory_format=torch.channels_last)
        calibrated = calibrate_ensemble(
            supernet,
            arch,
            x_calib=calibration_images(ds, n=calibration[0], seed=calibration[1]),
            calibration=calibration,
            splits={s: getattr(ds, f"x_{s}") for s in labels},
            device=device,
        )
    # a copy: final training and the move to the CPU below change a network in place, and the
    # caller's (the search result's) must stay as it was
    net: EnsembleNet = copy.deepcopy(calibrated.net).eval()
    logits = dict(calibrated.logits)
    manifest: dict[str, Any] = {"format": "neas-ensemble-manifest", "format_version": 1}
    cost = costs.ensemble(arch)
    manifest |= {
        "id": str(row["id"]),
        "arch": arch.to_dict(space),
        "members": arch.num_members,
        "split": arch.split,
        "macs": cost.macs,
        "params": cost.params,
        "trunk_macs": costs.trunk(arch).macs,
        "member_macs": [costs.member(arch, m).macs for m in range(arch.num_members)],
        "search": {k: _plain(row[k]) for k in row.index if k not in ("id", "arch")},
    }
    checkpoint, held_out = out_dir / FINAL_CHECKPOINT, None
    if final_epochs > 0:
        with torch_threads(run.threads):  # training's count (``threads`` is the export's)
            done = final_train(
                net,
                space,
                arch,
                ds.x_train,
                ds.y_train,
                epochs=final_epochs,
                init=final_init,
                config=run.config.train,
                device=device,
                checkpoint=checkpoint,
                show_progress=show_progress,
                patience=final_patience,
                val=(ds.x_val, ds.y_val),
                time_share=final_time_share,
                refit=final_refit,
            )
        net, held_out = done.net, done.held_out
        before = accuracies(probs(logits), labels)
        logits = {s: ensemble_logits(net, getattr(ds, f"x_{s}"), device=device) for s in labels}
        manifest["final"] = {
            "epochs": final_epochs,
            "init": final_init,
            "patience": final_patience,
            "refit": final_refit,
            "epochs_trained": done.epochs,
            "best_epoch": done.best_epoch,
            "refit_rows": done.refit_rows,
            "seconds": done.seconds,
            "resumed_from_epoch": done.resumed_from,
            "loss": "sum of the members' own cross-entropies, each member on its own batches; "
            "trunk gradient / K",
        }
        if done.refit_rows:
            manifest["final"]["val_scores"] = (
                "of the early-stopped ensemble before its refit on the training and validation "
                "rows (the exported one has seen the validation rows)"
            )
        manifest["accuracy_before_final"] = before
    # what accuracies and the cascade read: rows the exported network has not trained on
    scored = dict(logits)
    if held_out is not None:  # refitted on the val rows: val scores are the kept ensemble's
        scored["val"] = ensemble_logits(held_out, ds.x_val, device=device)
        if _same_rows(ds.x_test, ds.x_val):  # no test split of its own (the estimator's)
            scored["test"] = scored["val"]
    manifest["accuracy"] = accuracies(probs(scored), labels)
    net = net.to("cpu", memory_format=torch.contiguous_format).eval()
    files: dict[str, str] = {}
    if "onnx" in formats:
        # parity is against this CPU network: logits from CUDA (TF32 convolutions by default)
        # can differ from it by more than the tolerance, so they are recomputed here
        cpu_logits = logits["val"] if device.type == "cpu" else None
        manifest |= export_onnx(
            net, out_dir / MODEL_ONNX, x_val=ds.x_val, val_logits=cpu_logits, threads=threads
        )
        files["onnx"] = MODEL_ONNX
    threshold = None
    if cascade:
        manifest["cascade"] = casc.write_cascade(
            out_dir,
            probs=probs(scored),
            labels=labels,
            arch=arch,
            costs=costs,
        )
        threshold = manifest["cascade"]["threshold"]
        files |= {"cascade_table": CASCADE_TABLE, "cascade_plot": CASCADE_PLOT}
    if "torch" in formats:
        save_ensemble_file(
            out_dir / MODEL_PT,
            net=net,
            arch=arch,
            space=space,
            input_spec=input_spec(ds),
            cascade_threshold=threshold,
        )
        files["torch"] = MODEL_PT
    spec = input_spec(ds)
    manifest["input"] = spec.to_dict() | (
        {
            "layout": "N x F x 1 x 1 float32 (F encoded features), batch dimension dynamic",
            "normalization": "x = (encode(row) - mean) / std per feature; encode: preprocessing "
            "(numeric: missing -> median; dates: parts; text: one 0/1 feature per category, or "
            "MinHash for many values; neas.tabular)",
        }
        if spec.is_table
        else {
            "layout": "NCHW float32, batch dimension dynamic",
            "normalization": "x = (pixels / 255 - mean) / std per channel (mean/std in [0, 1])",
        }
    )
    manifest["files"] = files
    write_json(out_dir / MANIFEST, manifest)
    for done_with in (checkpoint, refit_checkpoint(checkpoint)):
        done_with.unlink(missing_ok=True)  # the export is whole: no resume needed
    return manifest


def _same_rows(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two splits hold the same rows (a test split that is the val split)."""
    return a is b or (a.shape == b.shape and bool(np.array_equal(a, b)))


def probs(logits: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {split: softmax_np(t) for split, t in logits.items()}


def _plain(value: Any) -> Any:
    """numpy/pandas scalars as JSON-ready Python values (NaN -> None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def export_run(
    run_dir: str | Path,
    *,
    select: str | Sequence[str] = "all",
    formats: Sequence[str] = FORMATS,
    final_epochs: int = EXPORT_FINAL_EPOCHS,
    final_init: str | None = None,
    final_patience: int | None = None,
    final_refit: bool | None = None,
    cascade: bool = True,
    threads: int = EXPORT_THREADS,
    device: str | None = None,
    show_progress: bool = True,
    resume: bool = False,
    stop_when: Callable[[], bool] | None = None,
    final_time_share: Callable[[], float] | None = None,
    trained: TrainedRun | None = None,
    calibrated: Mapping[str, CalibratedEnsemble] | None = None,
    workers: int | None = None,
) -> list[Path]:
    """Export the selected ensembles of ``run_dir``; returns their folders (see module doc).

    ``resume`` keeps every export that is already finished for its row's architecture with
    the asked formats (a resumed job redoes no finished export); otherwise all are redone.

    ``select`` is ``"all"``, ``"best"`` or ensemble ids from ``pareto.csv``. ``threads`` is the
    CPU thread count for PyTorch and ONNX Runtime while exporting, and the one latency is
    reported for (1 by default: tiny models run fastest on one thread, and a shared machine does
    not oversubscribe); final training runs at the count the supernet trained with where the
    run was handed over in memory (``trained.threads``: the main job's, the estimator's), at
    ``threads`` otherwise. Final training runs on ``device``; export and timing on the CPU.

    ``final_epochs`` > 0 trains each selected ensemble as an ensemble first, members apart,
    from the starting weights ``final_init`` picks (``neas.deploy.final``), stopping early
    after ``final_patience`` epochs without a better validation score (0: never), then, with
    ``final_refit``, trained again on the training and validation rows for the epochs kept;
    ``None`` is the run's data's choice, as in the main job (``FinalOptions.settled``).

    A time limit: ``stop_when()`` is asked before each ensemble, and once it says so the rest
    are left unexported (one logged line names them); ``final_time_share()`` is the final
    training's share of its time spent (``final_train``). ``trained``: the run already open
    (the pipeline's), so it is not read again.
    ``calibrated`` (``SearchResult.calibrated``: the search's front ensembles by architecture
    JSON, calibrated on this run's supernet) spares recalibrating them and computing their
    logits again; ensembles it lacks are computed as without it.
    ``workers``: ensembles without final training, exported on one thread each (``threads=1``)
    and with no time limit, are exported that many at a time in forked processes
    (``neas.workers``; ``None``: one per usable CPU core, ``cpu_workers``); their
    latencies are then timed while the others export, one process per core.

    Example (not run as a doctest: it trains or needs a run folder)::

        export_run("runs/digits", select=["e000", "e003"], final_epochs=2)
    """
    run = Path(run_dir)
    table = read_pareto(run)
    rows = select_rows(table, select)
    chosen = check_formats(formats)
    given = FinalOptions(  # errors
        epochs=final_epochs, init=final_init, patience=final_patience, refit=final_refit
    )
    if threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    dev = resolve_device(device)
    trained = trained or open_trained(run, device=dev)
    ds = trained.dataset  # what final training leaves open is the data's (FinalOptions.settled)
    settled = given.settled(rows=len(ds.y_train), table=ds.is_table)
    final_epochs, final_init, final_patience = settled.epochs, settled.init, settled.patience
    final_refit = bool(settled.refit and final_patience)
    for _, row in rows.iterrows():  # every architecture fits the run before anything is written
        try:
            EnsembleArch.from_json(str(row["arch"]), trained.space)
        except InvalidArchError as exc:
            raise RunDirError(
                f"{run / PARETO}: ensemble {row['id']}: {exc}; run `neas search` again"
            ) from None
    for _, row in rows.iterrows():
        ensemble_dir(run, row["id"])  # no symbolic link on the way
    writable_dir(real_dir(run / ENSEMBLES))
    folders = []
    with (
        file_lock(run / SEARCH_LOCK),  # one writer of ensembles/ at a time (export, search)
        make_progress(show=show_progress) as progress,
        torch_threads(threads),
    ):
        remove_stale_exports(run, front_archs(read_pareto(run)))  # the front may have changed
        task = progress.add_task("export", total=len(rows), info="")

        def export_row(item: tuple[pd.Series, Path]) -> Path:
            row, out = item
            export_ensemble(
                trained,
                row,
                out_dir=out,
                formats=chosen,
                final_epochs=final_epochs,
                final_init=final_init,
                final_patience=final_patience,
                final_refit=final_refit,
                cascade=cascade,
                threads=threads,
                device=dev,
                show_progress=show_progress,
                final_time_share=final_time_share,
                calibrated=(calibrated or {}).get(str(row["arch"])),
            )
            return out

        final = (
            (final_epochs, final_init, final_patience, final_refit)
            if final_epochs
            else (0, None, 0, False)
        )
        parallel = not final_epochs and threads == 1 and stop_when is None and len(rows) > 1
        n = (cpu_workers(None, dev) if workers is None else workers) if parallel else 1
        with Workers(export_row, n) as pool:
            waits: list[Callable[[], Path]] = []  # forked: collected below, in the rows' order
            for i, (_, row) in enumerate(rows.iterrows()):
                if stop_when is not None and stop_when():
                    left = ", ".join(map(str, rows["id"].iloc[i:]))
                    log.info(f"time limit: not exported {left} (export them with `neas export`)")
                    break
                progress.update(task, info=str(row["id"]))
                out = writable_dir(ensemble_dir(run, row["id"]))
                if resume and _finished(out, str(row["arch"]), chosen, final, cascade):
                    done: Callable[[], Path] = lambda out=out: out  # noqa: E731
                else:
                    done = pool.submit((row, out))  # without workers: exported here, now
                if pool.forked:
                    waits.append(done)
                    continue
                folders.append(done())
                progress.update(task, advance=1)
            for wait in waits:
                folders.append(wait())
                progress.update(task, advance=1)
        rescore_front(run, folders)
    return folders


#: Columns of ``pareto.csv`` with what an export's final training made of each ensemble.
FINAL_COLUMNS = ("final_val_accuracy", "final_test_accuracy")


def rescore_front(run_dir: Path, folders: Sequence[Path]) -> None:
    """Write the accuracies that final training gave the exported ensembles in ``folders``
    into ``pareto.csv`` (``FINAL_COLUMNS``, beside the search's), so the front, the report and
    ``load_run(...).best()`` show what the user gets; ensembles without final training keep
    empty cells. The caller holds the run's lock."""
    table = read_pareto(run_dir)
    for column in FINAL_COLUMNS:
        if column not in table.columns:
            table[column] = np.nan
    changed = False
    for folder in folders:
        manifest = read_json(folder / MANIFEST)
        if "final" not in manifest:
            continue
        at = table["id"] == folder.name
        table.loc[at, "final_val_accuracy"] = manifest["accuracy"]["val"]
        table.loc[at, "final_test_accuracy"] = manifest["accuracy"]["test"]
        changed = True
    if changed:
        atomic_write_text(Path(run_dir) / PARETO, table.to_csv(index=False))


def _finished(
    folder: Path,
    arch: str,
    formats: tuple[str, ...],
    final: tuple[int, str | None, int, bool],
    cascade: bool,
) -> bool:
    """Whether ``folder`` holds a finished export of ``arch`` made with these settings
    (``final``: final-training epochs, init, patience and refit, ``(0, None, 0, False)`` for
    none)."""
    if not export_matches(folder, arch):
        return False
    manifest = read_json(folder / MANIFEST)
    files = manifest.get("files", {})
    done = manifest.get("final") or {}
    return (
        all(f in files and (folder / files[f]).is_file() for f in formats)
        and (
            done.get("epochs", 0),
            done.get("init"),
            done.get("patience", 0),
            done.get("refit", False),
        )
        == final
        and (not cascade or "cascade" in manifest)
    )

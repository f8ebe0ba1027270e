"""``neas cascade``: the early-exit cascade of an exported ensemble swept again (another
tolerance or thresholds), its ``cascade.*``, ``manifest.json`` and ``model.pt`` updated; only
for an export of the architecture the front gives its id now.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from neas.config import CASCADE_TOLERANCE
from neas.cost import CostTable
from neas.data import load_data
from neas.deploy.cascade import DEFAULT_THRESHOLDS, write_cascade
from neas.deploy.metrics import softmax_np
from neas.deploy.model_file import load_ensemble, save_ensemble_file
from neas.errors import ConfigError, RunDirError, SelectError
from neas.files import read_json, write_json
from neas.layout import CASCADE_PLOT, CASCADE_TABLE, ENSEMBLES, MANIFEST, MODEL_PT
from neas.run import (
    ensemble_dir,
    export_matches,
    front_archs,
    read_config,
    read_pareto,
    writable_dir,
)


def cascade_run(
    run_dir: str | Path,
    *,
    ensemble_id: str,
    tolerance: float = CASCADE_TOLERANCE,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> dict[str, Any]:
    """Re-sweep the cascade of an exported ensemble; update cascade.*, manifest.json, model.pt.

    Example (not run as a doctest: it trains or needs a run folder)::

        cascade_run("runs/digits", ensemble_id="e000")["threshold"]
    """
    run = Path(run_dir)
    out = ensemble_dir(run, ensemble_id)
    if not (out / MODEL_PT).is_file():
        exported = sorted(p.parent.name for p in run.glob(f"{ENSEMBLES}/*/{MODEL_PT}"))
        valid = ", ".join(exported) or "none yet; run `neas export` first"
        raise SelectError(f"ensemble {ensemble_id!r} has no exported model.pt; exported: {valid}")
    if not 0.0 <= tolerance < 1.0:
        raise ConfigError(f"tolerance must be in [0, 1), got {tolerance}")
    model = load_ensemble(out / MODEL_PT)
    require_current(run, ensemble_id)
    manifest_path = out / MANIFEST
    manifest = read_manifest(manifest_path) if manifest_path.is_file() else {"id": ensemble_id}
    ds = load_data(read_config(run).data)
    writable_dir(out)
    info = write_cascade(
        out,
        probs={
            s: softmax_np(model.member_logits(torch.from_numpy(getattr(ds, f"x_{s}"))))
            for s in ("val", "test")
        },
        labels={"val": ds.y_val, "test": ds.y_test},
        arch=model.arch,
        costs=CostTable.from_space(model.space),
        tolerance=tolerance,
        thresholds=thresholds,
    )
    save_ensemble_file(
        out / MODEL_PT,
        net=model.net,
        arch=model.arch,
        space=model.space,
        input_spec=model.input_spec,
        cascade_threshold=info["threshold"],
    )
    manifest["cascade"] = info
    manifest.setdefault("files", {}).update(
        {"cascade_table": CASCADE_TABLE, "cascade_plot": CASCADE_PLOT}
    )
    write_json(manifest_path, manifest)
    return info


def require_current(run_dir: str | Path, ensemble_id: str) -> None:
    """A one-line error unless ``RUN/ensembles/<id>`` is a finished export of the architecture
    that ``pareto.csv`` gives ``ensemble_id`` now (a later search may have given the id to
    another architecture)."""
    arch = front_archs(read_pareto(run_dir)).get(ensemble_id)
    manifest = ensemble_dir(run_dir, ensemble_id) / MANIFEST
    if manifest.is_file():
        read_manifest(manifest)  # a damaged one is named as such
    if arch is None or not export_matches(manifest.parent, arch):
        why = "is not on the front" if arch is None else "was exported from an older front"
        raise SelectError(
            f"ensemble {ensemble_id} {why}; export it again with `neas export {run_dir} "
            f"--select {ensemble_id}`"
        )


def read_manifest(path: Path) -> dict[str, Any]:
    """An exported ensemble's ``manifest.json``; a one-line ``RunDirError`` if it is damaged."""
    try:
        manifest = read_json(path)
    except (ValueError, OSError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise RunDirError(
            f"{path} is damaged ({type(exc).__name__}); export the ensemble again with "
            "`neas export`"
        ) from None
    if not isinstance(manifest, dict):
        raise RunDirError(f"{path} is not an ensemble manifest; export the ensemble again")
    return manifest

"""A finished run in a notebook: the front as a DataFrame, the best ensemble under limits,
loaded ensembles, export and the HTML report.

Example (not run as a doctest: it trains or needs a run folder)::

    run = load_run("runs/digits")
    run.best(max_macs=8e6)["id"]
    run.ensemble("e002").predict(images, normalize=True)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from neas.deploy import DeployedEnsemble, export_run, load_ensemble
from neas.errors import ConfigError, NeasError, SelectError
from neas.front import best_as_trained, describe_best
from neas.layout import MODEL_PT
from neas.report import write_report
from neas.run import ensemble_dir, export_matches, front_archs, read_pareto


class RunResults:
    """The results of the run folder ``run_dir`` (read from disk on each call)."""

    run_dir: Path

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)

    @property
    def front(self) -> pd.DataFrame:
        """The Pareto front (``pareto.csv``): one row per ensemble, by id."""
        return read_pareto(self.run_dir)

    def best(self, *, max_macs: float | None = None, max_latency_ms: float | None = None) -> Any:
        """The front's row with the best validation accuracy (then fewest MACs) within limits:
        among the ensembles with final training, by its score (``final_val_accuracy``); where
        none within the limits had it, by the search's (``neas.front.best_as_trained``).
        ``max_latency_ms`` applies to the search's predicted latency (``latency_ms``).
        """
        front = self.front
        if max_macs is not None:
            front = front[front["macs"] <= max_macs]
        if max_latency_ms is not None:
            front = front[front["latency_ms"] <= max_latency_ms]
        if front.empty:
            raise ConfigError(
                f"no ensemble of {self.run_dir} meets max_macs={max_macs}, "
                f"max_latency_ms={max_latency_ms}; the cheapest has "
                f"{int(self.front['macs'].min()):,} MACs"
            )
        return best_as_trained(front)

    def ensemble(self, ensemble_id: str) -> DeployedEnsemble:
        """Ensemble ``ensemble_id``, loaded (exported first, PyTorch only, if it is not yet)."""
        front = front_archs(self.front)
        if ensemble_id not in front:
            raise SelectError(f"unknown ensemble id {ensemble_id}; valid: {', '.join(front)}")
        folder = ensemble_dir(self.run_dir, ensemble_id)
        if not (folder / MODEL_PT).is_file() or not export_matches(folder, front[ensemble_id]):
            export_run(self.run_dir, select=[ensemble_id], formats=("torch",), cascade=False)
        return load_ensemble(folder / MODEL_PT)

    def export(self, select: str | Sequence[str] = "all", **kwargs: Any) -> list[Path]:
        """``neas export`` (then the report is rewritten): see ``neas.deploy.export_run``."""
        folders = export_run(self.run_dir, select=select, **kwargs)
        write_report(self.run_dir)
        return folders

    def __repr__(self) -> str:
        try:
            front = self.front
        except NeasError as exc:
            return f"RunResults({str(self.run_dir)!r}: {exc})"
        return (
            f"RunResults({str(self.run_dir)!r}: {len(front)} ensembles on the front; best "
            f"{describe_best(self.best())})"
        )

    def report(self) -> Path:
        """Write ``report.html`` and return its path."""
        return write_report(self.run_dir)


def load_run(run_dir: str | Path) -> RunResults:
    """The results of a finished run folder (after ``neas search`` or ``neas evolve``)."""
    results = RunResults(run_dir)
    results.front  # noqa: B018  (a one-line error now if there is no front)
    return results

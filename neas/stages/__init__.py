"""The main job's stages, each over one :class:`neas.run.Run`.

A stage is a small object holding its options and where it runs (device, threads, a clock),
with three methods:

    preflight(run)  the only validation of its options against the run (its space, its
                    folder); called for every stage before any stage trains or writes
    is_done(run)    whether the run holds this stage's record for the inputs it would run
                    with now (``Run.is_done``: one rule for every stage)
    run(run)        the work: its files, then its record (``Run.mark_done``), last

``neas.pipeline`` runs them in order (train, search, final training and export, report); the
CLI commands and the estimator are selections of them. A stage hands the next its results in
memory through the ``Run`` (``Run.trained``); a later process opens them from the folder.

>>> from neas.stages import SearchStage, TrainStage, ExportStage
>>> TrainStage.name, SearchStage.name, ExportStage.name
('train', 'search', 'export')
"""

from __future__ import annotations

from typing import Any, Protocol

from neas.run import Run
from neas.stages.export import ExportStage
from neas.stages.search import SearchStage
from neas.stages.train import TrainStage, random_ensemble_accuracy


class Stage(Protocol):
    name: str

    def preflight(self, run: Run) -> None: ...

    def is_done(self, run: Run) -> bool: ...

    def run(self, run: Run) -> Any: ...


__all__ = [
    "ExportStage",
    "SearchStage",
    "Stage",
    "TrainStage",
    "random_ensemble_accuracy",
]

"""The final-training and export stage: the best ensemble of the front (or the one chosen)
trained as an ensemble, members apart (``neas.deploy.final``), and exported; then the rest of
the front exported with the supernet's weights.

Done when the run's ``export`` record matches the front, the final-training options and what
was asked to be exported (``Run.is_done``); a killed export resumes ensemble by ensemble (each
finished export's ``manifest.json`` names its architecture and settings). Under a time limit
(``clock``) the rest of the front is exported first, while its stage has time, and the final
stage's epochs come from the plan (``neas.limited.finish_in_time``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from neas.config import FinalOptions
from neas.deploy import export_run
from neas.deploy.export import FORMATS, select_rows
from neas.evaluate import CalibratedEnsemble
from neas.layout import ENSEMBLES
from neas.limited import finish_in_time
from neas.run import Run, front_archs, real_dir
from neas.time_limit import JobClock
from neas.workers import cpu_workers


@dataclass(frozen=True)
class ExportStage:
    """``select`` (``"best"`` or an id) with final training (``final``, settled by the run's
    data), then, with ``rest``, the other ensembles of the front without; ``calibrated``: the
    search's front ensembles, as ``export_run`` takes them."""

    name: ClassVar[str] = "export"
    device: torch.device
    final: FinalOptions = field(default_factory=FinalOptions)
    select: str = "best"
    rest: bool = True
    formats: tuple[str, ...] = FORMATS
    cascade: bool = True
    resume: bool = False
    show_progress: bool = True
    clock: JobClock | None = None
    calibrated: Mapping[str, CalibratedEnsemble] | None = None

    def settled(self, run: Run) -> FinalOptions:
        """The final-training options, with what they leave open decided by the run's data."""
        ds = run.dataset
        return self.final.settled(rows=len(ds.y_train), table=ds.is_table)

    def inputs(self, run: Run) -> dict[str, Any]:
        return {
            "front": front_archs(run.front()),
            "search": run.made_by("search"),
            "final": asdict(self.settled(run)),
            "select": self.select,
            "rest": self.rest,
            "formats": list(self.formats),
            "cascade": self.cascade,
        }

    def preflight(self, run: Run) -> None:
        if run.path.exists():
            real_dir(run / ENSEMBLES)  # never written through a symbolic link

    def is_done(self, run: Run) -> bool:
        return run.is_done(self.name, self.inputs(run))

    def run(self, run: Run) -> list[Path]:
        table = run.front()
        first = str(select_rows(table, self.select)["id"].iloc[0])
        chosen = [first] + ([i for i in table["id"].astype(str) if i != first] if self.rest else [])
        if self.resume and self.is_done(run):
            return [folder for i in chosen if (folder := run.ensemble(i)).is_dir()]
        trained = run.trained(self.device)
        final = self.settled(run)
        run.forget(self.name)
        if self.clock is not None:
            folders = finish_in_time(
                trained,
                self.clock,
                final=self.final,  # as given: under a clock a count given caps, a settled not
                device=self.device,
                show_progress=self.show_progress,
                resume=self.resume,
                select=self.select,
                rest=self.rest,
                formats=self.formats,
                cascade=self.cascade,
                calibrated=self.calibrated,
            )
        else:
            folders = []
            for select, epochs in (([first], final.epochs), (chosen[1:], 0)):
                if select:
                    folders += export_run(
                        run.path,
                        select=select,
                        formats=self.formats,
                        final_epochs=epochs,
                        final_init=final.init,
                        final_patience=final.patience if epochs else 0,
                        final_refit=final.refit,
                        cascade=self.cascade,
                        device=str(self.device),
                        show_progress=self.show_progress,
                        resume=self.resume,
                        trained=trained,
                        calibrated=self.calibrated,
                        workers=cpu_workers(trained.threads, self.device),
                    )
        run.mark_done(self.name, self.inputs(run), exported=[f.name for f in folders])
        return folders

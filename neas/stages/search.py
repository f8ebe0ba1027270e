"""The search stage: ensembles searched on the trained supernet under the MACs budget; the
front goes into the run (``pareto.csv``, ``search/``).

Done when the run's ``search`` record matches the options and the training it ran on
(``Run.is_done``): a resumed job, or ``neas evolve`` with the same options, returns the stored
result; an unfinished search (killed) continues from its checkpoint (``search/scores.json``),
and either way the result is the one a fresh search gives. ``resume=False`` scores everything
again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch

from neas.config import THREADS, SearchOptions
from neas.device import Threads, torch_threads
from neas.evolution import SearchResult, check_search, load_search, preflight_search, run_search
from neas.run import Run
from neas.training import training_threads


@dataclass(frozen=True)
class SearchStage:
    """Search with ``options`` on ``device``; ``stop_when()`` (a time limit) is asked after
    every proposal; ``plots=False`` draws no figure."""

    name: ClassVar[str] = "search"
    options: SearchOptions
    device: torch.device
    threads: Threads = THREADS
    resume: bool = True
    show_progress: bool = True
    plots: bool = True
    stop_when: Callable[[], bool] | None = None

    def inputs(self, run: Run) -> dict[str, Any]:
        return {"options": asdict(self.options), "train": run.made_by("train")}

    def preflight(self, run: Run) -> None:
        """The options against the space the run starts from (before anything is trained)."""
        check_search(self.options, run.search_space)

    def is_done(self, run: Run) -> bool:
        return run.is_done(self.name, self.inputs(run)) and load_search(run.path) is not None

    def run(self, run: Run) -> SearchResult:
        trained = run.trained(self.device)
        # the options against the trained (perhaps shrunk) space, and the folder: bad input
        # fails before threads are timed
        preflight_search(run.path, self.options, trained.space)
        if self.resume and self.is_done(run):
            done = load_search(run.path)
            assert done is not None
            return done
        n_threads = training_threads(
            self.threads, trained.space, trained.dataset, config=trained.config.train,
            device=self.device,
        )  # fmt: skip
        run.forget(self.name)
        with torch_threads(n_threads):
            result = run_search(
                run.path,
                trained.supernet,
                trained.dataset,
                options=self.options,
                device=self.device,
                resume=self.resume,
                show_progress=self.show_progress,
                plots=self.plots,
                stop_when=self.stop_when,
            )
        run.mark_done(self.name, self.inputs(run), proposals=result.summary.get("proposals"))
        return result

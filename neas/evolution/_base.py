"""The one narrow interface every search strategy implements, ask/tell, and the one loop that
runs any of them (``propose``): strategies only propose genomes and learn from their scores;
the loop scores the proposals through the problem, generation by generation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from neas.evolution.problem import SearchProblem

GenerationCallback = Callable[[int], None]


@dataclass(frozen=True)
class Proposal:
    """One generation's proposals: ``genomes`` (n, n_var) to score, how many proposals they
    count as (``size``: a shared study's duplicates are proposals it settles itself), and what
    the strategy needs back in ``tell`` (``state``)."""

    genomes: np.ndarray
    generation: int
    size: int
    state: Any = None


class SearchStrategy(ABC):
    """Proposes genomes (``ask``) and learns from their objectives (``tell``).

    A strategy never sees data, only genomes, objective values and the problem's costs; the
    problem records the history. ``start`` is called once before the first ``ask``.
    """

    name: str = ""

    @abstractmethod
    def start(
        self, problem: SearchProblem, *, evaluations: int, population: int, seed: int
    ) -> None:
        """Set up for ``evaluations`` proposals in generations of ``population``."""

    @abstractmethod
    def ask(self, n: int) -> Proposal | None:
        """Up to ``n`` proposals; ``None`` when there is nothing left to propose."""

    @abstractmethod
    def tell(self, proposal: Proposal, f: np.ndarray, g: np.ndarray) -> None:
        """The objectives ``f`` (n, 3) and constraint ``g`` (n, 1) of ``proposal.genomes``."""

    def abandon(self) -> None:  # noqa: B027  (optional hook)
        """The loop failed or was stopped: release what the strategy holds (a shared study's
        running trials)."""

    def summary(self) -> dict[str, Any]:
        """What the strategy has to say about its search, for ``search/summary.json``."""
        return {}

    def gather(self, problem: SearchProblem) -> None:  # noqa: B027  (optional hook)
        """Bring proposals made elsewhere into ``problem.history`` before the front is taken
        (workers sharing one study); a strategy that proposes alone has nothing to add."""


def propose(
    strategy: SearchStrategy,
    problem: SearchProblem,
    *,
    evaluations: int,
    population: int,
    seed: int,
    on_generation: GenerationCallback | None = None,
) -> None:
    """Spend ``evaluations`` proposals of ``strategy`` (fewer if it runs out), in generations
    of ``population``: ask, score through ``problem``, tell; ``on_generation(g)`` after each.
    For a study shared by several workers, ``evaluations`` is the study's total."""
    strategy.start(problem, evaluations=evaluations, population=population, seed=seed)
    done, asked = 0, False
    try:
        while done < evaluations:
            proposal = strategy.ask(min(population, evaluations - done))
            if proposal is None:
                break
            asked = True
            f, g = problem.evaluate(proposal.genomes, generation=proposal.generation)
            strategy.tell(proposal, f, g)
            done += proposal.size
            if on_generation is not None:
                on_generation(proposal.generation)
    except BaseException:
        strategy.abandon()
        raise
    if not asked and problem.history and on_generation is not None:
        on_generation(problem.history[-1].generation)  # nothing left to ask: the state as is

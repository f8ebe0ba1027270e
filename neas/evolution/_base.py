"""The one narrow interface every search strategy implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from neas.evolution.problem import SearchProblem

GenerationCallback = Callable[[int], None]


class SearchStrategy(ABC):
    """Proposes genomes to ``problem.evaluate`` until ``evaluations`` proposals are spent.

    A strategy never sees data or architectures, only genomes and objective values; the
    problem records the history. ``on_generation(g)`` is called after generation ``g``.
    """

    name: str = ""

    @abstractmethod
    def run(
        self,
        problem: SearchProblem,
        *,
        evaluations: int,
        population: int,
        seed: int,
        on_generation: GenerationCallback | None = None,
    ) -> None:
        """Spend exactly ``evaluations`` proposals, in generations of ``population`` (for a
        study shared by several workers: until the study holds ``evaluations`` trials)."""

    def gather(self, problem: SearchProblem) -> None:  # noqa: B027  (optional hook)
        """Bring proposals made elsewhere into ``problem.history`` before the front is taken
        (workers sharing one study); a strategy that proposes alone has nothing to add."""

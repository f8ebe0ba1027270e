"""Random search under the budget: the honest baseline."""

from __future__ import annotations

import numpy as np

from neas.evolution._base import Proposal, SearchStrategy
from neas.evolution.problem import SearchProblem


class RandomSearch(SearchStrategy):
    """Random genomes within the MACs budget (``SearchProblem.sample_feasible``: the splits
    the budget allows in shuffled rounds, then uniform ops), in batches of ``population``."""

    name = "random"

    def start(
        self, problem: SearchProblem, *, evaluations: int, population: int, seed: int
    ) -> None:
        self._problem, self._rng, self._generation = problem, np.random.default_rng([seed, 1]), 0

    def ask(self, n: int) -> Proposal | None:
        genomes = self._problem.sample_feasible(n, self._rng)
        self._generation += 1
        return Proposal(genomes, self._generation - 1, n)

    def tell(self, proposal: Proposal, f: np.ndarray, g: np.ndarray) -> None:
        pass  # random search learns nothing

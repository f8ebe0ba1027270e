"""Random search under the budget: the honest baseline."""

from __future__ import annotations

import numpy as np

from neas.evolution._base import GenerationCallback, SearchStrategy
from neas.evolution.problem import SearchProblem


class RandomSearch(SearchStrategy):
    """Random genomes within the MACs budget (``SearchProblem.sample_feasible``: the split
    uniform over those the budget allows, then uniform ops), in batches of ``population``."""

    name = "random"

    def run(
        self,
        problem: SearchProblem,
        *,
        evaluations: int,
        population: int,
        seed: int,
        on_generation: GenerationCallback | None = None,
    ) -> None:
        rng = np.random.default_rng([seed, 1])
        done, generation = 0, 0
        while done < evaluations:
            n = min(population, evaluations - done)
            problem.evaluate(problem.sample_feasible(n, rng), generation=generation)
            done += n
            if on_generation is not None:
                on_generation(generation)
            generation += 1

"""pymoo NSGA-II over the integer genome: SBX + polynomial mutation with rounding repair,
duplicate elimination, MACs budget as an inequality constraint. Ask/tell: we own evaluation."""

from __future__ import annotations

import numpy as np

from neas.search._base import GenerationCallback, SearchStrategy
from neas.search.problem import N_OBJECTIVES, SearchProblem


class NSGA2Search(SearchStrategy):
    """NSGA-II (pymoo) seeded with a feasible random population."""

    name = "nsga2"

    def run(
        self,
        problem: SearchProblem,
        *,
        evaluations: int,
        population: int,
        seed: int,
        on_generation: GenerationCallback | None = None,
    ) -> None:
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.evaluator import Evaluator
        from pymoo.core.problem import Problem
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.repair.rounding import RoundingRepair
        from pymoo.problems.static import StaticProblem

        pm_problem = Problem(
            n_var=problem.n_var,
            n_obj=N_OBJECTIVES,
            n_ieq_constr=1,
            xl=problem.xl,
            xu=problem.xu,
            vtype=int,
        )
        initial = problem.sample_feasible(population, np.random.default_rng([seed, 2]))
        algorithm = NSGA2(
            pop_size=population,
            sampling=initial,
            crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
            mutation=PM(eta=20, vtype=float, repair=RoundingRepair()),
            eliminate_duplicates=True,
        )
        algorithm.setup(pm_problem, seed=seed, verbose=False)
        done, generation = 0, 0
        while done < evaluations:
            pop = algorithm.ask()
            if len(pop) == 0:  # the space is exhausted: nothing new to propose
                break
            pop = pop[: evaluations - done]
            genomes = np.rint(pop.get("X")).astype(np.int64)
            f, g = problem.evaluate(genomes, generation=generation)
            # Objectives are scaled for pymoo's crowding distance only; the history keeps raw.
            Evaluator().eval(StaticProblem(pm_problem, F=f, G=g), pop)
            algorithm.tell(infills=pop)
            done += len(pop)
            if on_generation is not None:
                on_generation(generation)
            generation += 1

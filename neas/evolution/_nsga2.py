"""pymoo NSGA-II over the integer genome: SBX + polynomial mutation with rounding repair,
duplicate elimination, MACs budget as an inequality constraint; pymoo's own ask/tell."""

from __future__ import annotations

from typing import Any

import numpy as np

from neas.evolution._base import Proposal, SearchStrategy
from neas.evolution.problem import N_OBJECTIVES, SearchProblem


class NSGA2Search(SearchStrategy):
    """NSGA-II (pymoo) seeded with a feasible random population.

    With ``surrogate=True`` an ``AccuracySurrogate`` is refitted every generation on the
    evaluations so far; twice the offspring are bred and the half it ranks best (predicted
    error, exact MACs) is evaluated. ``surrogate_tau`` holds its Kendall tau on each new
    generation *before* refitting on it (held-out rank correlation).
    """

    name = "nsga2"

    def __init__(self, *, surrogate: bool = False) -> None:
        self.surrogate = surrogate
        self.surrogate_tau: list[float] = []

    def _prescreen(self, problem: SearchProblem, pop, keep: int, model):
        from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

        genomes = np.rint(pop.get("X")).astype(np.int64)
        archs = [problem.decode(g) for g in genomes]
        pred = model.predict(archs, problem.space)
        macs = np.array([problem.costs.ensemble(a).macs for a in archs], dtype=float)
        over = np.maximum(macs - problem.budget, 0.0)
        fronts = NonDominatedSorting().do(np.stack([pred + over, macs], axis=1))
        order = np.concatenate(fronts)[:keep]
        return pop[np.sort(order)]

    def summary(self) -> dict[str, Any]:
        return {"surrogate_kendall_tau_per_generation": self.surrogate_tau}

    def _fit(self, problem: SearchProblem, seed: int):
        from neas.predictors.accuracy import AccuracySurrogate

        seen = [e for e in problem.cache.values() if e.feasible]
        return AccuracySurrogate(seed=seed).fit(
            [e.arch for e in seen], [e.val_error for e in seen], problem.space
        )

    def start(
        self, problem: SearchProblem, *, evaluations: int, population: int, seed: int
    ) -> None:
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.problem import Problem
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.repair.rounding import RoundingRepair

        self._problem, self._seed, self._generation = problem, seed, 0
        self._pm_problem = Problem(
            n_var=problem.n_var,
            n_obj=N_OBJECTIVES,
            n_ieq_constr=1,
            xl=problem.xl,
            xu=problem.xu,
            vtype=int,
        )
        initial = problem.sample_feasible(population, np.random.default_rng([seed, 2]))
        self._algorithm = NSGA2(
            pop_size=population,
            sampling=initial,
            crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
            mutation=PM(eta=20, vtype=float, repair=RoundingRepair()),
            eliminate_duplicates=True,
        )
        self._algorithm.setup(self._pm_problem, seed=seed, verbose=False)

    def ask(self, n: int) -> Proposal | None:
        problem, algorithm = self._problem, self._algorithm
        pop = algorithm.ask()
        if len(pop) == 0:  # the space is exhausted: nothing new to propose
            return None
        generation = self._generation
        model = self._fit(problem, self._seed) if self.surrogate and generation > 0 else None
        if model is not None:
            from pymoo.core.population import Population

            pop = self._prescreen(problem, Population.merge(pop, algorithm.ask()), len(pop), model)
        pop = pop[:n]
        genomes = np.rint(pop.get("X")).astype(np.int64)
        self._generation += 1
        return Proposal(genomes, generation, len(pop), state=(pop, model))

    def tell(self, proposal: Proposal, f: np.ndarray, g: np.ndarray) -> None:
        from pymoo.core.evaluator import Evaluator
        from pymoo.problems.static import StaticProblem

        pop, model = proposal.state
        if model is not None:
            self._record_tau(self._problem, proposal.genomes, f, g, model)
        # Objectives are scaled for pymoo's crowding distance only; the history keeps raw.
        Evaluator().eval(StaticProblem(self._pm_problem, F=f, G=g), pop)
        self._algorithm.tell(infills=pop)

    def _record_tau(self, problem: SearchProblem, genomes, f, g, model) -> None:
        from scipy.stats import kendalltau

        ok = g[:, 0] <= 0
        if ok.sum() >= 3:
            pred = model.predict([problem.decode(x) for x in genomes[ok]], problem.space)
            tau = kendalltau(pred, f[ok, 0]).statistic
            if np.isfinite(tau):
                self.surrogate_tau.append(float(tau))

"""optuna's NSGA-II sampler with ``trial.set_constraint``; a journal file or RDB URL storage
lets a study be resumed or shared by several workers at once."""

from __future__ import annotations

import numpy as np

from neas.errors import ConfigError
from neas.evolution._base import GenerationCallback, SearchStrategy
from neas.evolution.problem import N_OBJECTIVES, SearchProblem


def make_storage(storage: str | None):
    """``None`` -> in memory; ``*.log``/``*.journal`` path -> journal file; else an RDB URL."""

    if storage is None:
        return None
    if "://" in storage:
        return storage
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(storage))


class OptunaSearch(SearchStrategy):
    """optuna ``NSGAIISampler`` (passed explicitly; optuna 5 defaults to TPE)."""

    name = "optuna"

    def __init__(self, *, storage: str | None = None, study_name: str = "neas") -> None:
        self.storage, self.study_name = storage, study_name

    def run(
        self,
        problem: SearchProblem,
        *,
        evaluations: int,
        population: int,
        seed: int,
        on_generation: GenerationCallback | None = None,
    ) -> None:
        import optuna
        from optuna.trial import TrialState

        sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
        try:
            study = optuna.create_study(
                directions=["minimize"] * N_OBJECTIVES,
                sampler=sampler,
                storage=make_storage(self.storage),
                study_name=self.study_name,
                load_if_exists=True,
            )
        except Exception as exc:  # bad URL, unreachable database, ...
            raise ConfigError(f"cannot open optuna storage {self.storage!r}: {exc}") from None
        names = [f"g{i}" for i in range(problem.n_var)]
        done = 0
        previous = [t for t in study.trials if t.state == TrialState.COMPLETE]
        if previous:  # a resumed or shared study: its trials count and enter the history
            genomes = np.array([[t.params[n] for n in names] for t in previous])
            problem.evaluate(genomes, generation=0)
            done = len(previous)
        else:  # start from a feasible random population, as the other strategies do
            start = problem.sample_feasible(population, np.random.default_rng([seed, 2]))
            for genome in start:
                study.enqueue_trial({n: int(v) for n, v in zip(names, genome)})
        generation = done // population
        while done < evaluations:
            trials = [study.ask() for _ in range(min(population, evaluations - done))]
            genomes = np.array(
                [
                    [
                        t.suggest_int(n, int(lo), int(hi))
                        for n, lo, hi in zip(names, problem.xl, problem.xu)
                    ]
                    for t in trials
                ]
            )
            f, g = problem.evaluate(genomes, generation=generation)
            for trial, values, constraint in zip(trials, f, g):
                trial.set_constraint("macs_over_budget", float(constraint[0]))
                study.tell(trial, values.tolist())
            done += len(trials)
            if on_generation is not None:
                on_generation(generation)
            generation += 1

"""optuna's NSGA-II sampler with ``trial.set_constraint``; a journal file or RDB URL storage
lets a study be resumed or shared by several workers at once.

Workers on one study never score an architecture twice: under the study's lock
(``_study.lock_path``) a worker asks its trials, looks each architecture up in the study and
claims the new ones; a duplicate takes the values of the finished trial (or waits for the
running one) instead of being scored. ``evaluations`` is the study's total: a worker stops
asking once the study holds that many finished or running trials.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from typing import Any

import numpy as np

from neas.errors import ConfigError
from neas.evolution._base import Proposal, SearchStrategy
from neas.evolution._study import (
    ARCH,
    EVAL,
    EVALUATED_BY,
    REUSED_FROM,
    WORKER,
    WORKERS,
    decode_evaluation,
    encode_evaluation,
    is_dead,
    lock_path,
    worker_id,
    worker_seed,
)
from neas.evolution.problem import N_OBJECTIVES, Evaluation, SearchProblem
from neas.files import file_lock
from neas.search_spaces.arch import EnsembleArch


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

    def __init__(
        self, *, storage: str | None = None, study_name: str = "neas", poll_seconds: float = 0.5
    ) -> None:
        self.storage, self.study_name, self.poll_seconds = storage, study_name, poll_seconds
        self.worker = worker_id()
        self.study_summary: dict[str, Any] = {}
        self._study: Any = None
        self._population = 1

    def _lock(self) -> AbstractContextManager[None]:
        if self.storage is None:  # in memory: one process
            return nullcontext()
        return file_lock(lock_path(self.storage, self.study_name))

    def start(
        self, problem: SearchProblem, *, evaluations: int, population: int, seed: int
    ) -> None:
        import optuna

        self._problem, self._population, self._evaluations = problem, population, evaluations
        if self.storage is not None:
            lock = lock_path(self.storage, self.study_name)
            try:
                lock.touch(exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"cannot open optuna storage {self.storage!r}: cannot create its lock file "
                    f"{lock} ({exc.strerror or exc})"
                ) from None
        with self._lock():  # also keeps two SQLite workers from creating the tables at once
            try:
                study = optuna.create_study(
                    directions=["minimize"] * N_OBJECTIVES,
                    sampler=optuna.samplers.NSGAIISampler(population_size=population, seed=seed),
                    storage=make_storage(self.storage),
                    study_name=self.study_name,
                    load_if_exists=True,
                )
            except Exception as exc:  # bad URL, unreachable database, ...
                raise ConfigError(f"cannot open optuna storage {self.storage!r}: {exc}") from None
            self._study = study
            self._fail_dead(study)
            index = int(study.user_attrs.get(WORKERS, 0))
            study.set_user_attr(WORKERS, index + 1)
            if not study.get_trials(deepcopy=False):
                # start from a feasible random population, as the other strategies do
                start = problem.sample_feasible(population, np.random.default_rng([seed, 2]))
                for genome in start:
                    study.enqueue_trial({f"g{i}": int(v) for i, v in enumerate(genome)})
        study.sampler = optuna.samplers.NSGAIISampler(
            population_size=population, seed=worker_seed(seed, index)
        )
        self._load(problem)

    def ask(self, n: int) -> Proposal | None:
        """The claimed trials' genomes, to score; the duplicates are settled in ``tell``."""
        batch = self._ask(self._problem, self._evaluations)
        if batch is None:
            return None
        generation, asked = batch
        claimed = [self._genome(t, self._problem) for t, _, mine in asked if mine]
        genomes = np.array(claimed, dtype=np.int64).reshape(len(claimed), self._problem.n_var)
        return Proposal(genomes, generation, len(asked), state=asked)

    def tell(self, proposal: Proposal, f: np.ndarray, g: np.ndarray) -> None:
        problem = self._problem
        for trial, arch, claimed in proposal.state:  # first the claims, then the duplicates
            if claimed:
                self._tell(trial, problem.cache[arch], problem)
        for trial, arch, claimed in proposal.state:
            if not claimed:
                self._settle(trial, arch, problem, generation=proposal.generation)

    # -- the shared study ----------------------------------------------------------------

    @staticmethod
    def _genome(trial: Any, problem: SearchProblem) -> np.ndarray:
        return np.array([trial.params[f"g{i}"] for i in range(problem.n_var)])

    def _trials(self, *states: Any) -> list[Any]:
        return self._study.get_trials(deepcopy=False, states=states or None)

    def _fail_dead(self, study: Any) -> None:
        """Fail the running trials of workers of this host that died (under the lock)."""
        from optuna.trial import TrialState

        for t in self._trials(TrialState.RUNNING):
            if is_dead(t.user_attrs.get(WORKER, "")):
                study.tell(t.number, state=TrialState.FAIL)

    def _load(self, problem: SearchProblem) -> None:
        """The study's finished trials into the history, from their stored evaluations."""
        from optuna.trial import TrialState

        with self._lock():
            trials = self._trials(TrialState.COMPLETE)
        legacy = []
        for t in trials:
            genome = self._genome(t, problem)
            if EVAL in t.user_attrs:
                arch = problem.decode(genome)
                generation = t.number // self._population
                problem.remember(decode_evaluation(t.user_attrs[EVAL], arch, generation=generation))
                problem.evaluate_arch(arch, generation=generation)
            else:
                legacy.append(genome)
        if legacy:  # trials from before neas stored evaluations: scored again
            problem.evaluate(np.array(legacy), generation=0)

    def _ask(
        self, problem: SearchProblem, evaluations: int
    ) -> tuple[int, list[tuple[Any, EnsembleArch, bool]]] | None:
        """Under the lock: ask up to a population of trials within the study's budget and
        claim each architecture that no trial has (nor is scoring)."""
        from optuna.trial import TrialState

        with self._lock():
            trials = self._trials()
            live = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.RUNNING)]
            n = min(self._population, evaluations - len(live))
            if n <= 0:
                return None
            known = {
                t.user_attrs[ARCH]
                for t in live
                if ARCH in t.user_attrs and (EVAL in t.user_attrs or EVALUATED_BY in t.user_attrs)
            }
            asked = []
            for _ in range(n):
                trial = self._study.ask()
                genome = [
                    trial.suggest_int(f"g{i}", int(lo), int(hi))
                    for i, (lo, hi) in enumerate(zip(problem.xl, problem.xu))
                ]
                arch = problem.decode(np.array(genome))
                key = arch.to_json(problem.space)
                trial.set_user_attr(ARCH, key)
                trial.set_user_attr(WORKER, self.worker)
                claimed = key not in known
                if claimed:
                    trial.set_user_attr(EVALUATED_BY, self.worker)
                    known.add(key)
                asked.append((trial, arch, claimed))
        return len(live) // self._population, asked

    def _settle(
        self, trial: Any, arch: EnsembleArch, problem: SearchProblem, *, generation: int
    ) -> None:
        """A duplicate: take the values of the finished trial with its architecture, wait
        while another worker scores it, or claim it if that worker failed or died."""
        from optuna.trial import TrialState

        key = trial.user_attrs[ARCH]
        while True:
            with self._lock():
                same = [t for t in self._trials() if t.user_attrs.get(ARCH) == key]
                done = [t for t in same if t.state == TrialState.COMPLETE and EVAL in t.user_attrs]
                if done:
                    source = done[0]
                    ev = decode_evaluation(source.user_attrs[EVAL], arch, generation=generation)
                    problem.remember(ev)
                    ev = problem.evaluate_arch(arch, generation=generation)
                    self._tell(trial, ev, problem, reused_from=source.number, locked=True)
                    return
                scoring = [
                    t
                    for t in same
                    if t.state == TrialState.RUNNING and EVALUATED_BY in t.user_attrs
                ]
                for t in scoring:
                    if is_dead(t.user_attrs[EVALUATED_BY]):
                        self._study.tell(t.number, state=TrialState.FAIL)
                if not any(not is_dead(t.user_attrs[EVALUATED_BY]) for t in scoring):
                    trial.set_user_attr(EVALUATED_BY, self.worker)
                    break
            time.sleep(self.poll_seconds)
        self._tell(trial, problem.evaluate_arch(arch, generation=generation), problem)

    def _tell(
        self,
        trial: Any,
        ev: Evaluation,
        problem: SearchProblem,
        *,
        reused_from: int | None = None,
        locked: bool = False,
    ) -> None:
        with nullcontext() if locked else self._lock():
            trial.set_user_attr(EVAL, encode_evaluation(ev))
            if reused_from is not None:
                trial.set_user_attr(REUSED_FROM, reused_from)
            trial.set_constraint("macs_over_budget", float(ev.macs - problem.budget))
            self._study.tell(trial, list(ev.objectives))

    def summary(self) -> dict[str, Any]:
        return {"shared_study": self.study_summary or None}

    def abandon(self) -> None:
        """Interrupted: fail this worker's running trials, so others score them instead."""
        from optuna.trial import TrialState

        try:
            with self._lock():
                for t in self._trials(TrialState.RUNNING):
                    if t.user_attrs.get(WORKER) == self.worker:
                        self._study.tell(t.number, state=TrialState.FAIL)
        except Exception:  # the storage itself may be what failed: the first error matters
            pass

    def gather(self, problem: SearchProblem) -> None:
        """The history becomes every finished trial of a stored study (all workers, earlier
        runs), each from its stored evaluation; ``study_summary`` says who scored what."""
        from optuna.trial import TrialState

        if self._study is None or self.storage is None:
            return
        with self._lock():
            trials = self._trials(TrialState.COMPLETE)
            workers = int(self._study.user_attrs.get(WORKERS, 0))
        history, scored = [], {}
        for t in trials:
            arch = problem.decode(self._genome(t, problem))
            if EVAL in t.user_attrs:
                problem.remember(decode_evaluation(t.user_attrs[EVAL], arch, generation=0))
            if arch in problem.cache:
                history.append(
                    replace(problem.cache[arch], generation=t.number // self._population)
                )
            if REUSED_FROM not in t.user_attrs and EVALUATED_BY in t.user_attrs:
                by = t.user_attrs[EVALUATED_BY]
                scored[by] = scored.get(by, 0) + 1
        problem.history = history
        self.study_summary = {
            "study": self.study_name,
            "trials": len(trials),
            "scored": sum(scored.values()),
            "reused": sum(REUSED_FROM in t.user_attrs for t in trials),
            "workers_joined": workers,
            "scored_by_worker": scored,
        }

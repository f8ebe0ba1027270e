"""Several `neas evolve` workers on one optuna study: no architecture scored twice, one total
budget, and the front of the whole study in pareto.csv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neas.config import SearchOptions
from neas.errors import ConfigError
from neas.evolution import create_strategy, propose
from neas.evolution._optuna import make_storage
from neas.evolution._study import (
    ARCH,
    EVAL,
    EVALUATED_BY,
    REUSED_FROM,
    WORKER,
    WORKERS,
    lock_path,
    worker_id,
)
from neas.evolution.problem import front_mask
from neas.pipeline import evolve, train
from neas.run import writable_dir
from tests.conftest import make_problem, tiny_run

POPULATION, EVALUATIONS = 4, 12


def _study(storage: str):
    import optuna

    return optuna.load_study(study_name="neas", storage=make_storage(storage))


def _complete(storage: str) -> list:
    from optuna.trial import TrialState

    return _study(storage).get_trials(states=(TrialState.COMPLETE,))


def test_lock_files_sit_next_to_the_storage(tmp_path) -> None:
    assert lock_path(str(tmp_path / "s.log"), "neas") == tmp_path / "s.log.neas-lock"
    assert lock_path(f"sqlite:///{tmp_path}/s.db", "neas") == tmp_path / "s.db.neas-lock"
    remote = lock_path("postgresql://u@db.example/neas", "neas")
    assert remote != lock_path("postgresql://u@db.example/neas", "other")  # per study, local


def test_a_storage_whose_lock_cannot_be_made_is_a_config_error(parts, tmp_path) -> None:
    problem = make_problem(parts, budget=10**12)
    strategy = create_strategy("optuna", storage=str(tmp_path / "missing" / "study.log"))
    with pytest.raises(ConfigError, match="lock file"):
        propose(strategy, problem, evaluations=4, population=4, seed=0)


def test_a_duplicate_reuses_the_finished_trial(parts, tmp_path) -> None:
    journal = str(tmp_path / "study.log")
    first = make_problem(parts, budget=10**12)
    propose(create_strategy("optuna", storage=journal), first, evaluations=8, population=4, seed=0)
    study = _study(journal)
    study.enqueue_trial(study.trials[0].params)  # the next proposal repeats trial 0
    calls: list = []
    second = make_problem(parts, budget=10**12, calls=calls)
    strategy = create_strategy("optuna", storage=journal)
    propose(strategy, second, evaluations=12, population=4, seed=0)
    trials = _study(journal).trials
    assert trials[8].user_attrs[REUSED_FROM] == 0 and EVALUATED_BY not in trials[8].user_attrs
    assert trials[8].values == trials[0].values
    assert not set(calls) & {e.arch for e in first.history}  # nothing of the study rescored
    strategy.gather(second)  # the history in trial order
    assert len(second.history) == 12 and second.history[8].arch == first.history[0].arch
    assert strategy.study_summary["reused"] >= 1 and strategy.study_summary["trials"] == 12


def test_a_dead_workers_claim_is_taken_over(parts, tmp_path) -> None:
    journal = str(tmp_path / "study.log")
    first = make_problem(parts, budget=10**12)
    propose(create_strategy("optuna", storage=journal), first, evaluations=4, population=4, seed=0)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    genome = first.sample_feasible(1, np.random.default_rng(99))[0]
    arch = first.decode(genome)
    assert arch not in first.cache
    params = {f"g{i}": int(v) for i, v in enumerate(genome)}
    study = _study(journal)
    study.enqueue_trial(params)
    claimed = study.ask()  # a claim that a worker of this host left running when it died
    for i, (lo, hi) in enumerate(zip(first.xl, first.xu)):
        claimed.suggest_int(f"g{i}", int(lo), int(hi))
    claimed.set_user_attr(ARCH, arch.to_json(first.space))
    claimed.set_user_attr(EVALUATED_BY, f"{worker_id().rpartition(':')[0]}:{gone}")
    study.enqueue_trial(params)  # the next proposal is that architecture again
    calls: list = []
    second = make_problem(parts, budget=10**12, calls=calls)
    propose(create_strategy("optuna", storage=journal), second, evaluations=9, population=4, seed=0)
    trials = _study(journal).trials
    assert trials[claimed.number].state.name == "FAIL"
    assert trials[claimed.number + 1].user_attrs[EVALUATED_BY] == worker_id()
    assert calls.count(arch) == 1
    assert sum(t.state.name == "COMPLETE" for t in trials) == 9


def test_workers_probing_one_run_folder_leave_each_others_files(tmp_path) -> None:
    """Two ``neas evolve`` workers prove the run folder writable at the same moment: one's
    probe must not remove the other's (a shared probe name failed a worker with ENOENT)."""
    other = tmp_path / ".write-test"  # the name the probe once had, held by another process
    other.write_bytes(b"")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: writable_dir(tmp_path), range(400)))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".write-test"]


def _worker(run, storage: str, log) -> subprocess.Popen:
    args = [
        sys.executable, "-c", "from neas.cli import main; main()", "evolve", str(run),
        "--strategy", "optuna", "--storage", storage,
        "--population", str(POPULATION), "--evaluations", str(EVALUATIONS),
        "--no-latency", "--threads", "1",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist") / "run"
    train(out=out, config=tiny_run(epochs=1, max_train=200), show_progress=False)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_two_workers_share_one_study(small_run, tmp_path, kind: str) -> None:
    run = Path(shutil.copytree(small_run, tmp_path / "run"))
    storage = str(tmp_path / "study.log") if kind == "journal" else f"sqlite:///{tmp_path}/s.db"
    with open(tmp_path / "worker0.txt", "w") as log0, open(tmp_path / "worker1.txt", "w") as log1:
        workers = [_worker(run, storage, log) for log in (log0, log1)]
        codes = [w.wait(timeout=900) for w in workers]
    output = "\n".join((tmp_path / f"worker{i}.txt").read_text()[-2000:] for i in range(2))
    assert codes == [0, 0], output

    trials = _complete(storage)
    assert len(_study(storage).trials) == EVALUATIONS == len(trials)  # one total budget
    assert all(EVAL in t.user_attrs and WORKER in t.user_attrs for t in trials)
    scored = [t.user_attrs[ARCH] for t in trials if REUSED_FROM not in t.user_attrs]
    assert all(EVALUATED_BY in t.user_attrs for t in trials if REUSED_FROM not in t.user_attrs)
    assert Counter(scored).most_common(1)[0][1] == 1  # no architecture scored twice
    assert _study(storage).user_attrs[WORKERS] == 2

    feasible = {t.user_attrs[ARCH]: t.values for t in trials if t.user_attrs[EVAL]["feasible"]}
    archs = list(feasible)
    mask = front_mask(np.array([feasible[a] for a in archs]))
    front = pd.read_csv(run / "pareto.csv")
    assert sorted(front["arch"]) == sorted(a for a, keep in zip(archs, mask) if keep)
    history = pd.read_csv(run / "search" / "history.csv")
    assert len(history) == EVALUATIONS  # the whole study, not one worker's part

    # a later evolve with no evaluations left rewrites the same front from the study alone
    (run / "pareto.csv").unlink()
    options = SearchOptions(
        strategy="optuna",
        storage=storage,
        population=POPULATION,
        evaluations=EVALUATIONS,
        latency=False,
    )
    again = evolve(run, options=options, resume=False, show_progress=False)
    assert len(_study(storage).trials) == EVALUATIONS
    assert sorted(again.front["arch"]) == sorted(front["arch"])
    assert again.summary["shared_study"]["scored"] == len(scored)

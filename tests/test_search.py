from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from neas.cli import app
from neas.config import SearchOptions
from neas.cost import CostTable
from neas.errors import ConfigError, UnknownStrategyError
from neas.evaluate import ensemble_metrics
from neas.evolution import check_search, create_strategy, list_strategies, propose
from neas.pipeline import evolve
from neas.run import open_trained
from neas.search_spaces import sample
from tests.conftest import make_problem


def test_problem_encoding_round_trips_with_searched_k(parts) -> None:
    problem = make_problem(parts, budget=10**12)
    rng = np.random.default_rng(0)
    for _ in range(20):
        genome = rng.integers(problem.xl, problem.xu + 1)
        arch = problem.decode(genome)
        assert arch.num_members == genome[0]
        assert problem.decode(problem.encode(arch)) == arch
    space = parts[0].space
    full = sample(space, rng)
    assert problem.decode(problem.encode(full)) == full


def test_ensemble_size_fixes_k_below_the_supernets(run_copy) -> None:
    """K = 3 supernet: a search with ensemble_size 1 proposes single networks only, and 2
    ensembles of exactly two members; a size above the supernet's K is one clear error."""
    for k in (1, 2):
        opts = SearchOptions(
            population=4, generations=2, latency=False, calibration_images=64, ensemble_size=k
        )
        result = evolve(run_copy, options=opts, resume=False, threads=1, show_progress=False)
        assert set(result.history["members"]) == {k} and set(result.front["members"]) == {k}
    with pytest.raises(ConfigError, match="more than the supernet's 3 members"):
        evolve(run_copy, options=SearchOptions(ensemble_size=4), show_progress=False)
    with pytest.raises(ConfigError, match="--search-members"):
        SearchOptions(ensemble_size=1, search_members=True)
    with pytest.raises(ConfigError, match="at least 1"):
        SearchOptions(ensemble_size=0)


@pytest.mark.parametrize("search_members", [True, False])
@pytest.mark.parametrize("strategy", list_strategies())
def test_strategies_respect_a_tight_budget(parts, strategy: str, search_members: bool) -> None:
    supernet = parts[0]
    costs = CostTable.from_space(supernet.space)
    biggest = max(
        costs.ensemble(sample(supernet.space, np.random.default_rng(i))).macs for i in range(50)
    )
    problem = make_problem(parts, budget=biggest // 10, search_members=search_members)
    propose(create_strategy(strategy), problem, evaluations=24, population=8, seed=0)
    if not search_members:
        assert {ev.arch.num_members for ev in problem.history} == {3}
    assert len(problem.history) == 24
    from neas.evolution import pareto_front

    front = pareto_front(problem.history)
    assert front and all(ev.macs <= biggest // 10 for ev in front)
    for ev in problem.history:  # every proposal decodes to an architecture of the space
        assert problem.decode(problem.encode(ev.arch)) == ev.arch
        assert ev.macs == costs.ensemble(ev.arch).macs


@pytest.mark.parametrize("search_members", [False, True])
def test_sampling_covers_every_split_the_budget_allows(parts, search_members) -> None:
    """Drawing split and ops together and rejecting over-budget genomes gave almost only late
    splits; proposals now spread over every split whose cheapest ensemble fits, and fit."""
    space = parts[0].space
    costs = CostTable.from_space(space)
    cheap = [
        min(costs.layers[i][op].macs for op in lay.candidates) for i, lay in enumerate(space.layers)
    ]

    def cheapest(split: int, k: int = space.num_members) -> int:  # trunk once, rest K times
        return costs.stem.macs + k * costs.head.macs + sum(cheap[:split]) + k * sum(cheap[split:])

    n = space.num_layers
    budget = (cheapest(0) + cheapest(n)) // 2  # K members at split 0 do not fit
    problem = make_problem(parts, budget=budget, search_members=search_members)
    allowed = [
        s for s in range(n + 1) if cheapest(s, 1 if search_members else space.num_members) <= budget
    ]
    assert allowed == list(range(n + 1)) if search_members else 0 < allowed[0] < n
    assert problem.feasible_splits().tolist() == allowed
    genomes = problem.sample_feasible(300, np.random.default_rng(0))
    splits = genomes[:, 1 if search_members else 0]
    assert all(problem.macs(g) <= budget for g in genomes)
    counts = np.bincount(splits, minlength=n + 1)
    assert set(np.flatnonzero(counts)) == set(allowed)  # every allowed split, none other
    assert counts[allowed].max() - counts[allowed].min() <= 1  # in rounds: as even as can be
    few = problem.sample_feasible(len(allowed), np.random.default_rng(1))  # one population
    assert sorted(few[:, 1 if search_members else 0].tolist()) == allowed  # each split once


def test_evaluation_cache_scores_each_architecture_once(parts) -> None:
    calls: list = []
    problem = make_problem(parts, budget=10**12, calls=calls)
    genomes = problem.sample_feasible(3, np.random.default_rng(1))
    problem.evaluate(genomes, generation=0)
    problem.evaluate(genomes[::-1], generation=1)
    assert len(calls) == 3 and len(problem.history) == 6
    # genomes that differ only in don't-care genes decode to the same, cached architecture
    g = genomes[0].copy()
    g[0] = 1
    g2 = g.copy()
    g2[-1] = (g2[-1] + 1) % (problem.xu[-1] + 1)  # a gene of the unused last member
    problem.evaluate(np.stack([g, g2]), generation=2)
    assert len(calls) == 4


def test_budget_below_cheapest_names_the_cheapest(parts) -> None:
    with pytest.raises(ConfigError, match=r"cheapest ensemble in this space \([\d,]+ MACs\)"):
        make_problem(parts, budget=1000)


def test_bad_options(parts) -> None:
    with pytest.raises(UnknownStrategyError, match="nsga2, optuna, random"):
        check_search(SearchOptions(strategy="cmaes"), parts[0].space)
    with pytest.raises(ConfigError, match="smaller than the population"):
        SearchOptions(evaluations=4, population=8)
    with pytest.raises(ValueError, match="budget"):
        SearchOptions(budget="lots")


def test_same_seed_same_front(run_copy) -> None:
    opts = SearchOptions(population=6, generations=3, calibration_images=128)
    a = evolve(run_copy, options=opts, resume=False, threads=1, show_progress=False)
    b = evolve(run_copy, options=opts, resume=False, threads=1, show_progress=False)
    cols = ["arch", "val_accuracy", "test_accuracy", "macs", "latency_ms"]
    pd.testing.assert_frame_equal(a.front[cols], b.front[cols])
    assert len(a.history) == 18 and (run_copy / "pareto.png").exists()
    assert list(a.progress["generation"]) == [0, 1, 2]
    assert (a.progress["hypervolume"].diff().dropna() >= -1e-12).all()  # never decreases


def test_optuna_study_resumes_from_journal(parts, tmp_path) -> None:
    journal = str(tmp_path / "study.log")
    first = make_problem(parts, budget=10**12)
    propose(create_strategy("optuna", storage=journal), first, evaluations=8, population=4, seed=0)
    second = make_problem(parts, budget=10**12)
    propose(
        create_strategy("optuna", storage=journal), second, evaluations=16, population=4, seed=0
    )
    assert len(second.history) == 16
    assert [e.arch for e in second.history[:8]] == [e.arch for e in first.history]


runner = CliRunner()
TINY_ARGS = [
    "--width-mult",
    "0.25",
    "--head-width",
    "32",
    "--feature-width",
    "32",
    "--max-train",
    "300",
    "--epochs",
    "1",
]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--space", "nope"], "from the data), mbconv, mlp"),
        (["--strategy", "nope"], "valid strategies: nsga2, optuna, random"),
        (["--budget", "lots"], "invalid budget"),
        (["--budget", "10k"], "cheapest ensemble"),
        (["--members", "0"], "--members"),
        (["--evaluations", "4", "--population", "8"], "smaller than the population"),
    ],
)
def test_search_cli_bad_input(tmp_path, args: list[str], message: str) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text("{}")
    (out / "keep.txt").write_text("precious")
    result = runner.invoke(app, ["search", "--out", str(out), "--resume", *TINY_ARGS, *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "run.json"]


def test_search_cli_end_to_end_and_resume(tmp_path) -> None:
    out = tmp_path / "run"
    args = [
        "search",
        "--out",
        str(out),
        "--budget",
        "600M",
        "--population",
        "4",
        "--generations",
        "2",
        *TINY_ARGS,
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Pareto front" in result.output
    front = pd.read_csv(out / "pareto.csv", dtype={"id": str})
    assert list(front.columns) == [
        "id",
        "arch",
        "members",
        "split",
        "val_accuracy",
        "test_accuracy",
        "val_nll",
        "macs",
        "params",
        "latency_ms",
        "disagreement",
        "final_val_accuracy",  # the default final stage trained the best ensemble: only it
        "final_test_accuracy",
    ]
    assert front["final_val_accuracy"].notna().sum() == 1
    assert (front["macs"] <= 600e6).all() and len(front) >= 1
    for name in (
        "search/history.csv",
        "search/hypervolume.csv",
        "pareto.png",
        "latency_table.json",
    ):
        assert (out / name).exists(), name
    for ens in front["id"]:
        assert (out / "ensembles" / ens / "manifest.json").exists()
    stamp = (out / "supernet.pt").stat().st_mtime_ns
    again = runner.invoke(app, [*args, "--resume", "--no-export"])
    assert again.exit_code == 0, again.output
    assert (out / "supernet.pt").stat().st_mtime_ns == stamp  # nothing trained again


def test_surrogate_prescreens_and_reports_rank_correlation(parts) -> None:
    from neas.evolution import NSGA2Search

    problem = make_problem(parts, budget=10**12)
    strategy = NSGA2Search(surrogate=True)
    propose(strategy, problem, evaluations=24, population=8, seed=0)
    assert len(problem.history) == 24
    assert len(strategy.surrogate_tau) == 2  # generations 1 and 2, each held out
    assert all(-1.0 <= t <= 1.0 for t in strategy.surrogate_tau)
    with pytest.raises(ConfigError, match="does not apply to random"):
        create_strategy("random", surrogate=True)


def test_error_ties_are_broken_by_nll_without_reordering_errors(parts) -> None:
    from neas.evolution import Evaluation, pareto_front

    arch = sample(parts[0].space, np.random.default_rng(0))
    step = 1 / 360

    def ev(err, nll, macs):
        return Evaluation(
            arch=arch,
            val_error=err,
            val_nll=nll,
            error_step=step,
            macs=macs,
            params=1,
            latency_ms=1.0,
            feasible=True,
            disagreement=0.0,
            member_accuracy=(),
            generation=0,
        )

    cheap, confident = ev(2 * step, 0.30, 100), ev(2 * step, 0.05, 200)
    better = ev(step, 5.0, 300)  # one image better, however bad its NLL
    assert cheap.ranked_error > confident.ranked_error > better.ranked_error
    archs = [sample(parts[0].space, np.random.default_rng(i)) for i in range(3)]
    evs = [
        e.__class__(**{**e.__dict__, "arch": a}) for e, a in zip([cheap, confident, better], archs)
    ]
    assert len(pareto_front(evs)) == 3


@pytest.mark.parametrize("strategy", ["nsga2", "random"])
def test_killed_search_replays_its_score_checkpoint(run_copy, monkeypatch, strategy) -> None:
    """A search that lost everything but the scores of generation 0 (as a kill leaves it)
    scores only the rest again and writes what an uninterrupted search writes."""
    import json

    import neas.evolution.stage as stage

    opts = SearchOptions(
        strategy=strategy, population=4, generations=3, latency=False, calibration_images=128
    )
    full = evolve(run_copy, options=opts, resume=False, threads=1, show_progress=False)
    search = run_copy / "search"
    scores = json.loads((search / "scores.json").read_text())
    first = set(full.history.loc[full.history["generation"] == 0, "arch"])
    scores["scores"] = {k: v for k, v in scores["scores"].items() if k in first}
    (search / "scores.json").write_text(json.dumps(scores))
    (search / "summary.json").unlink()  # written last: its absence is a search not finished
    calls = []
    real = stage.evaluate_arch
    monkeypatch.setattr(stage, "evaluate_arch", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = evolve(run_copy, options=opts, resume=True, threads=1, show_progress=False)
    pd.testing.assert_frame_equal(again.history, full.history)
    pd.testing.assert_frame_equal(again.front, full.front)
    pd.testing.assert_frame_equal(again.progress, full.progress)
    assert again.summary["scores_reused"] == len(scores["scores"]) > 0
    # scoring only: the front's test accuracy puts back the statistics of its scoring, or
    # recalibrates (``calibrate_ensemble``) for the architectures scored before the kill; the
    # fronts above are equal either way
    assert len(calls) == full.summary["unique_evaluations"] - len(first)
    assert (run_copy / "pareto.csv").read_text() == full.front.to_csv(index=False)


def test_score_checkpoint_of_another_supernet_is_discarded(run_copy) -> None:
    import json

    opts = SearchOptions(population=4, generations=1, latency=False, calibration_images=128)
    evolve(run_copy, options=opts, resume=False, show_progress=False)
    path = run_copy / "search" / "scores.json"
    scores = json.loads(path.read_text())
    fresh = evolve(run_copy, options=opts, resume=False, show_progress=False)
    assert fresh.summary["scores_reused"] == 0  # --fresh reads nothing
    (run_copy / "search" / "summary.json").unlink()
    path.write_text(json.dumps({**scores, "fingerprint": "another supernet"}))
    again = evolve(run_copy, options=opts, resume=True, threads=1, show_progress=False)
    assert again.summary["scores_reused"] == 0
    assert "another supernet" in again.summary["scores_discarded"]
    assert json.loads(path.read_text())["fingerprint"] == scores["fingerprint"]  # replaced
    pd.testing.assert_frame_equal(again.front, fresh.front)
    path.write_text("{broken")
    (run_copy / "search" / "summary.json").unlink()
    broken = evolve(run_copy, options=opts, resume=True, show_progress=False)
    assert broken.summary["scores_discarded"].startswith("unreadable")


def test_export_takes_the_searchs_front_ensembles_as_it_would_compute_them(
    run_copy, monkeypatch
) -> None:
    """The search hands each front ensemble (static network, val and test logits) to the
    export, which then recomputes nothing; the exports equal those it computes alone."""
    import torch

    import neas.deploy.export as export
    from neas.deploy import export_run, load_ensemble

    opts = SearchOptions(population=4, generations=1, latency=False)
    result = evolve(run_copy, options=opts, resume=False, threads=1, show_progress=False)
    assert set(result.calibrated) == set(result.front["arch"])
    y_test = open_trained(run_copy).dataset.y_test
    for _, row in result.front.iterrows():
        logits = result.calibrated[row["arch"]].logits["test"]
        assert row["test_accuracy"] == ensemble_metrics(logits, y_test).accuracy

    calls = []
    compute = export.calibrate_ensemble
    monkeypatch.setattr(
        export, "calibrate_ensemble", lambda *a, **k: calls.append(1) or compute(*a, **k)
    )

    def exported(**kw):
        # one process: the calls counted are this one's (``tests/test_workers.py`` checks
        # that workers export the same)
        folders = export_run(run_copy, formats=["torch"], show_progress=False, workers=1, **kw)
        manifests = [json.loads((f / "manifest.json").read_text()) for f in folders]
        weights = [load_ensemble(f / "model.pt").net.state_dict() for f in folders]
        return manifests, weights

    reused = exported(calibrated=result.calibrated)
    assert calls == []  # nothing recalibrated
    alone = exported()
    assert len(calls) == len(result.front)
    for a, b in zip(reused[0], alone[0]):
        assert a["accuracy"] == b["accuracy"] and a["cascade"] == b["cascade"]
    for a, b in zip(reused[1], alone[1]):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from neas.checkpoint import load_checkpoint, supernet_from_checkpoint
from neas.config import DataOptions, RunConfig, ShrinkConfig, SpaceOptions, TrainConfig
from neas.cost import CostTable
from neas.evaluate import calibration_images, evaluate_arch
from neas.evolution import SearchProblem
from neas.evolution.stage import latency_table_for
from neas.pipeline import train
from neas.run import open_trained
from neas.search_spaces import SearchSpace, create_space, sample

torch.set_num_threads(1)  # tiny nets: one thread is as fast, and robust to a busy machine


def tiny_space(image_size: int = 8, *, members: int = 2, in_channels: int = 1) -> SearchSpace:
    """A narrow mbconv space that trains in seconds on CPU."""
    return create_space(
        "mbconv",
        image_size=image_size,
        in_channels=in_channels,
        num_classes=10,
        num_members=members,
        width_mult=0.25,
        head_width=32,
        feature_width=32,
    )


@pytest.fixture
def space() -> SearchSpace:
    return tiny_space()


#: The tiny space's overrides as ``SpaceOptions`` (for pipeline-level tests).
TINY = SpaceOptions(width_mult=0.25, head_width=32, feature_width=32)
NO_SHRINK = ShrinkConfig(at=())


def tiny_run(
    *,
    epochs: int = 1,
    max_train: int | None = 300,
    members: int | None = None,
    batch_size: int = 64,
    summary_samples: int = 1,
    shrink: ShrinkConfig = NO_SHRINK,
    weights: str = "entangled",
    seed: int = 0,
) -> RunConfig:
    """A run configuration that trains in seconds: tiny space, capped data, no shrinking."""
    return RunConfig(
        data=DataOptions(max_train=max_train),
        space=SpaceOptions(width_mult=0.25, head_width=32, feature_width=32, members=members),
        train=TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            summary_samples=summary_samples,
            weights=weights,
        ),
        shrink=shrink,
    ).with_seed(seed)


def write_pareto(run: Path, n: int = 3) -> None:
    """A pareto.csv in the search stage's format, from sampled architectures."""
    supernet = supernet_from_checkpoint(load_checkpoint(run / "supernet.pt"), run / "supernet.pt")
    space, table = supernet.space, CostTable.from_space(supernet.space)
    rng = np.random.default_rng(3)
    rows = []
    for i in range(n):
        arch = sample(space, rng)
        cost = table.ensemble(arch)
        rows.append(
            {
                "id": f"e{i:03d}",
                "arch": arch.to_json(space),
                "members": arch.num_members,
                "split": arch.split,
                "val_accuracy": 0.5 + 0.1 * i,
                "test_accuracy": 0.5,
                "macs": cost.macs,
                "params": cost.params,
                "latency_ms": 1.0,
                "disagreement": 0.2,
            }
        )
    pd.DataFrame(rows).to_csv(run / "pareto.csv", index=False)


def trained_tiny_run(root: Path, *, pareto: int = 0, export: str | None = None) -> Path:
    """``root/run``: a tiny trained run (``tiny_run``), with a ``pareto`` -row pareto.csv of
    sampled architectures and ensemble ``export`` exported (model.pt only) if asked."""
    from neas.deploy import export_run
    from neas.pipeline import train

    run = train(out=root / "run", config=tiny_run(summary_samples=0), show_progress=False).path
    if pareto:
        write_pareto(run, n=pareto)
    if export is not None:
        export_run(run, select=export, formats=["torch"], cascade=False, show_progress=False)
    return run


@pytest.fixture(scope="session")
def hostile_run(tmp_path_factory) -> Path:
    """A tiny trained run with pareto.csv and ensemble e000 exported (model.pt only), which the
    hostile-input tables copy and damage (``tests/hostile.py``)."""
    return trained_tiny_run(tmp_path_factory.mktemp("hostile"), pareto=2, export="e000")


# --- a trained run the search tests score on (test_search, test_distributed) ----------------


def _listing(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny trained run with its latency table, read-only: a test that searches or exports
    takes ``run_copy``; one that writes here fails at the module's end (no test may depend on
    what another left in it)."""
    out = tmp_path_factory.mktemp("search") / "run"
    train(out=out, config=tiny_run(epochs=2, members=3), show_progress=False)
    supernet = open_trained(out).supernet
    latency_table_for(out, supernet, device=torch.device("cpu"), batch=1, show_progress=False)
    before = _listing(out)
    yield out
    assert _listing(out) == before, "a test wrote into the shared trained run; use run_copy"


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    """This test's own copy of ``trained_run``, to search and export in."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


@pytest.fixture(scope="module")
def parts(trained_run):
    run = open_trained(trained_run)
    supernet, dataset = run.supernet, run.dataset
    table = latency_table_for(
        trained_run, supernet, device=torch.device("cpu"), batch=1, show_progress=False
    )
    return supernet, dataset, table


def make_problem(
    parts, *, budget: int, calls: list | None = None, search_members: bool = True
) -> SearchProblem:
    supernet, dataset, table = parts
    calib = calibration_images(dataset, n=128)
    x, y = torch.from_numpy(dataset.x_val), torch.from_numpy(dataset.y_val)

    def score(arch):
        if calls is not None:
            calls.append(arch)
        return evaluate_arch(supernet, arch, x_calib=calib, x=x, y=y)

    return SearchProblem(
        space=supernet.space,
        score=score,
        costs=CostTable.from_space(supernet.space),
        latency=table,
        budget=budget,
        search_members=search_members,
    )


@pytest.fixture
def held_out_says_class_0(monkeypatch):
    """Exports whose final stage refits hand back, as the early-stopped ensemble, one that
    answers class 0 for every row: whose scores an export reports is then plain (its val
    accuracy is the share of class 0 in val). Fails a test whose export does not refit."""
    import neas.deploy.export as export_module

    real = export_module.final_train

    def swapped(*args, **kwargs):
        done = real(*args, **kwargs)
        assert done.held_out is not None, "the final stage did not refit"
        with torch.no_grad():
            for branch in done.held_out.branches:
                for p in branch.parameters():
                    p.zero_()
                last = [m for m in branch.modules() if isinstance(m, torch.nn.Linear)][-1]
                last.bias[0] = 1.0
        return done

    monkeypatch.setattr(export_module, "final_train", swapped)

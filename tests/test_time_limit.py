"""``--time-limit``: the duration parser, the plan's split, and whole jobs on a fake clock.

No test here is timed: the jobs read a fake clock that moves a fixed amount at every reading,
so where a stage runs out of time depends on the code's checks, not on this machine's speed.
"""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from neas import pipeline
from neas.cli import app
from neas.config import (
    EXPORT_SCORINGS,
    FINAL_EPOCHS,
    TIME_REPORT_S,
    TIME_SHARES,
    FinalOptions,
    SearchOptions,
)
from neas.deploy.export import select_rows
from neas.errors import ConfigError
from neas.run import read_pareto
from neas.time_limit import (
    JobClock,
    parse_duration,
    plan_epochs,
    plan_evaluations,
    plan_final_epochs,
)
from tests.conftest import tiny_run

runner = CliRunner()
SHARE = dict(TIME_SHARES)


class FakeClock:
    """Moves ``step`` seconds at every reading; raises ``KeyboardInterrupt`` (a kill) at the
    first reading once ``kill_when()`` is true."""

    def __init__(self, step: float, kill_when=None) -> None:
        self.t, self.step, self.kill_when = 0.0, step, kill_when

    def __call__(self) -> float:
        if self.kill_when is not None and self.kill_when():
            raise KeyboardInterrupt
        self.t += self.step
        return self.t


@pytest.mark.parametrize(
    "text,seconds",
    [("30m", 1800), ("1h30m", 5400), ("900s", 900), ("900", 900), ("2.5h", 9000), ("1d", 86400),
     ("1h 5m 30s", 3930), (120, 120), (90.5, 90.5)],
)  # fmt: skip
def test_durations(text, seconds) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "10x", "1h30", "-5m", "10 min", "nan", "5s", "31d"])
def test_bad_durations_are_refused(text) -> None:
    with pytest.raises(ConfigError, match="--time-limit"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["10x", "5s", "forever"])
def test_bad_duration_is_one_line_and_exit_2(tmp_path, text) -> None:
    result = runner.invoke(app, ["search", "--out", str(tmp_path / "r"), "--time-limit", text])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --time-limit"), result.output
    assert not (tmp_path / "r").exists()  # refused before anything is written


def test_plan_divides_the_limit_and_reserves_the_final_stage() -> None:
    t = [0.0]
    clock = JobClock(1000.0, now=lambda: t[0])
    train = clock.begin("train")
    assert train == pytest.approx(1000 * SHARE["train"])
    # training takes every second it was given: search, export and final still get theirs
    t[0] = train
    left = 1000 - train
    search = clock.begin("search")
    assert search == pytest.approx(left * SHARE["search"] / (1 - SHARE["train"]))
    t[0] += search
    export = clock.begin("export")
    assert export == pytest.approx(1000 * SHARE["export"])  # reserved from the start
    t[0] += export
    assert clock.begin("final") == pytest.approx(1000 * SHARE["final"])  # the last: all left
    assert clock.remaining() == pytest.approx(1000 * SHARE["final"])


def test_a_stage_that_ends_early_leaves_its_time_to_the_later_ones() -> None:
    t = [0.0]
    clock = JobClock(1000.0, now=lambda: t[0])
    clock.begin("train")
    t[0] = 100.0  # training needed 100 of its 600 s
    clock.end("train")
    later = 1 - SHARE["train"]
    assert clock.begin("search") == pytest.approx(900 * SHARE["search"] / later)
    assert clock.record["stages"]["train"]["seconds"] == pytest.approx(100.0)
    assert not clock.passed("search")
    t[0] = 100.0 + 900 * SHARE["search"] / later
    assert clock.passed("search")


def test_plans_turn_seconds_into_work() -> None:
    assert plan_epochs(100.0, epoch_s=10.0, fixed_s=20.0) == 8
    assert plan_epochs(1.0, epoch_s=10.0) == 1  # at least one epoch
    assert plan_evaluations(100.0, eval_s=0.5, reserve=16) == 184
    assert plan_final_epochs(100.0, epoch_s=30.0) == 5  # one more: the clock ends the last
    assert plan_final_epochs(20.0, epoch_s=30.0) == 2  # a part of one, annealed by the clock
    assert plan_final_epochs(100.0, epoch_s=30.0, cap=3) == 3  # the user's epochs cap it
    assert plan_final_epochs(10.0, epoch_s=30.0) == 0  # under TIME_FINAL_MIN_EPOCHS: none


def _record(run) -> dict:
    return json.loads((run / "time_limit.json").read_text())


def _job(out, clock, *, resume=False, limit="10m"):
    return pipeline.search(
        out=out,
        config=tiny_run(max_train=200, batch_size=32),
        options=SearchOptions(budget="600M", population=4, generations=2, latency=False),
        final=FinalOptions(epochs=0),
        device="cpu",
        threads=1,
        show_progress=False,
        plots=False,
        resume=resume,
        time_limit=limit,
        clock=clock,
    )


def test_a_run_out_of_time_mid_training_stops_cleanly_and_still_exports(tmp_path) -> None:
    # each reading of the clock is 40 s: the plan (from real, fast probes) asks for far more
    # epochs than the 360 s training gets on this clock, so training stops at a step, closes
    # that epoch (checkpoint, summary) and the job goes on
    out = tmp_path / "run"
    result = _job(out, FakeClock(step=40.0))
    record = _record(out)
    train = record["stages"]["train"]
    assert train["stopped_early"] is True
    assert 1 <= train["epochs"] < train["planned"]["epochs"]
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["epochs"] == train["planned"]["epochs"]  # the plan, not the default
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["epochs"] == train["epochs"] and summary["stopped_by_time_limit"] is True
    # the search and final stages ran on what was left, and the best ensemble was exported
    assert {"search", "final"} <= set(record["stages"])
    best = str(select_rows(read_pareto(out), "best")["id"].iloc[0])
    assert (out / "ensembles" / best / "manifest.json").is_file()
    assert result.exported and result.exported[0].name == best
    assert record["spent_s"] > 0 and record["limit_s"] == 600.0
    from neas.report import write_report  # the report shows the plan against the seconds

    page = write_report(out).read_text()
    assert "<h2>Time limit</h2>" in page and "Limit 10 min 0 s" in page
    assert f"{train['planned']['epochs']} epochs" in page and f"{train['epochs']} epochs" in page


def test_the_front_is_exported_first_and_the_final_stage_takes_the_rest(tmp_path) -> None:
    out = tmp_path / "run"
    # 10 s a reading: a search of a dozen proposals, a front of three
    result = _job(out, FakeClock(step=10.0), limit="20m")
    record = _record(out)
    stages = record["stages"]
    assert list(stages)[-2:] == ["export", "final"]  # in the order they ran
    export, final = stages["export"], stages["final"]
    assert len(read_pareto(out)) >= 2 and export["exported"] >= 1
    assert export["start_s"] + export["seconds"] <= final["start_s"]
    # the final stage, the last: every second then left but the report's
    left = 1200.0 - final["start_s"]
    assert final["allowance_s"] == pytest.approx(left - TIME_REPORT_S)
    # its training's window: up to the deadline less the export of the trained ensemble,
    # and the window, not the count, ended training (the real probe's epoch is far shorter
    # than this clock's 40 s a reading, so the plan's epochs are many more than it trained)
    plan, export_s = final["planned"], EXPORT_SCORINGS * record["probe"]["eval_s"]
    assert plan["until_s"] == pytest.approx(final["deadline_s"] - export_s)
    assert plan["from_s"] >= final["start_s"] and plan["epochs"] >= 1
    best = str(select_rows(read_pareto(out), "best")["id"].iloc[0])
    trained = json.loads((out / "ensembles" / best / "manifest.json").read_text())["final"]
    assert 1 <= trained["epochs_trained"] < plan["epochs"]
    # the best first among the folders, then the rest as exported
    assert [f.name for f in result.exported] == [best, *export["ensembles"]]


def test_an_export_stage_out_of_time_leaves_the_rest_unexported(tmp_path) -> None:
    # 20 s a reading: the export stage's allowance holds no export at the clock's pace; the
    # final stage still trains and exports the best
    out = tmp_path / "run"
    result = _job(out, FakeClock(step=20.0), limit="20m")
    stages = _record(out)["stages"]
    best = str(select_rows(read_pareto(out), "best")["id"].iloc[0])
    assert [f.name for f in result.exported] == [best, *stages["export"]["ensembles"]]
    assert stages["export"]["exported"] < len(read_pareto(out)) - 1
    assert stages["final"]["ensemble"] == best


def test_under_a_limit_the_final_epochs_are_the_windows_unless_given(tmp_path) -> None:
    # the main job's default count (FINAL_EPOCHS) is not a cap under a clock: the window's
    # epochs at the probe's estimate are planned; --final-epochs N given still caps
    plans = {}
    for given in (None, 2):
        out = tmp_path / f"run-{given}"
        pipeline.search(
            out=out,
            config=tiny_run(max_train=200, batch_size=32),
            options=SearchOptions(budget="600M", population=4, generations=2, latency=False),
            final=FinalOptions(epochs=given),
            device="cpu",
            threads=1,
            show_progress=False,
            plots=False,
            time_limit="20m",
            clock=FakeClock(step=40.0),
        )
        plans[given] = _record(out)["stages"]["final"]["planned"]["epochs"]
    assert plans[None] > FINAL_EPOCHS and plans[2] == 2


def test_a_killed_run_resumed_under_the_limit_counts_the_time_spent(tmp_path) -> None:
    out = tmp_path / "run"
    # 4 s a reading (one per training step here); killed once the first checkpoint is written
    with pytest.raises(KeyboardInterrupt):
        _job(out, FakeClock(step=4.0, kill_when=(out / "supernet.pt").exists))
    before = _record(out)
    assert "seconds" not in before["stages"]["train"]  # killed inside training
    spent, config = before["spent_s"], (out / "config.json").read_text()

    resumed_clock = FakeClock(step=4.0)
    _job(out, resumed_clock, resume=True)
    after = _record(out)
    # the resumed stage kept its start, deadline and plan; the time the killed run spent counts
    train = after["stages"]["train"]
    for key in ("start_s", "deadline_s", "planned"):
        assert train[key] == before["stages"]["train"][key]
    assert train["seconds"] >= spent - train["start_s"]
    assert after["spent_s"] == pytest.approx(spent + resumed_clock.t - resumed_clock.step)
    assert (out / "config.json").read_text() == config  # the planned epochs, not re-planned
    assert {"search", "final"} <= set(after["stages"])


def test_a_run_killed_in_the_final_stage_keeps_its_export_stage(tmp_path) -> None:
    out = tmp_path / "run"

    def in_final() -> bool:
        path = out / "time_limit.json"
        return path.is_file() and "final" in json.loads(path.read_text())["stages"]

    with pytest.raises(KeyboardInterrupt):
        _job(out, FakeClock(step=10.0, kill_when=in_final), limit="20m")
    before = _record(out)["stages"]
    assert "seconds" in before["export"] and "seconds" not in before["final"]
    assert before["export"]["ensembles"]  # one exported before the kill
    result = _job(out, FakeClock(step=10.0), resume=True, limit="20m")
    after = _record(out)["stages"]
    assert after["export"] == before["export"]  # not begun again: its exports are the job's
    best = str(select_rows(read_pareto(out), "best")["id"].iloc[0])
    assert [f.name for f in result.exported] == [best, *before["export"]["ensembles"]]
    assert after["final"]["deadline_s"] == before["final"]["deadline_s"]
    assert "seconds" in after["final"]


def test_a_job_too_slow_for_final_training_exports_the_best_first_untrained(
    tmp_path, monkeypatch
) -> None:
    import neas.stages.train as train_stage

    real = train_stage.probe_seconds

    def slow_probe(*args, **kwargs):  # a step as slow as no final epoch fits the limit
        return {**real(*args, **kwargs), "step_s": 200.0}

    monkeypatch.setattr(train_stage, "probe_seconds", slow_probe)
    out = tmp_path / "run"
    result = _job(out, FakeClock(step=10.0), limit="20m")
    stages = _record(out)["stages"]
    assert "skipped" in stages["final"] and "seconds" in stages["export"]
    best = str(select_rows(read_pareto(out), "best")["id"].iloc[0])
    assert [f.name for f in result.exported] == [best, *stages["export"]["ensembles"]]
    manifest = json.loads((out / "ensembles" / best / "manifest.json").read_text())
    assert not (manifest.get("final") or {}).get("epochs_trained")


def test_training_stops_inside_an_epoch_when_time_is_up() -> None:
    import torch

    from neas.config import TrainConfig
    from neas.training.loop import fit

    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    cfg = TrainConfig(epochs=5, batch_size=8, augment=False, channels_last=False)
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) >= 3  # the third reading, inside the first epoch's 8 steps

    def loss_fn(m, xb, yb, epoch, step):
        return torch.nn.functional.cross_entropy(m(xb), yb), 1

    ends = []

    def on_end(model, opt, state):
        ends.append(state.stop)
        return model, opt

    model = torch.nn.Linear(4, 3)
    _, _, state = fit(model, x, y, config=cfg, loss_fn=loss_fn, show_progress=False,
                      stop_when=stop, on_epoch_end=on_end)  # fmt: skip
    assert state.stop and state.epoch == 1 and len(state.history) == 1
    assert ends == [True]  # the epoch's hook saw the stop (it checkpoints)


def test_training_under_a_window_anneals_by_the_clock_and_ends_with_it() -> None:
    # a window of 10 s on a clock that moves 1 s a step: 40 steps were planned (5 epochs of
    # 8), the clock ends training after 10, its learning rate annealed by then
    import torch

    from neas.config import TrainConfig
    from neas.training.loop import fit

    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    cfg = TrainConfig(epochs=5, batch_size=8, augment=False, channels_last=False, warmup_epochs=0)
    t, lrs = [0.0], []

    def loss_fn(m, xb, yb, epoch, step):
        t[0] += 1.0
        lrs.append(opt.param_groups[0]["lr"])
        return torch.nn.functional.cross_entropy(m(xb), yb), 1

    model = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.base_lr)
    _, _, state = fit(model, x, y, config=cfg, loss_fn=loss_fn, optimizer=opt,
                      show_progress=False, time_share=lambda: t[0] / 10.0)  # fmt: skip
    assert state.stop and state.epoch == 2 and len(lrs) == 10
    assert lrs[0] == pytest.approx(cfg.base_lr)  # the share at the first step: 0
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    # 0.9 of the window at the last step; by the count (10 of 40 steps) it would be 0.85 x
    assert lrs[-1] == pytest.approx(cfg.base_lr * 0.5 * (1 + math.cos(0.9 * math.pi)))


def test_a_one_epoch_training_warms_up_a_quarter_of_it_then_anneals() -> None:
    # a time limit plans one supernet epoch; with the default one-epoch warm-up the learning
    # rate rose the whole epoch and training ended at its peak
    import torch

    from neas.config import WARMUP_MAX_SHARE, TrainConfig
    from neas.training.loop import fit

    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    cfg = TrainConfig(epochs=1, batch_size=4, augment=False, channels_last=False)
    assert cfg.warmup_epochs == 1.0 and WARMUP_MAX_SHARE == 0.25
    lrs: list[float] = []

    def loss_fn(m, xb, yb, epoch, step):
        lrs.append(opt.param_groups[0]["lr"])
        return torch.nn.functional.cross_entropy(m(xb), yb), 1

    model = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.base_lr)
    fit(model, x, y, config=cfg, loss_fn=loss_fn, optimizer=opt, show_progress=False)
    assert len(lrs) == 16 and max(lrs) == pytest.approx(cfg.base_lr)
    # 4 warm-up steps (a quarter of 16) rise to the peak, where the cosine starts
    assert all(a < b for a, b in zip(lrs[:3], lrs[1:4]))
    assert lrs[3] == lrs[4] == pytest.approx(cfg.base_lr)
    assert all(a > b for a, b in zip(lrs[4:], lrs[5:])) and lrs[-1] < 0.02 * cfg.base_lr


def test_a_final_stage_that_cannot_buy_an_epoch_gives_its_share_to_training() -> None:
    t = [0.0]
    clock = JobClock(1000.0, now=lambda: t[0])
    clock.begin("train")
    assert clock.expected("final") == pytest.approx(1000 * SHARE["final"])
    t[0] = 10.0  # the probe ran
    running = 1 - SHARE["final"]
    assert clock.skip("final", because="too slow", running="train") == pytest.approx(
        1000 * SHARE["train"] / running
    )
    t[0] = 1000 * SHARE["train"] / running  # training used all of it
    assert clock.begin("search") == pytest.approx(
        (1000 - t[0]) * SHARE["search"] / (SHARE["search"] + SHARE["export"])
    )
    assert clock.skipped("final") and not clock.skipped("export")


def test_the_estimators_path_exports_the_chosen_ensemble_under_the_clock(tmp_path) -> None:
    import torch

    from neas.deploy import load_ensemble
    from neas.limited import finish_in_time

    out = tmp_path / "run"
    result = pipeline.search(
        out=out,
        config=tiny_run(max_train=200, batch_size=32),
        options=SearchOptions(budget="600M", population=4, generations=2, latency=False),
        device="cpu",
        threads=1,
        show_progress=False,
        plots=False,
        export=False,  # as NEASClassifier.fit: it exports only the ensemble it picks
        time_limit="10m",
        clock=FakeClock(step=40.0),
    )
    chosen = str(result.search.front["id"].iloc[-1])
    (folder,) = finish_in_time(
        result.run.trained(),
        result.clock,
        final=FinalOptions(),
        device=torch.device("cpu"),
        show_progress=False,
        resume=False,
        select=chosen,
        rest=False,
        formats=("torch",),
        cascade=False,
        calibrated=result.search.calibrated,
    )
    assert folder.name == chosen and load_ensemble(folder / "model.pt").num_members >= 1
    assert not (out / "ensembles").exists() or {p.name for p in (out / "ensembles").iterdir()} == {
        chosen
    }

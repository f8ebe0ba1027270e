"""``--time-limit``: a duration parser, the job's clock, and the rule that splits a limit among
the stages.

A limited job first times what its stages are made of (one supernet training step, one
ensemble scored), then plans: each stage, when it starts, gets its share (``TIME_SHARES``) of
the time left, divided by the shares of the stages still to run; the last, the final stage,
takes all that is left but the report's few seconds (``neas.limited.finish_in_time``).
Training turns its allowance into epochs, the search into proposals, the export into as many
of the front's other ensembles as fit, the final stage into a window of training for the
best ensemble (its learning rate annealed by the clock, so that an epoch slower than its
estimate cannot leave training unfinished or time unused) and its export. Every stage also
checks the clock at each clean
point (an epoch, a generation, an exported ensemble) and stops there once its allowance is
spent; the best found so far is always kept, exported and reported.

The plan and the seconds each stage took are written to ``time_limit.json`` in the run folder
at every check, with the time spent so far: a run killed and resumed counts what it had spent
(up to the last check) against the same limit.

>>> parse_duration("1h30m"), parse_duration("900s"), parse_duration("2.5m"), parse_duration(600)
(5400.0, 900.0, 150.0, 600.0)
>>> t = [0.0]  # a fake clock
>>> clock = JobClock(1000.0, now=lambda: t[0])
>>> clock.begin("train")  # the training stage's share of 1000 s
300.0
>>> t[0] = 400.0  # training overran: the search's share of the 600 s left
>>> round(clock.begin("search"), 1)
85.7
>>> t[0] = 480.0  # the export: its share of the 520 s left, over its own and the final's
>>> round(clock.begin("export"), 1)
69.3
>>> t[0] = 500.0  # the final stage: all that is left but the report's 5 s
>>> clock.begin("final", keep_s=5.0)
495.0
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neas.config import (
    MAX_EPOCHS,
    MAX_TIME_LIMIT,
    MIN_TIME_LIMIT,
    TIME_FINAL_MIN_EPOCHS,
    TIME_SHARES,
)
from neas.errors import ConfigError, RunDirError
from neas.layout import TIME_RECORD

log = logging.getLogger("neas")

STAGES: tuple[str, ...] = tuple(name for name, _ in TIME_SHARES)
_SHARE = dict(TIME_SHARES)
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_PART = re.compile(r"([0-9]*\.?[0-9]+)\s*([dhms])")
RECORD_FORMAT = 1
SAVE_EVERY_S = 1.0  # how often a clock check writes time_limit.json (seconds of job time)


def parse_duration(value: str | float | int) -> float:
    """Seconds in a duration: ``30m``, ``1h30m``, ``900s``, ``2.5h``, ``1d`` or plain seconds.

    >>> parse_duration("10 min")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    neas.errors.ConfigError: --time-limit: cannot read '10 min' as a duration; write e.g. ...
    """
    if isinstance(value, bool):
        raise ConfigError(f"--time-limit: cannot read {value!r} as a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            parts = _PART.findall(text)
            if not parts or re.sub(r"\s+", "", _PART.sub("", text)):
                raise ConfigError(
                    f"--time-limit: cannot read {value!r} as a duration; write e.g. 900s, 30m "
                    "or 1h30m"
                ) from None
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds < MIN_TIME_LIMIT:
        raise ConfigError(
            f"--time-limit must be at least {MIN_TIME_LIMIT:.0f}s (a job cannot train, search "
            f"and export in less), got {value!r}"
        )
    if seconds > MAX_TIME_LIMIT:
        raise ConfigError(
            f"--time-limit must be at most {MAX_TIME_LIMIT / 86400:.0f}d, got {value!r}"
        )
    return seconds


def clock_text(seconds: float) -> str:
    """``h:mm:ss`` or ``m:ss``.

    >>> clock_text(75.4), clock_text(3725)
    ('1:15', '1:02:05')
    """
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def plan_epochs(allowance_s: float, *, epoch_s: float, fixed_s: float = 0.0) -> int:
    """Epochs that fit ``allowance_s`` after ``fixed_s`` of other work (at least one).

    >>> plan_epochs(100.0, epoch_s=9.0, fixed_s=10.0), plan_epochs(5.0, epoch_s=9.0)
    (10, 1)
    """
    fit = math.floor(max(0.0, allowance_s - fixed_s) / max(epoch_s, 1e-9))
    return int(min(MAX_EPOCHS, max(1, fit)))


def plan_evaluations(allowance_s: float, *, eval_s: float, reserve: int = 0) -> int:
    """Ensembles the search can score in ``allowance_s`` when the front's test accuracy costs
    up to ``reserve`` more scorings (no more than the proposals themselves), at least two.

    >>> plan_evaluations(100, eval_s=1, reserve=16), plan_evaluations(15, eval_s=1, reserve=16)
    (84, 7)
    """
    fit = math.floor(allowance_s / max(eval_s, 1e-9))
    return int(min(10**6, max(2, fit - reserve, fit // 2)))


def plan_final_epochs(allowance_s: float, *, epoch_s: float, cap: int = 0) -> int:
    """Final-training epochs for ``allowance_s`` at an estimated ``epoch_s`` each: one more
    than fill it, so that the stage's clock, not the count, ends training either way (its
    learning rate annealed by that clock): training that runs slower than the estimate is cut
    inside the last epochs, and training that runs faster still has an epoch to spend the
    window on (the estimate, from two timed steps, was 1.55x the epochs' real seconds on
    Fashion-MNIST at 20 minutes, and 95 s of the limit went unused). 0 when not even
    ``TIME_FINAL_MIN_EPOCHS`` fit; ``cap`` > 0 is the most the user asked for.

    >>> plan_final_epochs(100.0, epoch_s=30.0), plan_final_epochs(100.0, epoch_s=30.0, cap=3)
    (5, 3)
    >>> plan_final_epochs(20.0, epoch_s=30.0), plan_final_epochs(10.0, epoch_s=30.0)
    (2, 0)
    """
    if allowance_s < TIME_FINAL_MIN_EPOCHS * epoch_s:
        return 0
    fit = min(math.ceil(allowance_s / max(epoch_s, 1e-9)) + 1, MAX_EPOCHS)
    return int(min(fit, cap) if cap > 0 else fit)


class JobClock:
    """A job's time against its limit: the seconds spent (with what an earlier, killed run
    spent), each stage's allowance and deadline, and their record (``time_limit.json`` once
    ``attach``-ed to a run folder). ``now`` is the clock it reads (tests pass a fake one)."""

    def __init__(
        self,
        limit_s: float,
        *,
        spent_s: float = 0.0,
        now: Callable[[], float] = time.monotonic,
        record: dict[str, Any] | None = None,
    ) -> None:
        self.limit_s, self._now, self._spent0 = float(limit_s), now, float(spent_s)
        self._t0 = now()
        self.record: dict[str, Any] = record or {"format": RECORD_FORMAT, "stages": {}}
        self.record["limit_s"] = self.limit_s
        self.path: Path | None = None
        self._saved_at = -math.inf

    @classmethod
    def for_run(
        cls,
        run_dir: str | Path,
        limit_s: float,
        *,
        resume: bool,
        now: Callable[[], float] = time.monotonic,
        started: float | None = None,
    ) -> JobClock:
        """The clock of a job in ``run_dir``: resumed, it goes on from the spent time and the
        plan the earlier run recorded (``limit_s`` may differ from that run's). ``started``:
        the reading of ``now`` at which this process's job began (default: now)."""
        path = Path(run_dir) / TIME_RECORD
        record = read_record(path) if resume and path.is_file() else None
        spent = float(record.get("spent_s", 0.0)) if record else 0.0
        if started is not None:
            spent += max(0.0, now() - started)
        return cls(limit_s, spent_s=spent, now=now, record=record)

    def attach(self, run_dir: str | Path) -> None:
        """Write the record into ``run_dir`` from now on (once the folder is the run's)."""
        self.path = Path(run_dir) / TIME_RECORD
        self.save()

    # -- time -------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self._spent0 + (self._now() - self._t0)

    def remaining(self) -> float:
        return max(0.0, self.limit_s - self.elapsed())

    # -- stages -----------------------------------------------------------------------------
    def stage(self, name: str) -> dict[str, Any]:
        return self.record["stages"].setdefault(name, {})

    def begin(self, name: str, *, keep_s: float | None = None) -> float:
        """Start stage ``name`` (or go on with it after a resume); its allowance in seconds
        (``keep_s``: all the time left but ``keep_s``, instead of its share)."""
        if name not in _SHARE:
            raise ValueError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
        st = self.stage(name)
        if "deadline_s" in st and "seconds" not in st:  # resumed inside this stage
            return float(st["allowance_s"])
        now = self.elapsed()
        st.clear()
        st["start_s"] = now
        allowance = self._allot(name, keep_s=keep_s)
        log.info(
            f"time limit {clock_text(self.limit_s)}: {clock_text(now)} spent, "
            f"{clock_text(self.limit_s - now)} left; {name} gets {clock_text(allowance)}"
        )
        return allowance

    def _allot(self, name: str, *, keep_s: float | None = None) -> float:
        """Stage ``name``'s allowance from its start: its share of the time then left, over
        the shares of the stages still to run (skipped ones not counted); with ``keep_s``,
        the time then left but ``keep_s``."""
        st = self.stage(name)
        later = [s for s in STAGES[STAGES.index(name) :] if not self.skipped(s)]
        left = max(0.0, self.limit_s - float(st["start_s"]))
        allowance = left * _SHARE[name] / sum(_SHARE[s] for s in later)
        if keep_s is not None:
            allowance = max(0.0, left - keep_s)
        st.update(allowance_s=allowance, deadline_s=float(st["start_s"]) + allowance)
        self.save()
        return allowance

    def skip(self, name: str, *, because: str, running: str) -> float:
        """Leave stage ``name`` out (``because`` says why): its share goes to the stages that
        run, and stage ``running`` (under way) gets its new, larger allowance (returned)."""
        self.record["stages"][name] = {"skipped": because}
        allowance = self._allot(running)
        log.info(f"time limit: no {name} stage ({because}); {running} gets {clock_text(allowance)}")
        return allowance

    def skipped(self, name: str) -> bool:
        return "skipped" in self.record["stages"].get(name, {})

    def expected(self, name: str) -> float:
        """Stage ``name``'s allowance if every stage before it took its own in full."""
        start = self.record["stages"].get(STAGES[0], {}).get("start_s", self.elapsed())
        running = [s for s in STAGES if not self.skipped(s)]
        return (self.limit_s - float(start)) * _SHARE[name] / sum(_SHARE[s] for s in running)

    def left(self, name: str) -> float:
        """Seconds left of stage ``name``'s allowance."""
        return max(0.0, float(self.stage(name)["deadline_s"]) - self.elapsed())

    def passed(self, name: str) -> bool:
        """Whether stage ``name``'s allowance is spent. The record is saved on the way at most
        once a ``SAVE_EVERY_S`` (training asks at every step of a short epoch), so a kill loses
        about that much of the time spent."""
        now = self.elapsed()
        if now - self._saved_at >= SAVE_EVERY_S:
            self.save()
        return now >= float(self.stage(name)["deadline_s"])

    def share(self, name: str, start_s: float, end_s: float) -> Callable[[], float]:
        """The share of the window ``start_s`` .. ``end_s`` (job seconds) spent, as a callable
        a training loop anneals by; it saves the record as ``passed(name)`` does."""

        def spent() -> float:
            self.passed(name)
            return (self.elapsed() - start_s) / max(1e-9, end_s - start_s)

        return spent

    def stopper(self, name: str) -> Callable[[], bool]:
        """``passed`` for one stage, as the stop test a training loop or search calls."""
        return lambda: self.passed(name)

    def plan(self, name: str, **planned: Any) -> None:
        """Record what stage ``name`` planned to do (epochs, proposals)."""
        self.stage(name).setdefault("planned", {}).update(planned)
        self.save()

    def planned(self, name: str, key: str) -> Any:
        return self.stage(name).get("planned", {}).get(key)

    def end(self, name: str, **facts: Any) -> None:
        """Close stage ``name``: its seconds (from its first start, across a resume) and
        ``facts`` (e.g. ``stopped_early``)."""
        st = self.stage(name)
        st.update(seconds=self.elapsed() - float(st.get("start_s", self.elapsed())), **facts)
        self.save()

    def ended(self, name: str) -> bool:
        return "seconds" in self.record["stages"].get(name, {})

    def save(self) -> None:
        self._saved_at = self.elapsed()
        self.record["spent_s"] = self._saved_at
        self.record["overrun_s"] = max(0.0, self.record["spent_s"] - self.limit_s)
        if self.path is not None:
            from neas.files import write_json

            write_json(self.path, self.record)


def read_record(path: Path) -> dict[str, Any]:
    """A ``time_limit.json`` as written by ``JobClock.save``, or one line why not."""
    import json

    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunDirError(
            f"{path}: not a readable time record ({exc}); remove it to resume"
        ) from None
    ok = (
        isinstance(record, dict)
        and record.get("format") == RECORD_FORMAT
        and isinstance(record.get("stages"), dict)
        and all(isinstance(v, dict) for v in record["stages"].values())
        and isinstance(record.get("spent_s", 0.0), (int, float))
        and math.isfinite(float(record.get("spent_s", 0.0)))
        and float(record.get("spent_s", 0.0)) >= 0
    )
    if not ok:
        raise RunDirError(f"{path}: not a neas time record; remove it to resume")
    return record


__all__ = [
    "STAGES",
    "JobClock",
    "clock_text",
    "parse_duration",
    "plan_epochs",
    "plan_evaluations",
    "plan_final_epochs",
    "read_record",
]

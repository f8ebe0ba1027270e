"""What neas workers sharing one optuna study agree on: a lock, and per-trial attributes.

Every trial a worker asks carries user attributes (the names below):

    neas_arch          the architecture's JSON; duplicates are found by it
    neas_worker        the worker that asked the trial (``host:pid``)
    neas_evaluated_by  set when that worker scores the architecture itself (its claim)
    neas_reused_from   the number of the trial whose evaluation it took instead
    neas_eval          the evaluation (objectives and metrics), so no one scores it again

Asking, the duplicate check and the claim happen under one exclusive lock (:func:`lock_path`),
so two workers never claim the same architecture.

>>> lock_path("runs/study.log", "neas").name
'study.log.neas-lock'
>>> lock_path("sqlite:////tmp/s.db", "neas").as_posix()
'/tmp/s.db.neas-lock'
"""

from __future__ import annotations

import hashlib
import math
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from neas.evolution.problem import Evaluation
from neas.search_spaces.arch import EnsembleArch

ARCH = "neas_arch"
WORKER = "neas_worker"
EVALUATED_BY = "neas_evaluated_by"
REUSED_FROM = "neas_reused_from"
EVAL = "neas_eval"
WORKERS = "neas_workers"  # study attribute: how many workers joined (each seeds its sampler)
LOCK_SUFFIX = ".neas-lock"  # optuna's journal backend takes "<file>.lock" itself


def lock_path(storage: str, study_name: str) -> Path:
    """The lock file of a storage: next to a journal file or a SQLite database; for any other
    RDB URL (PostgreSQL, MySQL) a file in the temp folder, which keeps apart only the workers
    on this host (there is no cross-host lock)."""
    if "://" not in storage:
        return Path(storage + LOCK_SUFFIX)
    try:
        from sqlalchemy.engine import make_url

        url = make_url(storage)
        database = url.database if url.get_backend_name() == "sqlite" else None
    except Exception:  # no sqlalchemy, or a malformed URL: optuna says so when it opens it
        database = None
    if database and database != ":memory:":
        return Path(database + LOCK_SUFFIX)
    key = hashlib.sha1(f"{storage}\n{study_name}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"neas-study-{key}{LOCK_SUFFIX}"


def worker_id() -> str:
    """This process as ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_dead(worker: str) -> bool:
    """True only for a worker of this host whose process is gone; a worker on another host is
    never known to be dead."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return False


def worker_seed(seed: int, index: int) -> int:
    """The sampler seed of the ``index``-th worker to join: ``seed`` for the first (a lone
    worker searches exactly as before), distinct streams for the others.

    >>> worker_seed(3, 0)
    3
    """
    if index == 0:
        return seed
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def encode_evaluation(ev: Evaluation) -> dict[str, Any]:
    """``ev`` as plain JSON (no NaN or infinity); the architecture is the trial's own."""
    return {
        "val_error": ev.val_error,
        "val_nll": _finite(ev.val_nll),
        "error_step": ev.error_step,
        "macs": int(ev.macs),
        "params": int(ev.params),
        "latency_ms": ev.latency_ms,
        "feasible": bool(ev.feasible),
        "disagreement": _finite(ev.disagreement),
        "member_accuracy": [float(a) for a in ev.member_accuracy],
    }


def decode_evaluation(data: dict[str, Any], arch: EnsembleArch, *, generation: int) -> Evaluation:
    """The inverse of :func:`encode_evaluation`."""
    nll, disagreement = data["val_nll"], data["disagreement"]
    return Evaluation(
        arch=arch,
        val_error=float(data["val_error"]),
        val_nll=float("inf") if nll is None else float(nll),
        error_step=float(data["error_step"]),
        macs=int(data["macs"]),
        params=int(data["params"]),
        latency_ms=float(data["latency_ms"]),
        feasible=bool(data["feasible"]),
        disagreement=float("nan") if disagreement is None else float(disagreement),
        member_accuracy=tuple(float(a) for a in data["member_accuracy"]),
        generation=generation,
    )

"""Work spread over forked worker processes: the CPU cores a job has, one process each.

Exporting an ensemble (ONNX tracing and checking, parity, ONNX Runtime timing, the cascade and
its plot) is Python-bound work on one thread: a second intra-op thread does nothing for it, a
second process halves it. Measured on the digits main job's front (19 ensembles, 2 vCPUs:
``export_run`` with ``workers=1`` and ``2`` alternating, twice each): 25.1 and 26.7 s in one
process, 13.3 and 13.7 s in two.
Scoring ensembles on the supernet (BN recalibration, validation logits) was tried the same way
and is not done here: on the same machine two processes scored 16 ensembles 1.2-1.3x faster
than one process at two threads, and the search stage took 28.2 s against 30.3 s (mean of 3,
inside the noise): scoring is memory-bound, a second process buys what a second thread does.

``Workers(fn, n)`` forks ``n`` processes that inherit everything the parent holds (the run,
the supernet, the data), so nothing large is pickled: only the items sent and the results
returned. With ``n <= 1`` or on a platform without ``fork``, ``fn`` runs in this process and
nothing is forked. Results come back in the order the items were given; an exception in a
worker is raised here, and a worker that dies (killed, out of memory) fails the work with
``BrokenProcessPool`` instead of leaving it waiting. Each worker runs torch on one thread.
Leaving the block ends the workers: normally once their work is done; on an exception (Ctrl-C,
a time limit, a failed item) at once, the work not yet returned dropped.

>>> with Workers(lambda x: x * x, 2) as pool:
...     pool.map([1, 2, 3])
[1, 4, 9]
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Generic, TypeVar

import torch

from neas.device import usable_cores

T = TypeVar("T")
R = TypeVar("R")

#: The function the forked workers call: set in the parent for the life of a ``Workers`` block
#: (a closure over the supernet need not be pickled: the workers inherit it).
_FN: Callable[[Any], Any] | None = None

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _call(item: Any) -> Any:
    assert _FN is not None, "a worker forked without its function"
    return _FN(item)


def _init_worker(parent: int) -> None:
    """One torch thread; Ctrl-C is the parent's to handle (it ends the workers, which then
    print nothing); on Linux the worker dies with its parent, so that a killed job leaves no
    worker writing into a run folder that a resumed job is writing."""
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def cpu_workers(threads: int | None, device: torch.device | str) -> int:
    """How many processes a job's CPU work may fork: its thread count (``None``: one per core
    this process may use); 1 on CUDA (a forked child cannot use it) or without ``fork``."""
    if torch.device(device).type != "cpu" or not can_fork():
        return 1
    return max(1, usable_cores() if threads is None else int(threads))


class Workers(Generic[T, R]):
    """``n`` forked processes computing ``fn(item)``; a context manager (see the module doc)."""

    def __init__(self, fn: Callable[[T], R], n: int) -> None:
        self.fn, self.n = fn, max(1, int(n))
        self._pool: ProcessPoolExecutor | None = None

    @property
    def forked(self) -> bool:
        return self._pool is not None

    def __enter__(self) -> Workers[T, R]:
        global _FN
        if self.n > 1 and can_fork():
            if _FN is not None:
                raise RuntimeError("Workers do not nest")
            _FN = self.fn  # held while the block runs: workers are forked as work arrives
            self._pool = ProcessPoolExecutor(
                self.n,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_init_worker,
                initargs=(os.getpid(),),
            )
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        global _FN
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            if kind is not None:  # nobody waits for the rest: end the workers now
                for process in list((pool._processes or {}).values()):
                    process.terminate()
            pool.shutdown(wait=True, cancel_futures=kind is not None)
        finally:
            _FN = None

    def submit(self, item: T) -> Callable[[], R]:
        """Start ``fn(item)`` in a worker (here, at once, without workers); returns a function
        that waits for its result."""
        if self._pool is None:
            result = self.fn(item)
            return lambda: result
        return self._pool.submit(_call, item).result

    def map(self, items: Iterable[T]) -> list[R]:
        """``fn`` of each item, in order (all started at once in the workers)."""
        waits = [self.submit(item) for item in items]
        return [wait() for wait in waits]

"""Device and CPU-thread resolution: the one place that turns a user's choice into torch's.

Threads are ``N`` (that many), ``"auto"`` (time a few training steps at 1, 2, 4, ... up to the
cores this process may use and keep the fastest: on a busy small machine one thread has run
3-4x faster than two) or ``None`` (torch's default). The choice is logged on the ``neas.device``
logger; the CLI shows it.

>>> resolve_device("cpu")
device(type='cpu')
>>> with torch_threads(1):
...     torch.get_num_threads()
1
>>> parse_threads("auto"), parse_threads("3"), thread_candidates(6)
('auto', 3, (1, 2, 4, 6))
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from neas.config import AUTO, MAX_THREADS, Threads, parse_threads
from neas.errors import ConfigError

__all__ = ["AUTO", "Threads", "parse_threads", "resolve_device", "resolve_threads", "torch_threads"]

log = logging.getLogger(__name__)


def resolve_device(name: str | torch.device | None) -> torch.device:
    """``None`` -> CUDA when present, else CPU; asking for CUDA without one is an error."""
    if isinstance(name, torch.device):
        return name
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ConfigError(f"unknown device {name!r}; valid: cpu, cuda, cuda:N")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but no CUDA device is available")
    return torch.device(name)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Set torch's intra-op thread count for the block (``None``: leave it), then restore it."""
    if n is None:
        yield
        return
    if n < 1 or n > MAX_THREADS:
        raise ConfigError(f"threads must be in 1..{MAX_THREADS}, got {n}")
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def thread_candidates(cores: int | None = None) -> tuple[int, ...]:
    """Thread counts ``auto`` tries: 1, 2, 4, ... below ``cores``, and ``cores`` itself."""
    cores = cores or usable_cores()
    out, k = {1, cores}, 2
    while k < cores:
        out.add(k)
        k *= 2
    return tuple(sorted(out))


def fastest_threads(
    step: Callable[[], None], candidates: tuple[int, ...], *, repeats: int = 3
) -> tuple[int, dict[int, float]]:
    """Time ``step`` (after one warm-up call) at each thread count; the fastest count and the
    median seconds per call of each. A count whose call takes over twice the best so far is
    not timed again. Ties go to fewer threads."""
    seconds: dict[int, float] = {}
    for n in candidates:
        best = min(seconds.values(), default=float("inf"))
        with torch_threads(n):
            step()
            times: list[float] = []
            while len(times) < repeats and not (times and times[-1] > 2 * best):
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
        seconds[n] = statistics.median(times)
    return min(seconds, key=lambda n: (seconds[n], n)), seconds


def resolve_threads(
    threads: Threads,
    *,
    device: torch.device,
    probe: Callable[[], Callable[[], None]],
) -> int | None:
    """The thread count a job runs with (``None``: torch's default).

    For ``"auto"`` on the CPU, ``probe()`` builds a step (a few of which are timed per
    candidate count) with torch's global RNG forked, so the job's results do not depend on
    the measurement. On CUDA, ``"auto"`` keeps torch's default.
    """
    threads = parse_threads(threads)
    if threads != AUTO:
        return threads  # type: ignore[return-value]
    if device.type != "cpu":
        return None
    with torch.random.fork_rng(devices=[]):
        chosen, seconds = fastest_threads(probe(), thread_candidates())
    timing = ", ".join(f"{n}: {s * 1000:.0f} ms" for n, s in seconds.items())
    log.info(f"threads: auto chose {chosen} (one training step at {timing})")
    return chosen

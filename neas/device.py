"""Device and CPU-thread resolution: the one place that turns a user's choice into torch's.

>>> resolve_device("cpu")
device(type='cpu')
>>> with torch_threads(1):
...     torch.get_num_threads()
1
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from neas.errors import ConfigError


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
    if n < 1:
        raise ConfigError(f"threads must be >= 1, got {n}")
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)

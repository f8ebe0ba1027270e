"""A per-(layer, op) latency lookup table, timed on the device the search runs on.

Predicted ensemble latency = stem + trunk layers + every member's layers and head, each the
median of repeated timings of that static block alone (after warm-up) at ``batch`` images.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from neas.errors import RunDirError
from neas.nn.builder import build_block, build_head, build_stem
from neas.progress import make_progress
from neas.run import read_json, write_json
from neas.search_spaces.arch import EnsembleArch
from neas.search_spaces.spec import SKIP, SearchSpace


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def time_module(module: nn.Module, x: torch.Tensor, *, warmup: int = 5, repeats: int = 20) -> float:
    """Median wall time of ``module(x)`` in milliseconds."""
    module.eval()
    for _ in range(warmup):
        module(x)
    _sync(x.device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        module(x)
        _sync(x.device)
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


@dataclass(frozen=True)
class LatencyTable:
    """Milliseconds per block; ``layers[i]`` maps op id (SKIP -> 0) to its latency."""

    device: str
    batch: int
    stem_ms: float
    head_ms: float
    layers: tuple[dict[int, float], ...]

    def member_ms(self, arch: EnsembleArch, m: int) -> float:
        return self.head_ms + sum(
            self.layers[arch.split + j][op] for j, op in enumerate(arch.members[m])
        )

    def trunk_ms(self, arch: EnsembleArch) -> float:
        return self.stem_ms + sum(self.layers[i][op] for i, op in enumerate(arch.shared))

    def predict(self, arch: EnsembleArch) -> float:
        """Predicted latency (ms) of the whole ensemble, trunk once."""
        return self.trunk_ms(arch) + sum(self.member_ms(arch, m) for m in range(arch.num_members))

    def to_dict(self) -> dict[str, object]:
        return {
            "device": self.device,
            "batch": self.batch,
            "stem_ms": self.stem_ms,
            "head_ms": self.head_ms,
            "layers": [{str(k): v for k, v in layer.items()} for layer in self.layers],
        }

    @classmethod
    def from_dict(cls, data: dict) -> LatencyTable:
        return cls(
            device=data["device"],
            batch=int(data["batch"]),
            stem_ms=float(data["stem_ms"]),
            head_ms=float(data["head_ms"]),
            layers=tuple({int(k): float(v) for k, v in lay.items()} for lay in data["layers"]),
        )

    @classmethod
    def unmeasured(cls, space: SearchSpace) -> LatencyTable:
        """A table of zeros: latency left out of the search (``SearchOptions.latency=False``)."""
        layers = tuple({SKIP: 0.0, **dict.fromkeys(lay.candidates, 0.0)} for lay in space.layers)
        return cls(device="none", batch=0, stem_ms=0.0, head_ms=0.0, layers=layers)

    def save(self, path: Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> LatencyTable:
        """The table stored at ``path``; a one-line ``RunDirError`` if it is damaged."""
        try:
            return cls.from_dict(read_json(path))
        except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
            raise RunDirError(
                f"{path} is damaged ({type(exc).__name__}); delete it and neas measures "
                "latency again"
            ) from None


def measure_latency_table(
    space: SearchSpace,
    *,
    device: torch.device | str = "cpu",
    batch: int = 1,
    warmup: int = 5,
    repeats: int = 20,
    show_progress: bool = True,
) -> LatencyTable:
    """Time the stem, one head and every (layer, op) of ``space`` as static blocks.

    >>> from neas.search_spaces import create_space
    >>> space = create_space("mbconv", image_size=8, in_channels=1, num_classes=10,
    ...                      width_mult=0.25, head_width=32, feature_width=32)
    >>> table = measure_latency_table(space, repeats=2, show_progress=False)
    >>> table.predict(__import__("neas").search_spaces.decode([20] + [0] * 40, space)) > 0
    True
    """
    device = torch.device(device)
    fmt = torch.contiguous_format if batch == 1 else torch.channels_last

    def feat(channels: int, size: int) -> torch.Tensor:
        return torch.randn(batch, channels, size, size, device=device).contiguous(memory_format=fmt)

    def timed(module: nn.Module, x: torch.Tensor) -> float:
        return time_module(module.to(device, memory_format=fmt), x, warmup=warmup, repeats=repeats)

    n_ops = sum(len([c for c in lay.candidates if c != SKIP]) for lay in space.layers)
    layers: list[dict[int, float]] = []
    with make_progress(show=show_progress) as progress:
        task = progress.add_task("latency table", total=n_ops + 2, info=f"{device} batch {batch}")
        stem_ms = timed(build_stem(space), feat(space.in_channels, space.image_size))
        head = space.head
        head_ms = timed(build_head(space), feat(head.in_channels, head.input_size))
        progress.advance(task, 2)
        for i, lay in enumerate(space.layers):
            row = {SKIP: 0.0}
            x = feat(lay.in_channels, lay.input_size)
            for op in lay.candidates:
                if op == SKIP:
                    continue
                row[op] = timed(build_block(space, i, op), x)
                progress.advance(task)
            layers.append(row)
    return LatencyTable(
        device=str(device), batch=batch, stem_ms=stem_ms, head_ms=head_ms, layers=tuple(layers)
    )

"""A per-(layer, op) latency lookup table, timed on the device the search runs on.

The table's sum = stem + trunk layers + every member's layers and head, each the median of
repeated timings of that static block alone (after warm-up) at ``batch`` images. Blocks timed
alone miss what a whole ensemble adds or saves (the calls between blocks, combining members,
caches warm or cold), so the sum is calibrated: a few random whole ensembles are timed and
``predicted = scale * sum + call_ms * calls + offset_ms`` is fitted to them by non-negative
least squares (``calibrate``), where ``calls`` counts the ensemble's block calls (stem, every
non-skip layer, every head): the per-call overhead a block timed alone does not show.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from neas.config import LATENCY_CALIBRATION_ENSEMBLES
from neas.errors import RunDirError
from neas.files import read_json, write_json
from neas.nn.builder import build_block, build_head, build_stem, static_ensemble
from neas.progress import make_progress
from neas.search_spaces.arch import EnsembleArch, sample
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
    scale: float = 1.0
    call_ms: float = 0.0
    offset_ms: float = 0.0

    def member_ms(self, arch: EnsembleArch, m: int) -> float:
        return self.head_ms + sum(
            self.layers[arch.split + j][op] for j, op in enumerate(arch.members[m])
        )

    def trunk_ms(self, arch: EnsembleArch) -> float:
        return self.stem_ms + sum(self.layers[i][op] for i, op in enumerate(arch.shared))

    def block_sum_ms(self, arch: EnsembleArch) -> float:
        """The table's sum over the ensemble's blocks (ms), trunk once, uncalibrated."""
        return self.trunk_ms(arch) + sum(self.member_ms(arch, m) for m in range(arch.num_members))

    def predict(self, arch: EnsembleArch) -> float:
        """Predicted latency (ms) of the whole ensemble: the calibrated block sum."""
        return self.scale * self.block_sum_ms(arch) + self.call_ms * calls(arch) + self.offset_ms

    def to_dict(self) -> dict[str, object]:
        return {
            "device": self.device,
            "batch": self.batch,
            "stem_ms": self.stem_ms,
            "head_ms": self.head_ms,
            "layers": [{str(k): v for k, v in layer.items()} for layer in self.layers],
            "scale": self.scale,
            "call_ms": self.call_ms,
            "offset_ms": self.offset_ms,
        }

    @classmethod
    def from_dict(cls, data: dict) -> LatencyTable:
        return cls(
            device=data["device"],
            batch=int(data["batch"]),
            stem_ms=float(data["stem_ms"]),
            head_ms=float(data["head_ms"]),
            layers=tuple({int(k): float(v) for k, v in lay.items()} for lay in data["layers"]),
            scale=float(data.get("scale", 1.0)),  # tables written before calibration: raw sums
            call_ms=float(data.get("call_ms", 0.0)),
            offset_ms=float(data.get("offset_ms", 0.0)),
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


def calls(arch: EnsembleArch) -> int:
    """Block calls of one ensemble forward: the stem, every non-skip layer (trunk once), and
    each member's head."""
    layers = list(arch.shared) + [op for member in arch.members for op in member]
    return 1 + sum(op != SKIP for op in layers) + arch.num_members


def fit_calibration(
    block_sums: list[float], n_calls: list[int], measured: list[float]
) -> tuple[float, float, float]:
    """Non-negative least squares ``measured ~ scale * block_sum + call_ms * calls + offset``;
    ``(scale, call_ms, offset)``, or ``(1, 0, 0)`` when nothing was measured. A fit that would
    drop the table (``scale == 0``) becomes a fit of ``scale`` alone.

    >>> fit_calibration([1.0, 2.0, 3.0, 5.0], [2, 4, 3, 6], [2.5, 4.5, 5.0, 8.5])
    (1.0, 0.5, 0.5)
    """
    from scipy.optimize import nnls

    if not measured:
        return 1.0, 0.0, 0.0
    a = np.column_stack([block_sums, n_calls, np.ones(len(measured))]).astype(float)
    y = np.asarray(measured, float)
    coef, _ = nnls(a, y)
    if coef[0] <= 0:
        # Noise let calls and offset explain everything and dropped the table; keep the table's
        # ranking and fit its level alone (least squares through the origin).
        s = a[:, 0]
        if s @ y <= 0:
            return 1.0, 0.0, 0.0
        coef = np.array([float(s @ y) / float(s @ s), 0.0, 0.0])
    scale, call_ms, offset = (round(float(c), 6) for c in coef)
    return scale, call_ms, offset


def calibrate(
    table: LatencyTable,
    space: SearchSpace,
    *,
    samples: int = LATENCY_CALIBRATION_ENSEMBLES,
    seed: int = 0,
    warmup: int = 5,
    repeats: int = 20,
) -> LatencyTable:
    """Time ``samples`` random whole ensembles (fresh weights) at the table's batch and fit the
    table's ``scale``, ``call_ms`` and ``offset_ms`` to them (``fit_calibration``)."""
    device = torch.device(table.device)
    fmt = torch.contiguous_format if table.batch == 1 else torch.channels_last
    rng = np.random.default_rng([seed, 4093])
    x = torch.randn(table.batch, space.in_channels, space.image_size, space.image_size)
    x = x.to(device).contiguous(memory_format=fmt)
    sums, n_calls, measured = [], [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(samples):
            arch = sample(space, rng)
            net = static_ensemble(space, arch).to(device, memory_format=fmt)
            measured.append(time_module(net, x, warmup=warmup, repeats=repeats))
            sums.append(table.block_sum_ms(arch))
            n_calls.append(calls(arch))
    scale, call_ms, offset = fit_calibration(sums, n_calls, measured)
    return replace(table, scale=scale, call_ms=call_ms, offset_ms=offset)


def measure_latency_table(
    space: SearchSpace,
    *,
    device: torch.device | str = "cpu",
    batch: int = 1,
    warmup: int = 5,
    repeats: int = 20,
    calibration: int = LATENCY_CALIBRATION_ENSEMBLES,
    show_progress: bool = True,
) -> LatencyTable:
    """Time the stem, one head and every (layer, op) of ``space`` as static blocks, then
    calibrate the sums on ``calibration`` random whole ensembles (0: leave them raw).

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
        task = progress.add_task(
            "latency table", total=n_ops + 2 + calibration, info=f"{device} batch {batch}"
        )
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
        table = LatencyTable(
            device=str(device), batch=batch, stem_ms=stem_ms, head_ms=head_ms, layers=tuple(layers)
        )
        if calibration > 0:
            table = calibrate(table, space, samples=calibration, warmup=warmup, repeats=repeats)
            progress.advance(task, calibration)
    return table

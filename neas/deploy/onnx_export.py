"""ONNX export of an ``EnsembleNet``, its verification, and ONNX Runtime latency.

One graph: input ``input`` (N x C x H x W, dynamic N); the stem and trunk once, then the K
branches; outputs ``probabilities`` (mean of the members' softmaxes) and ``logits_0`` ..
``logits_{K-1}``.

Exporter choice: the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``).
Measured on a tiny digits ensemble (K=2, 2 shared CPU cores, torch 2.13): about 0.6-1 s per
model with one torch thread (2-3.5 s with two contended threads), against 8-20 s for the dynamo
exporter, which also needs ``onnxscript``. The legacy exporter folds BatchNorm into the
convolutions, so its graph also ran faster in ONNX Runtime (0.29 ms vs 0.50 ms at batch 1).
Both matched PyTorch to 2e-7. ``neas search`` exports ~5 ensembles, so dynamo would eat most of
its 3-minute budget.

>>> from neas.nn import static_ensemble
>>> from neas.search_spaces import create_space, sample
>>> space = create_space("mbconv", image_size=8, in_channels=1, num_classes=10,
...                      width_mult=0.25, head_width=32, feature_width=32)
>>> net = static_ensemble(space, sample(space, np.random.default_rng(0))).eval()
>>> x = np.random.default_rng(1).normal(size=(4, 1, 8, 8)).astype(np.float32)
>>> with torch.no_grad():
...     reference = reference_outputs(torch.stack(net.member_logits(torch.from_numpy(x))))
>>> check_parity(ort_session(to_onnx(net, input_shape=(1, 8, 8))), x, reference) < 1e-4
True
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.utils
import onnxruntime as ort
import torch
from torch import nn

from neas.device import torch_threads
from neas.errors import ExportError
from neas.files import atomic_write_bytes
from neas.nn.layers import EnsembleNet, combine

OPSET = 17
INPUT = "input"
PROBS = "probabilities"
PARITY_TOLERANCE = 1e-4
EXPORTER = "torch.onnx.export(dynamo=False) (TorchScript-based)"
PARITY_SAMPLES = 256


def output_names(num_members: int) -> list[str]:
    return [PROBS, *(f"logits_{m}" for m in range(num_members))]


class _OnnxEnsemble(nn.Module):
    """``EnsembleNet`` with ONNX-friendly outputs: (probabilities, logits_0, ...)."""

    def __init__(self, net: EnsembleNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = self.net.member_logits(x)
        return (combine(logits), *logits)


def to_onnx(net: EnsembleNet, *, input_shape: tuple[int, int, int]) -> onnx.ModelProto:
    """Export ``net`` (eval mode, on the CPU) as one ONNX graph and run the ONNX checker."""
    names = output_names(net.num_members)
    wrapper = _OnnxEnsemble(net).eval()
    buf = io.BytesIO()
    with torch_threads(1), torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(
            wrapper,
            (torch.zeros(1, *input_shape),),
            buf,
            dynamo=False,
            input_names=[INPUT],
            output_names=names,
            dynamic_axes={n: {0: "batch"} for n in [INPUT, *names]},
            opset_version=OPSET,
            do_constant_folding=True,
        )
    model = onnx.load_from_string(buf.getvalue())
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ExportError(f"the exported ONNX graph fails the ONNX checker: {first}") from None
    return model


def member_graph(model: onnx.ModelProto, member: int) -> onnx.ModelProto:
    """Member ``member`` on its own (stem, trunk, its branch): what a separate export computes."""
    return onnx.utils.Extractor(model).extract_model([INPUT], [f"logits_{member}"])


def ort_session(model: onnx.ModelProto | bytes, *, threads: int = 1) -> ort.InferenceSession:
    """A CPU ONNX Runtime session with ``threads`` intra-op threads (full graph optimisation)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def reference_outputs(logits: torch.Tensor) -> list[np.ndarray]:
    """PyTorch's outputs in the graph's order from member logits (K, N, C)."""
    return [combine(list(logits)).numpy(), *(t.numpy() for t in logits)]


def max_abs_diff(
    session: ort.InferenceSession, x: np.ndarray, reference: list[np.ndarray]
) -> float:
    """Max abs difference over every output (probabilities and logits) of ORT vs ``reference``."""
    got = session.run(None, {INPUT: np.ascontiguousarray(x, dtype=np.float32)})
    return max(float(np.abs(g - w).max()) for g, w in zip(got, reference, strict=True))


def check_parity(
    session: ort.InferenceSession, x: np.ndarray, reference: list[np.ndarray]
) -> float:
    """``max_abs_diff``, raising ``ExportError`` above ``PARITY_TOLERANCE``."""
    diff = max_abs_diff(session, x, reference)
    if not diff <= PARITY_TOLERANCE:
        raise ExportError(
            f"ONNX Runtime differs from PyTorch by {diff:.2e} (> {PARITY_TOLERANCE:g}) on "
            f"{len(x)} validation images; the ONNX export is wrong, do not deploy it"
        )
    return diff


def time_calls(
    fns: Sequence[Callable[[], Any]],
    *,
    budget_s: float = 0.15,
    min_repeats: int = 10,
    max_repeats: int = 200,
) -> list[dict[str, float]]:
    """Median and p90 wall time in ms of each of ``fns``, called in turn, after a warm-up.

    Interleaving the calls exposes every function to the same machine load, so their ratio holds
    on a busy machine. Repeats until ``budget_s`` is spent (at least ``min_repeats``, at most
    ``max_repeats`` rounds).

    >>> fast, slow = time_calls([lambda: None, lambda: time.sleep(0.002)])
    >>> fast["median_ms"] < 1 < slow["median_ms"]
    True
    """
    for fn in fns:
        fn()
        fn()
    times: list[list[float]] = [[] for _ in fns]
    start = time.perf_counter()
    rounds = 0
    while rounds < max_repeats and (rounds < min_repeats or time.perf_counter() - start < budget_s):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        rounds += 1
    return [
        {
            "median_ms": float(np.median(ms)),
            "p90_ms": float(np.percentile(ms, 90)),
            "repeats": len(ms),
        }
        for ms in (np.asarray(ts) * 1e3 for ts in times)
    ]


def batch_of(x: np.ndarray, n: int) -> np.ndarray:
    """``n`` real images (repeated if there are fewer), float32 and contiguous."""
    idx = np.arange(n) % len(x)
    return np.ascontiguousarray(x[idx], dtype=np.float32)


def measure_latency(
    model: onnx.ModelProto,
    *,
    x: np.ndarray,
    num_members: int,
    batches: tuple[int, ...] = (1, 32),
    threads: int = 1,
    budget_s: float = 0.05,
) -> dict[str, Any]:
    """ORT latency of the one graph and of the K members run separately one after another.

    ``budget_s`` per batch size (at least ``time_calls``' 10 rounds): 0.05 s, was 0.15 s. On
    a digits front ensemble, five measurements each gave the same spread of medians (batch 1
    0.31-0.35 ms at 0.05 s; 0.32-0.63 ms at 0.15 s) in 0.29 s instead of 0.44 s an ensemble.

    Returns ``{"intra_op_threads", "batch_<b>": {...}, "separate_members": {"batch_<b>": ...},
    "one_graph_over_separate": {"batch_<b>": ratio}}`` (a ratio below 1 means the shared trunk
    pays off).
    """
    one = ort_session(model, threads=threads)
    parts = [ort_session(member_graph(model, m), threads=threads) for m in range(num_members)]
    out: dict[str, Any] = {
        "runtime": f"onnxruntime {ort.__version__}",
        "provider": "CPUExecutionProvider",
        "intra_op_threads": threads,
    }
    separate: dict[str, Any] = {}
    ratio: dict[str, float] = {}
    for b in batches:
        feed = {INPUT: batch_of(x, b)}
        key = f"batch_{b}"
        out[key], separate[key] = time_calls(
            [lambda f=feed: one.run(None, f), lambda f=feed: [s.run(None, f) for s in parts]],
            budget_s=budget_s,
        )
        ratio[key] = out[key]["median_ms"] / separate[key]["median_ms"]
    out["separate_members"] = separate
    out["one_graph_over_separate"] = ratio
    return out


def export_onnx(
    net: EnsembleNet,
    path: Path,
    *,
    x_val: np.ndarray,
    val_logits: torch.Tensor | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Export, check, verify parity on real images, write ``path``, time it; manifest entries.

    ``val_logits`` (K, N, C) are PyTorch's member logits on ``x_val`` if already computed.
    Returns ``{"onnx": {exporter, opset, parity, ...}, "latency": measure_latency(...)}``.
    """
    t0 = time.perf_counter()
    model = to_onnx(net, input_shape=tuple(x_val.shape[1:]))  # type: ignore[arg-type]
    export_s = time.perf_counter() - t0
    n = min(PARITY_SAMPLES, len(x_val))
    x = np.ascontiguousarray(x_val[:n], dtype=np.float32)
    if val_logits is None:
        with torch.no_grad():
            val_logits = torch.stack(net.eval().member_logits(torch.from_numpy(x)))
    diff = check_parity(
        ort_session(model, threads=threads), x, reference_outputs(val_logits[:, :n])
    )
    atomic_write_bytes(path, model.SerializeToString())
    info = {
        "exporter": EXPORTER,
        "opset": OPSET,
        "export_seconds": export_s,
        "input": INPUT,
        "outputs": output_names(net.num_members),
        "parity_max_abs_diff": diff,
        "parity_samples": len(x),
    }
    latency = measure_latency(model, x=x_val, num_members=net.num_members, threads=threads)
    return {"onnx": info, "latency": latency}

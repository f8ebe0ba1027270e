"""What a supernet training step costs on a CPU, and what two of its items gain.

On digits (the main job's data and space, batch 64), per torch thread count:

1. the depthwise weight gradient of every stride-1 shape whose kernel oneDNN sends to its
   generic grouped-convolution path (kernels 5 and 7, a 3x3 kernel on a 2x2 map): milliseconds
   for oneDNN's ``convolution_backward`` against ``neas.nn.layers.depthwise``'s (a depthwise
   forward convolution), the best of ``--repeats``;
2. whole supernet training steps (seeded architectures, AdamW) in four variants run in
   alternating blocks, so that the machine's load falls on all of them alike: the depthwise
   convolution and AdamW as in neas, or either one swapped back for ``F.conv2d`` / AdamW's
   per-parameter loop. The median of each variant's blocks and the ratio to the old one.

Writes the "Supernet training step" section of RESULTS.md and ``results/train_step.json``.

    python benchmarks/train_step.py --threads 1,2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F

import neas.nn.dynamic
import neas.training.loop
from neas.config import RunConfig
from neas.data import load_data
from neas.job_space import build_space
from neas.nn import Supernet
from neas.nn.layers import depthwise_weight_grad
from neas.training.loop import make_optimizer
from neas.training.supernet import step_arch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_json, write_section  # noqa: E402

#: Stride-1 depthwise shapes of the digits supernet (channels, map size, kernel) that oneDNN
#: computes the weight gradient of on its generic path.
SHAPES = (
    (64, 8, 7),
    (96, 8, 5),
    (96, 8, 7),
    (144, 8, 5),
    (144, 8, 7),
    (240, 4, 5),
    (240, 4, 7),
    (336, 4, 5),
    (336, 4, 7),
    (480, 2, 3),
)
BATCH = 64


def best_ms(fn: Callable[[], object], *, repeats: int, inner: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return 1e3 * best


def weight_grad_row(channels: int, size: int, kernel: int, repeats: int) -> dict:
    gen = torch.Generator().manual_seed(channels * size + kernel)
    cl = torch.channels_last
    x = torch.randn(BATCH, channels, size, size, generator=gen).to(memory_format=cl)
    w = torch.randn(channels, 1, kernel, kernel, generator=gen).to(memory_format=cl)
    y = F.conv2d(x, w, None, 1, kernel // 2, 1, channels)
    grad = torch.randn(y.shape, generator=gen).to(memory_format=cl)
    pad = [kernel // 2] * 2

    def onednn() -> torch.Tensor:
        return torch.ops.aten.convolution_backward(
            grad, x, w, None, [1, 1], pad, [1, 1], False, [0, 0], channels, [False, True, False]
        )[1]

    def ours() -> torch.Tensor:
        return depthwise_weight_grad(x, grad, kernel)

    torch.testing.assert_close(ours(), onednn(), rtol=1e-3, atol=1e-3)
    a, b = best_ms(onednn, repeats=repeats), best_ms(ours, repeats=repeats)
    return dict(
        channels=channels,
        size=size,
        kernel=kernel,
        onednn_ms=round(a, 3),
        neas_ms=round(b, 3),
        speedup=round(a / b, 2),
    )


def plain_depthwise(x: torch.Tensor, weight: torch.Tensor, stride: int = 1) -> torch.Tensor:
    return F.conv2d(x, weight, None, stride, weight.shape[-1] // 2, 1, weight.shape[0])


def looped_adamw(model, config):  # noqa: ANN001, ANN201 - make_optimizer's signature
    """``make_optimizer``'s AdamW (its weight-decay groups) with torch's per-parameter loop."""
    groups = [
        {"params": g["params"], "weight_decay": g["weight_decay"]}
        for g in make_optimizer(model, config).param_groups
    ]
    return torch.optim.AdamW(groups, lr=config.base_lr, foreach=False)


@contextmanager
def variant(conv: str, adam: str) -> Iterator[None]:
    with (
        mock.patch.object(neas.nn.dynamic, "depthwise", plain_depthwise)
        if conv == "F.conv2d"
        else _nothing(),
        mock.patch.object(neas.training.loop, "make_optimizer", looped_adamw)
        if adam == "loop"
        else _nothing(),
    ):
        yield


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def step_rows(blocks: int, steps: int) -> tuple[list[dict], dict]:
    config = RunConfig()
    data = load_data(config.data)
    space = build_space(config.space, data)
    train = config.train.settled(rows=len(data.x_train), table=False)
    fmt = torch.channels_last
    x = torch.from_numpy(data.x_train[:BATCH]).contiguous(memory_format=fmt)
    y = torch.from_numpy(data.y_train[:BATCH]).long()
    variants = [(c, a) for c in ("neas", "F.conv2d") for a in ("fused", "loop")]
    state = {}
    for v in variants:
        torch.manual_seed(0)
        net = Supernet(space, weights=train.weights).to(memory_format=fmt).train()
        with variant(*v):
            state[v] = (net, neas.training.loop.make_optimizer(net, train))
    times: dict[tuple[str, str], list[float]] = {v: [] for v in variants}
    for block in range(blocks + 1):
        for v in variants:
            net, opt = state[v]
            with variant(*v):
                t0 = time.perf_counter()
                for i in range(steps):
                    arch = step_arch(space, seed=0, epoch=block, step=i)
                    opt.zero_grad(set_to_none=True)
                    loss = sum(F.cross_entropy(o, y) for o in net(x, arch))
                    loss.backward()
                    opt.step()
                if block:  # block 0 warms up
                    times[v].append(1e3 * (time.perf_counter() - t0) / steps)
    base = statistics.median(times[("F.conv2d", "loop")])
    rows = [
        dict(
            depthwise=c,
            adamw=a,
            step_ms=round(statistics.median(times[(c, a)]), 1),
            vs_before=round(base / statistics.median(times[(c, a)]), 2),
        )
        for c, a in variants
    ]
    return rows, dict(
        blocks=blocks, steps_per_block=steps, batch=BATCH, space_layers=space.num_layers
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2", help="torch thread counts, e.g. 1,2")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--blocks", type=int, default=6, help="timed blocks per variant")
    parser.add_argument("--steps", type=int, default=10, help="training steps per block")
    args = parser.parse_args()
    results = []
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        load = os.getloadavg()[0]
        grads = [weight_grad_row(*shape, args.repeats) for shape in SHAPES]
        steps, meta = step_rows(args.blocks, args.steps)
        results.append(
            dict(
                threads=threads, load_before=round(load, 2), weight_grad=grads, steps=steps, **meta
            )
        )
        print(results[-1], flush=True)
    command = " ".join(["python benchmarks/train_step.py", *sys.argv[1:]])
    write_json(
        "train_step.json", {"command": command, "torch": torch.__version__, "results": results}
    )
    lines = [
        "",
        f"Command: `{command}` (torch {torch.__version__}, {os.cpu_count()}-core "
        f"shared machine; load average before each thread count: "
        + ", ".join(f"{r['load_before']:.2f}" for r in results)
        + ").",
        "",
    ]
    lines += [
        "Depthwise weight gradient, batch 64, stride 1, best of the repeats (ms):",
        "",
        "| channels | map | kernel | "
        + " | ".join(f"oneDNN {r['threads']}t | neas {r['threads']}t | speed-up" for r in results)
        + " |",
        "|---|---|---|" + "---|---|---|" * len(results),
    ]
    for i, shape in enumerate(SHAPES):
        cells = " | ".join(
            f"{r['weight_grad'][i]['onednn_ms']:.2f} | {r['weight_grad'][i]['neas_ms']:.2f} | "
            f"**{r['weight_grad'][i]['speedup']:.1f}x**"
            for r in results
        )
        lines.append(f"| {shape[0]} | {shape[1]}x{shape[1]} | {shape[2]} | {cells} |")
    lines += [
        "",
        f"Supernet training steps (digits space, seeded architectures, batch {BATCH}; "
        f"median of {args.blocks} alternating blocks of {args.steps} steps; the "
        "speed-up is against `F.conv2d` with AdamW's loop, the code before):",
        "",
        "| depthwise | AdamW | "
        + " | ".join(f"ms/step {r['threads']}t | speed-up {r['threads']}t" for r in results)
        + " |",
        "|---|---|" + "---|---|" * len(results),
    ]
    for i, row in enumerate(results[0]["steps"]):
        cells = " | ".join(
            f"{r['steps'][i]['step_ms']:.0f} | **{r['steps'][i]['vs_before']:.2f}x**"
            for r in results
        )
        lines.append(f"| {row['depthwise']} | {row['adamw']} | {cells} |")
    lines.append("")
    write_section("## Supernet training step", lines)


if __name__ == "__main__":
    main()

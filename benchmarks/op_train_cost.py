"""What one training step of each (layer, op) costs against its MACs, on this CPU.

Every op of the Fashion-MNIST ``mbconv`` space (28x28, the main job's defaults) as a static
block at its layer's input size, channels_last, batch 64: forward + backward timed (median of
``--repeats`` after two warm-ups), and the no-gradient forward. Summed per op over the layers:
milliseconds per million MACs (MACs per image), and training over forward. The question it
answers: do 5x5 and 7x7 depthwise ops train slower per MAC than 3x3 ones (so that a search
for MACs picks ensembles that train slowly under a clock)? Writes the "Training cost per op"
section of RESULTS.md and ``results/op_train_cost.json``.

    python benchmarks/op_train_cost.py --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import torch
from _results import write_json, write_section

from neas.config import DataOptions, SpaceOptions
from neas.cost import CostTable
from neas.data import load_data
from neas.job_space import build_space
from neas.nn.builder import build_block
from neas.search_spaces.spec import SKIP

BATCH = 64


def median_ms(fn, repeats: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ds = load_data(DataOptions(source="fashion-mnist", max_train=2000))  # shapes only
    space = build_space(SpaceOptions(), ds)
    costs = CostTable.from_space(space)
    fmt = torch.channels_last
    rows = []
    for i, layer in enumerate(space.layers):
        x = torch.randn(BATCH, layer.in_channels, layer.input_size, layer.input_size)
        x = x.contiguous(memory_format=fmt)
        for op in layer.candidates:
            if op == SKIP:
                continue
            block = build_block(space, i, op).to(memory_format=fmt).train()
            xg = x.clone().requires_grad_(True)

            def train_step(block=block, xg=xg) -> None:
                block(xg).float().sum().backward()

            def forward(block=block, x=x) -> None:
                with torch.no_grad():
                    block(x)

            rows.append(
                {
                    "layer": i,
                    "input_size": layer.input_size,
                    "in_channels": layer.in_channels,
                    "op": space.op_name(op),
                    "macs": costs.layers[i][op].macs,
                    "train_ms": median_ms(train_step, args.repeats),
                    "forward_ms": median_ms(forward, args.repeats),
                }
            )
        print(f"layer {i} ({layer.input_size}px, {layer.in_channels} ch) timed", flush=True)
    per_op: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        for key in ("macs", "train_ms", "forward_ms"):
            per_op[r["op"]][key] += r[key]
    summary = [
        {
            "op": op,
            "macs_millions": v["macs"] / 1e6,
            "train_ms_per_mmac": v["train_ms"] / (v["macs"] / 1e6),
            "train_over_forward": v["train_ms"] / v["forward_ms"],
        }
        for op, v in sorted(per_op.items())
    ]
    for s in summary:
        print(s)
    command = f"python benchmarks/op_train_cost.py --threads {args.threads}"
    write_json(
        "op_train_cost.json",
        {"command": command, "batch": BATCH, "threads": args.threads, "ops": summary, "rows": rows},
    )
    lines = [
        "",
        f"Command: `{command}`. Fashion-MNIST `mbconv` space (main-job defaults), every op of "
        f"every layer as a static block at its input size, channels_last, batch {BATCH}, "
        f"{args.threads} torch thread(s), median of {args.repeats}; summed over the 20 layers "
        "(MACs per image).",
        "",
        "| op | MACs, all layers | train step ms per million MACs | train step / forward |",
        "|---|---|---|---|",
        *(
            f"| {s['op']} | {s['macs_millions']:.1f}M | {s['train_ms_per_mmac']:.2f} | "
            f"{s['train_over_forward']:.1f}x |"
            for s in summary
        ),
        "",
    ]
    write_section("## Training cost per op (Fashion-MNIST space, CPU)", lines)


if __name__ == "__main__":
    main()

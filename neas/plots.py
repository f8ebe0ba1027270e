"""Plots a person would rather look at than read, saved as PNG files (atomically).

Every figure is a ``matplotlib.figure.Figure`` drawn through its own Agg canvas: nothing here
touches pyplot or the user's plotting backend.

>>> import pandas as pd, tempfile
>>> path = Path(tempfile.mkdtemp()) / "hv.png"
>>> plot_hypervolume(pd.DataFrame({"generation": [0, 1], "hypervolume": [0.1, 0.2],
...                                "best_val_accuracy": [0.9, 0.95]}), path=path)
>>> path.read_bytes()[:4]
b'\x89PNG'
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from neas.files import atomic_write_bytes


def _figure(*, figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, dpi=120)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> None:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(Path(path), buf.getvalue())


def _mac_unit(largest: float) -> tuple[float, str]:
    """Divisor and suffix for a MACs axis: millions, or thousands for tiny (tabular) models."""
    return (1e3, "k") if largest < 1e6 else (1e6, "M")


def plot_pareto(history: pd.DataFrame, front: pd.DataFrame, *, budget: int, path: Path) -> None:
    """Validation accuracy vs MACs: every evaluated ensemble, the front, the budget line."""
    fig = _figure(figsize=(7, 4.5))
    ax = fig.subplots()
    feasible = history[history["feasible"]]
    div, unit = _mac_unit(max(history["macs"].max(), front["macs"].max()))
    ax.scatter(
        feasible["macs"] / div, 100 * feasible["val_accuracy"], s=12, c="0.7", label="evaluated"
    )
    for k, group in front.groupby("members"):
        ax.scatter(
            group["macs"] / div,
            100 * group["val_accuracy"],
            s=40,
            label=f"Pareto front, K={k}",
            edgecolor="k",
            zorder=3,
        )
    ordered = front.sort_values("macs")
    ax.step(
        ordered["macs"] / div,
        100 * ordered["val_accuracy"].cummax(),
        where="post",
        c="k",
        lw=1,
        zorder=2,
    )
    if budget <= 2 * max(1, history["macs"].max()):
        ax.axvline(budget / div, c="r", ls="--", lw=1, label=f"budget {budget / div:.3g}{unit}")
    ax.set_xlabel(f"MACs ({unit})")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("ensembles found: accuracy vs MACs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_hypervolume(progress: pd.DataFrame, *, path: Path) -> None:
    """Hypervolume and best validation accuracy per generation."""
    fig = _figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.plot(progress["generation"], progress["hypervolume"], marker="o")
    if len(progress) <= 12:  # one tick per generation (MaxNLocator gives fractions for one)
        ax.set_xticks(list(progress["generation"]))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generation")
    ax.set_ylabel("hypervolume")
    ax2 = ax.twinx()
    ax2.plot(
        progress["generation"],
        100 * progress["best_val_accuracy"],
        c="C1",
        ls="--",
        marker=".",
        clip_on=False,  # a point at 100 % sits on the top edge, drawn whole
    )
    ax2.set_ylabel("best val accuracy (%)", color="C1")
    low, high = ax2.get_ylim()
    ax2.set_ylim(low, min(high, 100.0))  # the autoscale margin would show accuracies over 100 %
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_shrink_history(history: dict[str, Any], path: str | Path) -> None:
    """One row per shrink step: score heatmap (layers x ops, x = dropped), p vs d scatter.

    Layers are numbered from 1 on the heatmap's x axis, as the report's architecture tables
    number them."""
    steps = history["steps"]
    names = sorted(
        {o["op"] for s in steps for lay in s["layers"] for o in lay["ops"]},
        key=lambda n: (n == "skip", n),
    )
    fig = _figure(figsize=(11, 3.2 * len(steps)))
    axes = fig.subplots(len(steps), 2, squeeze=False)
    for (heat, scatter), step in zip(axes, steps):
        grid = np.full((len(names), len(step["layers"])), np.nan)
        for lay in step["layers"]:
            for o in lay["ops"]:
                r, c = names.index(o["op"]), lay["layer"]
                grid[r, c] = math.nan if o["score"] is None else o["score"]
                mark = "x" if not o["kept"] else ("?" if o["score"] is None else "")
                heat.text(c, r, mark, ha="center", va="center", fontsize=9, color="red")
        im = heat.imshow(grid, aspect="auto", cmap="viridis")
        heat.set_yticks(range(len(names)), names)
        every = max(1, math.ceil(len(step["layers"]) / 24))  # at most 24 labels
        ticks = range(0, len(step["layers"]), every)
        heat.set_xticks(ticks, [str(c + 1) for c in ticks], fontsize=7)
        heat.set_xlabel("layer")
        heat.set_title(
            f"epoch {step['epoch']}: score (x dropped, ? unsampled), "
            f"log10 size {step['log10_size_before']:.1f} -> {step['log10_size_after']:.1f}",
            fontsize=10,
        )
        fig.colorbar(im, ax=heat).set_label("op score (higher = kept)")
        ops = [o for lay in step["layers"] for o in lay["ops"] if o["n"]]
        for kept, color, label in ((True, "tab:blue", "kept"), (False, "tab:red", "dropped")):
            sel = [o for o in ops if o["kept"] == kept]
            scatter.scatter(
                [o["diversity"] for o in sel],
                [o["potentiality"] for o in sel],
                s=14,
                c=color,
                label=label,
            )
        scatter.set_xlabel("diversity (mean pairwise disagreement)")
        scatter.set_ylabel("potentiality (mean val acc)")
        scatter.legend(fontsize=8)
    _save(fig, path)


def plot_ranking(
    supernet_accuracy: Sequence[float],
    standalone_accuracy: Sequence[float],
    *,
    path: str | Path,
    title: str,
) -> None:
    """Scatter of supernet-estimated vs stand-alone validation accuracy."""
    fig = _figure(figsize=(4.8, 4.2))
    ax = fig.subplots()
    ax.scatter(supernet_accuracy, standalone_accuracy, s=18)
    ax.set_xlabel("supernet val accuracy (inherited weights)")
    ax.set_ylabel("stand-alone val accuracy")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_cascade(
    tables: dict[str, pd.DataFrame], path: Path, *, chosen: float | None = None, title: str = ""
) -> None:
    """Accuracy vs mean MACs per sample, one line per split (e.g. val, test)."""
    fig = _figure(figsize=(5, 3.6))
    ax = fig.subplots()
    div, unit = _mac_unit(max((t["mean_macs"].max() for t in tables.values()), default=0))
    for name, table in tables.items():
        t = table.sort_values("mean_macs")
        ax.plot(t["mean_macs"] / div, 100 * t["accuracy"], marker="o", ms=3, label=name)
        if chosen is not None:
            row = table.loc[(table["threshold"] - chosen).abs().idxmin()]
            ax.scatter([row["mean_macs"] / div], [100 * row["accuracy"]], s=60, c="k", zorder=3)
    if chosen is not None:
        ax.scatter([], [], s=60, c="k", label=f"chosen threshold {chosen:g}")
    ax.set_xlabel(f"mean MACs per sample ({unit})")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or "early-exit cascade")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)

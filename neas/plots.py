"""Plots of a run's diagnostics (matplotlib, Agg backend, imported lazily), saved as PNG.

>>> plot_ranking([0.5, 0.6], [0.7, 0.9], path="ranking.png", title="demo")  # doctest: +SKIP
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neas.run import atomic_write_bytes


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(Path(path), buf.getvalue())


def plot_shrink_history(history: dict[str, Any], path: str | Path) -> None:
    """One row per shrink step: score heatmap (layers x ops, x = dropped), p vs d scatter."""
    import numpy as np

    plt = _pyplot()
    steps = history["steps"]
    names = sorted(
        {o["op"] for s in steps for lay in s["layers"] for o in lay["ops"]},
        key=lambda n: (n == "skip", n),
    )
    fig, axes = plt.subplots(len(steps), 2, figsize=(11, 3.2 * len(steps)), squeeze=False)
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
        heat.set_xlabel("layer")
        heat.set_title(
            f"epoch {step['epoch']}: score (x dropped, ? unsampled), "
            f"log10 size {step['log10_size_before']:.1f} -> {step['log10_size_after']:.1f}"
        )
        fig.colorbar(im, ax=heat)
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
    fig.tight_layout()
    _save(fig, Path(path))
    plt.close(fig)


def plot_ranking(
    supernet_accuracy: Sequence[float],
    standalone_accuracy: Sequence[float],
    *,
    path: str | Path,
    title: str,
) -> None:
    """Scatter of supernet-estimated vs stand-alone validation accuracy."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.scatter(supernet_accuracy, standalone_accuracy, s=18)
    ax.set_xlabel("supernet val accuracy (inherited weights)")
    ax.set_ylabel("stand-alone val accuracy")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, Path(path))
    plt.close(fig)

"""Plots a person would rather look at than read: the Pareto front and search progress."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pareto(history: pd.DataFrame, front: pd.DataFrame, *, budget: int, path: Path) -> None:
    """Validation accuracy vs MACs: every evaluated ensemble, the front, the budget line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    feasible = history[history["feasible"]]
    ax.scatter(
        feasible["macs"] / 1e6, 100 * feasible["val_accuracy"], s=12, c="0.7", label="evaluated"
    )
    for k, group in front.groupby("members"):
        ax.scatter(
            group["macs"] / 1e6,
            100 * group["val_accuracy"],
            s=40,
            label=f"Pareto front, K={k}",
            edgecolor="k",
            zorder=3,
        )
    ordered = front.sort_values("macs")
    ax.step(
        ordered["macs"] / 1e6,
        100 * ordered["val_accuracy"].cummax(),
        where="post",
        c="k",
        lw=1,
        zorder=2,
    )
    if budget <= 2 * max(1, history["macs"].max()):
        ax.axvline(budget / 1e6, c="r", ls="--", lw=1, label=f"budget {budget / 1e6:.1f}M")
    ax.set_xlabel("MACs (M)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("ensembles found: accuracy vs MACs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_hypervolume(progress: pd.DataFrame, *, path: Path) -> None:
    """Hypervolume and best validation accuracy per generation."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(progress["generation"], progress["hypervolume"], marker="o")
    ax.set_xlabel("generation")
    ax.set_ylabel("hypervolume")
    ax2 = ax.twinx()
    ax2.plot(progress["generation"], 100 * progress["best_val_accuracy"], c="C1", ls="--")
    ax2.set_ylabel("best val accuracy (%)", color="C1")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

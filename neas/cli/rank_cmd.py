"""``neas rank``: how well the trained supernet ranks ensembles (Kendall τ, Spearman ρ)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neas.cli.common import (
    app,
    console,
    user_errors,
)
from neas.cli.options import (
    D_THREADS,
    DeviceOpt,
    SeedOpt,
    ThreadsOpt,
)
from neas.config import RANK_EPOCHS, RANK_SAMPLES
from neas.layout import RANKING


@app.command("rank")
@user_errors
def rank_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run folder with a trained supernet.")],
    samples: Annotated[int, typer.Option(help="Random ensembles to rank.")] = RANK_SAMPLES,
    epochs: Annotated[
        int, typer.Option(help="Stand-alone training epochs per ensemble.")
    ] = RANK_EPOCHS,
    seed: SeedOpt = 0,
    device: DeviceOpt = None,
    threads: ThreadsOpt = D_THREADS,
) -> None:
    """Rank random ensembles by supernet accuracy and by training them from scratch."""
    from neas.ranking import rank_run

    out = rank_run(
        run_dir, samples=samples, epochs=epochs, seed=seed, device=device, threads=threads
    )
    tau, rho = out["kendall_tau"], out["spearman_rho"]
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    low, high = out["kendall_tau_ci95"]
    console.print(
        f"{samples} ensembles, {epochs} stand-alone epochs: Kendall tau {fmt(tau)} "
        f"(95% bootstrap interval {fmt(low)} to {fmt(high)}), "
        f"Spearman rho {fmt(rho)} -> {Path(run_dir) / RANKING}"
    )

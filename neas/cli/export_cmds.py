"""The ``neas`` commands that deploy and report: ``export``, ``cascade``, ``report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from neas.cli.common import (
    app,
    console,
    user_errors,
)
from neas.cli.options import (
    D_FINAL_INIT,
    D_FINAL_PATIENCE,
    D_FINAL_REFIT,
    FLAG,
    DeviceOpt,
    FinalEpochsOpt,
    FinalInitOpt,
    FinalPatienceOpt,
    FinalRefitOpt,
)
from neas.config import CASCADE_TOLERANCE, EXPORT_FINAL_EPOCHS, EXPORT_THREADS
from neas.layout import CASCADE_TABLE, MANIFEST

RunArg = Annotated[Path, typer.Argument(help="Run folder (after `neas search`).")]


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


@app.command("export")
@user_errors
def export_cmd(
    run_dir: RunArg,
    select: Annotated[
        list[str] | None,
        typer.Option(
            "--select",
            help="all (default), best, or ensemble ids from pareto.csv (repeat or comma-separate).",
            metavar="ID",
        ),
    ] = None,
    final_epochs: FinalEpochsOpt = EXPORT_FINAL_EPOCHS,
    final_init: FinalInitOpt = D_FINAL_INIT,
    final_patience: FinalPatienceOpt = D_FINAL_PATIENCE,
    final_refit: FinalRefitOpt = D_FINAL_REFIT,
    formats: Annotated[
        str,
        typer.Option("--format", help="Comma-separated formats: onnx, torch.", metavar="FORMATS"),
    ] = "onnx,torch",
    threads: Annotated[
        int,
        typer.Option(
            "--threads",
            help="CPU threads while exporting (torch and ONNX Runtime), and the count the "
            "reported ONNX Runtime latency is measured at. At 1 (the default), ensembles "
            "without final training are exported in one process per CPU core at a time.",
        ),
    ] = EXPORT_THREADS,
    cascade: Annotated[
        bool,
        typer.Option(
            "--cascade/--no-cascade", help="Sweep early-exit thresholds too.", metavar=FLAG
        ),
    ] = True,
    device: DeviceOpt = None,
) -> None:
    """Export Pareto-front ensembles to ONNX and PyTorch, verified and timed (RUN/ensembles/)."""
    from neas.deploy import export_run
    from neas.files import read_json
    from neas.report import write_report

    chosen = _split(select) or ["all"]
    folders = export_run(
        run_dir,
        select=chosen[0] if len(chosen) == 1 else chosen,
        formats=_split([formats]),
        final_epochs=final_epochs,
        final_init=final_init,
        final_patience=final_patience,
        final_refit=final_refit,
        cascade=cascade,
        threads=threads,
        device=device,
    )
    table = Table("id", "K", "MACs", "val acc", "ORT b1 ms", "vs separate", "parity", "cascade t")
    for folder in folders:
        m = read_json(folder / MANIFEST)
        lat, onnx = m.get("latency"), m.get("onnx")
        table.add_row(
            m["id"],
            str(m["members"]),
            f"{m['macs'] / 1e6:.2f}M",
            f"{m['accuracy']['val']:.3f}",
            f"{lat['batch_1']['median_ms']:.3f}" if lat else "-",
            f"{lat['one_graph_over_separate']['batch_1']:.2f}x" if lat else "-",
            f"{onnx['parity_max_abs_diff']:.1e}" if onnx else "-",
            f"{m['cascade']['threshold']:g}" if "cascade" in m else "-",
        )
    console.print(table)
    console.print(
        "ORT b1 ms: measured ONNX Runtime time of one image. vs separate: the one graph's time "
        "over running the K members as separate graphs. parity: largest difference between "
        "ONNX Runtime's and PyTorch's outputs. cascade t: members run in order and stop once "
        "their average's top probability exceeds t (0: only the first member runs); the chosen "
        "t is the cheapest within the cascade tolerance of the full ensemble's val accuracy.",
        style="dim",
    )
    console.print(f"exported {len(folders)} ensemble(s) -> {Path(run_dir) / 'ensembles'}")
    console.print(f"report: {write_report(run_dir)}")


@app.command("cascade")
@user_errors
def cascade_cmd(
    run_dir: RunArg,
    ensemble_id: Annotated[
        str, typer.Option("--id", help="An exported ensemble's id.", metavar="ID")
    ],
    tolerance: Annotated[
        float,
        typer.Option(help="Chosen threshold: cheapest within this val accuracy of the full one."),
    ] = CASCADE_TOLERANCE,
) -> None:
    """Sweep early-exit thresholds of an exported ensemble; store the chosen one."""
    import pandas as pd

    from neas.deploy import cascade_run
    from neas.run import ensemble_dir

    info = cascade_run(run_dir, ensemble_id=ensemble_id, tolerance=tolerance)
    folder = ensemble_dir(run_dir, ensemble_id)
    sweep = pd.read_csv(folder / CASCADE_TABLE)
    table = Table("threshold", "val acc", "val MACs", "test acc", "test MACs", "members run")
    for _, r in sweep.iterrows():
        mark = " *" if abs(r["threshold"] - info["threshold"]) < 1e-12 else ""
        table.add_row(
            f"{r['threshold']:g}{mark}",
            f"{r['val_accuracy']:.3f}",
            f"{r['val_mean_macs'] / 1e6:.2f}M",
            f"{r['test_accuracy']:.3f}",
            f"{r['test_mean_macs'] / 1e6:.2f}M",
            f"{r['val_mean_members']:.2f}",
        )
    console.print(table)
    v = info["val"]
    console.print(
        f"chosen threshold {info['threshold']:g}: val accuracy {v['accuracy']:.3f} at "
        f"{v['mean_macs'] / 1e6:.2f}M MACs (full ensemble {v['full_accuracy']:.3f} at "
        f"{v['full_macs'] / 1e6:.2f}M) -> {folder / CASCADE_TABLE}"
    )


@app.command("report")
@user_errors
def report_cmd(run_dir: RunArg) -> None:
    """Write RUN/report.html: the whole run on one self-contained page."""
    from neas.report import write_report

    console.print(f"report: {write_report(run_dir)}")

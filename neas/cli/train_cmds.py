"""The ``neas`` commands that set up and train: ``spaces``, ``cost``, ``train``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from neas.cli.common import (
    DataDirOpt,
    DataOpt,
    DeviceOpt,
    DiversityOpt,
    FeatureOpt,
    HeadOpt,
    MaxTrainOpt,
    MembersOpt,
    MinOpsOpt,
    SeedOpt,
    ShrinkAtOpt,
    ShrinkRatioOpt,
    ShrinkSamplesOpt,
    SpaceOpt,
    WidthOpt,
    app,
    console,
    shrink_config,
    user_errors,
)


@app.command("spaces")
@user_errors
def spaces_cmd() -> None:
    """List the registered search spaces with their size at 224x224."""
    from neas.search_spaces import create_space, list_spaces

    table = Table("space", "layers", "ops", "members", "log10 #ensembles")
    for name in list_spaces():
        s = create_space(name)
        table.add_row(
            name,
            str(s.num_layers),
            " ".join(o.name for o in s.ops) + " skip",
            str(s.num_members),
            f"{s.log10_size():.1f}",
        )
    console.print(table)


@app.command("cost")
@user_errors
def cost_cmd(
    space: SpaceOpt = "mbconv",
    image_size: Annotated[int, typer.Option(help="Input resolution (square).")] = 224,
    num_classes: Annotated[int, typer.Option(help="Number of classes.")] = 1000,
    in_channels: Annotated[int, typer.Option(help="Input channels.")] = 3,
    width_mult: Annotated[float | None, typer.Option(help="Channel multiplier.")] = None,
    head_width: Annotated[int | None, typer.Option(help="Head 1x1 conv width.")] = None,
    feature_width: Annotated[int | None, typer.Option(help="Head feature width.")] = None,
    neas_arch_list: Annotated[
        str | None,
        typer.Option(
            help="The NEAS paper's arch_list, comma-separated, or NEAS-S / NEAS-M / NEAS-L."
        ),
    ] = None,
    arch_file: Annotated[
        Path | None, typer.Option(help="An architecture JSON file in neas's own format.")
    ] = None,
) -> None:
    """Print the MACs and parameters of one ensemble architecture as JSON."""
    from neas.cost import CostTable
    from neas.errors import ConfigError
    from neas.search_spaces import NEAS_ARCH_LISTS, EnsembleArch, create_space, from_neas_arch_list

    if (neas_arch_list is None) == (arch_file is None):
        raise ConfigError("give exactly one of --neas-arch-list or --arch-file")
    if arch_file is not None:
        if not arch_file.exists():
            raise ConfigError(f"architecture file {arch_file} does not exist")
        try:
            data = json.loads(arch_file.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{arch_file} is not valid JSON: {exc}") from None
        members = len(data.get("members", [])) or None
    else:
        if neas_arch_list.upper() in NEAS_ARCH_LISTS:
            values = list(NEAS_ARCH_LISTS[neas_arch_list.upper()])
        else:
            try:
                values = [int(v) for v in neas_arch_list.replace(" ", "").strip("[]").split(",")]
            except ValueError:
                raise ConfigError(
                    "--neas-arch-list must be comma-separated integers or NEAS-S/M/L"
                ) from None
        members = values[1] if len(values) > 1 and values[1] >= 1 else None
    s = create_space(
        space,
        image_size=image_size,
        num_classes=num_classes,
        in_channels=in_channels,
        width_mult=width_mult,
        head_width=head_width,
        feature_width=feature_width,
        num_members=members,
    )
    if arch_file is not None:
        arch = EnsembleArch.from_dict(data, s)
    else:
        arch = from_neas_arch_list(values, s)
    table = CostTable.from_space(s)
    cost = table.ensemble(arch)
    out = {
        "macs": cost.macs,
        "params": cost.params,
        "members": arch.num_members,
        "split": arch.split,
        "member_macs": [
            table.trunk(arch).macs + table.member(arch, m).macs for m in range(arch.num_members)
        ],
        "image_size": image_size,
        "num_classes": num_classes,
        "arch": arch.to_dict(s),
    }
    typer.echo(json.dumps(out, indent=2))


@app.command("train")
@user_errors
def train_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    space: SpaceOpt = "mbconv",
    data: DataOpt = "digits",
    data_dir: DataDirOpt = None,
    max_train: MaxTrainOpt = None,
    epochs: Annotated[int, typer.Option(help="Supernet training epochs.")] = 30,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 64,
    members: MembersOpt = None,
    width_mult: WidthOpt = None,
    head_width: HeadOpt = None,
    feature_width: FeatureOpt = None,
    weights: Annotated[
        str, typer.Option(help="Weight sharing: entangled (one sliced set per layer) or separate.")
    ] = "entangled",
    optimizer: Annotated[str, typer.Option(help="adamw or sgd.")] = "adamw",
    lr: Annotated[
        float | None, typer.Option(help="Peak learning rate (default by optimizer).")
    ] = None,
    label_smoothing: Annotated[float, typer.Option(help="Label smoothing.")] = 0.1,
    shrink_at: ShrinkAtOpt = "0.3,0.5,0.7",
    shrink_ratio: ShrinkRatioOpt = 0.25,
    diversity_weight: DiversityOpt = 1.0,
    min_ops: MinOpsOpt = 2,
    shrink_samples: ShrinkSamplesOpt = 16,
    seed: SeedOpt = 0,
    device: DeviceOpt = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.")] = False,
    force: Annotated[bool, typer.Option(help="Start over, clearing --out.")] = False,
) -> None:
    """Train the ensemble supernet (resumable; --resume reuses the run's stored settings)."""
    from neas import pipeline
    from neas.train import TrainConfig

    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        lr=lr,  # type: ignore[arg-type]
        label_smoothing=label_smoothing,
        seed=seed,
    )
    result = pipeline.train(
        out=out,
        data=pipeline.DataOptions(source=data, data_dir=data_dir, max_train=max_train, seed=seed),
        space=pipeline.SpaceOptions(
            name=space,
            members=members,
            width_mult=width_mult,
            head_width=head_width,
            feature_width=feature_width,
        ),
        weights=weights,
        config=config,
        shrink=shrink_config(
            at=shrink_at,
            ratio=shrink_ratio,
            diversity_weight=diversity_weight,
            min_ops=min_ops,
            samples=shrink_samples,
            seed=seed,
        ),
        device=device,
        resume=resume,
        force=force,
    )
    s = result.summary
    console.print(
        f"trained {s['epochs']} epochs in {s['train_seconds']:.0f}s on {s['device']}; "
        f"random ensembles: val accuracy mean {s.get('random_val_accuracy_mean', 0):.3f}, "
        f"max {s.get('random_val_accuracy_max', 0):.3f} -> {result.run_dir}"
    )

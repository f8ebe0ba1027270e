"""The ``neas`` commands that set up and train: ``spaces``, ``cost``, ``train``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from neas.cli.common import (
    app,
    console,
    print_config,
    run_config_from,
    user_errors,
)
from neas.cli.options import (
    D_BATCH,
    D_DATA,
    D_DIVERSITY,
    D_EPOCHS,
    D_MIN_OPS,
    D_OPTIMIZER,
    D_SEED,
    D_SHRINK_AT,
    D_SHRINK_RATIO,
    D_SHRINK_SAMPLES,
    D_SMOOTHING,
    D_SPACE,
    D_THREADS,
    D_VAL_FRACTION,
    D_WEIGHTS,
    FLAG,
    BatchOpt,
    DataDirOpt,
    DataOpt,
    DeviceOpt,
    DiversityOpt,
    EmbeddingOpt,
    EpochsOpt,
    FeatureOpt,
    HeadOpt,
    LrOpt,
    MaxTrainOpt,
    MembersOpt,
    MinOpsOpt,
    OptimizerOpt,
    PrintConfigOpt,
    SeedOpt,
    ShrinkAtOpt,
    ShrinkRatioOpt,
    ShrinkSamplesOpt,
    SmoothingOpt,
    SpaceOpt,
    TargetOpt,
    ThreadsOpt,
    ValFractionOpt,
    WeightsOpt,
    WidthOpt,
)
from neas.cli.resume import command_line, kept_options, resume_on_interrupt
from neas.config import PAPER_SPACE, parse_threads
from neas.search_spaces.mbconv import PAPER_CLASSES, PAPER_IMAGE_SIZE, PAPER_IN_CHANNELS


@app.command("spaces")
@user_errors
def spaces_cmd() -> None:
    """List the registered search spaces with their size at their default input."""
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
    space: Annotated[str, typer.Option(help="Registered search space (`neas spaces`).")] = (
        PAPER_SPACE
    ),
    image_size: Annotated[int, typer.Option(help="Input resolution (square).")] = PAPER_IMAGE_SIZE,
    num_classes: Annotated[int, typer.Option(help="Number of classes.")] = PAPER_CLASSES,
    in_channels: Annotated[int, typer.Option(help="Input channels.")] = PAPER_IN_CHANNELS,
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
    from neas.errors import ConfigError, InvalidArchError
    from neas.search_spaces import NEAS_ARCH_LISTS, EnsembleArch, create_space, from_neas_arch_list

    if (neas_arch_list is None) == (arch_file is None):
        raise ConfigError("give exactly one of --neas-arch-list or --arch-file")
    if arch_file is not None:
        if not arch_file.is_file():
            raise ConfigError(f"architecture file {arch_file} does not exist (or is a folder)")
        try:
            data = json.loads(arch_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{arch_file} is not valid JSON: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read {arch_file}: {exc.strerror or exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("members"), list):
            raise ConfigError(
                f"{arch_file} is not a neas architecture: expected a JSON object with "
                "'split', 'shared' and 'members' (see `neas cost --help`)"
            )
        members = len(data["members"]) or None
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
        try:
            arch = EnsembleArch.from_dict(data, s)
        except InvalidArchError as exc:
            raise InvalidArchError(f"{arch_file}: {exc}") from None
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
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    space: SpaceOpt = D_SPACE,
    data: DataOpt = D_DATA,
    data_dir: DataDirOpt = None,
    max_train: MaxTrainOpt = None,
    val_fraction: ValFractionOpt = D_VAL_FRACTION,
    target: TargetOpt = None,
    epochs: EpochsOpt = D_EPOCHS,
    batch_size: BatchOpt = D_BATCH,
    members: MembersOpt = None,
    width_mult: WidthOpt = None,
    head_width: HeadOpt = None,
    feature_width: FeatureOpt = None,
    embedding: EmbeddingOpt = None,
    weights: WeightsOpt = D_WEIGHTS,
    optimizer: OptimizerOpt = D_OPTIMIZER,
    lr: LrOpt = None,
    label_smoothing: SmoothingOpt = D_SMOOTHING,
    shrink_at: ShrinkAtOpt = D_SHRINK_AT,
    shrink_ratio: ShrinkRatioOpt = D_SHRINK_RATIO,
    diversity_weight: DiversityOpt = D_DIVERSITY,
    min_ops: MinOpsOpt = D_MIN_OPS,
    shrink_samples: ShrinkSamplesOpt = D_SHRINK_SAMPLES,
    seed: SeedOpt = D_SEED,
    device: DeviceOpt = None,
    threads: ThreadsOpt = D_THREADS,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.", metavar=FLAG)] = False,
    force: Annotated[bool, typer.Option(help="Start over, clearing --out.", metavar=FLAG)] = False,
    show_config: PrintConfigOpt = False,
) -> None:
    """Train the ensemble supernet, shrinking the space on the way (resumable)."""
    config = run_config_from(locals())
    if show_config:
        print_config(config)
        return
    threads = parse_threads(threads)
    from neas import pipeline  # after the options are checked: bad input needs no torch
    from neas.training.distributed import is_main_process

    if resume and (note := kept_options(ctx, config, out)):
        typer.echo(note)
    with resume_on_interrupt(command_line(ctx, resume=True, force=None)):
        result = pipeline.train(
            out=out, config=config, device=device, threads=threads, resume=resume, force=force
        )
    if not is_main_process():  # under torchrun only rank 0 reports
        return
    s = result.summary
    console.print(
        f"trained {s['epochs']} epochs in {s['train_seconds']:.0f}s on {s['device']}; "
        f"random ensembles: val accuracy mean {s.get('random_val_accuracy_mean', 0):.3f}, "
        f"max {s.get('random_val_accuracy_max', 0):.3f} -> {result.path}"
    )

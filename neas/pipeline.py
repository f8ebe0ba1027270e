"""The orchestration that the CLI and the Python API both call; no printing, no arg parsing.

Stages take plain values and return plain values; everything lands in one run folder:

    run.json, config.json     what this run is (written first)
    space.json                the search space the supernet started from
    supernet.pt               checkpoint after each epoch (model, optimizer, RNG, current space)
    train_summary.json        training history + validation accuracy of random ensembles
    (search stage)            see ``neas.search_stage``
    ensembles/<id>/           exported front ensembles (see ``neas.export``)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neas.data import Dataset, load_dataset
from neas.errors import ConfigError
from neas.evaluate import evaluate_arch
from neas.nn.supernet import WEIGHT_MODES, Supernet
from neas.run import RunDirError, prepare_run_dir, read_json, write_json
from neas.search_spaces import SearchSpace, create_space, sample
from neas.search_stage import SearchOptions, SearchResult, check_budget, load_search, run_search
from neas.shrink import ShrinkConfig, Shrinker
from neas.train import (
    CHECKPOINT,
    TrainConfig,
    TrainState,
    load_checkpoint,
    supernet_from_checkpoint,
    train_supernet,
)

SMALL_IMAGE = 32  # at or below this size the compact preset below applies by default
SMALL_PRESET = {"width_mult": 0.5, "head_width": 256, "feature_width": 256}


def resolve_device(name: str | None) -> torch.device:
    """``None`` -> CUDA when present, else CPU; asking for CUDA without one is an error."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ConfigError(f"unknown device {name!r}; valid: cpu, cuda, cuda:N")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but no CUDA device is available")
    return torch.device(name)


@dataclass(frozen=True)
class DataOptions:
    """Where the data comes from and how it is split."""

    source: str = "digits"
    data_dir: str | None = None
    max_train: int | None = None
    seed: int = 0

    def load(self) -> Dataset:
        return load_dataset(
            self.source, data_dir=self.data_dir, seed=self.seed, max_train=self.max_train
        )


@dataclass(frozen=True)
class SpaceOptions:
    """A registered space and its overrides; ``None`` keeps the space's (or preset's) default.

    Images of at most 32x32 get a compact preset (width 0.5, head 256) unless overridden, so
    the default job runs in minutes on a CPU; the NEAS-exact space is ``width_mult=1``,
    ``head_width=960``, ``feature_width=1280``.
    """

    name: str = "mbconv"
    members: int | None = None
    width_mult: float | None = None
    head_width: int | None = None
    feature_width: int | None = None

    def build(self, dataset: Dataset) -> SearchSpace:
        if self.members is not None and self.members < 1:
            raise ConfigError(f"--members must be at least 1, got {self.members}")
        preset = SMALL_PRESET if dataset.image_size <= SMALL_IMAGE else {}
        chosen = {
            "width_mult": self.width_mult,
            "head_width": self.head_width,
            "feature_width": self.feature_width,
        }
        overrides = {k: (v if v is not None else preset.get(k)) for k, v in chosen.items()}
        return create_space(
            self.name,
            num_members=self.members,
            image_size=dataset.image_size,
            in_channels=dataset.in_channels,
            num_classes=dataset.num_classes,
            **overrides,
        )


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    supernet: Supernet
    state: TrainState
    dataset: Dataset
    summary: dict[str, Any]


def _config_dict(
    data: DataOptions, space: SpaceOptions, weights: str, train: TrainConfig
) -> dict[str, Any]:
    return {
        "data": asdict(data),
        "space": asdict(space),
        "weights": weights,
        "train": asdict(train),
    }


def load_run_config(run_dir: Path) -> tuple[DataOptions, SpaceOptions, str, TrainConfig]:
    cfg = read_json(Path(run_dir) / "config.json")
    return (
        DataOptions(**cfg["data"]),
        SpaceOptions(**cfg["space"]),
        cfg["weights"],
        TrainConfig(**cfg["train"]),
    )


def calibration_images(dataset: Dataset, *, n: int = 512, seed: int = 0) -> torch.Tensor:
    """A fixed random subset of training images for BN recalibration."""
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(dataset.x_train))[:n]
    return torch.from_numpy(dataset.x_train[np.sort(idx)])


def train(
    *,
    out: str | Path,
    data: DataOptions | None = None,
    space: SpaceOptions | None = None,
    weights: str = "entangled",
    config: TrainConfig | None = None,
    shrink: ShrinkConfig | None = None,
    device: str | None = None,
    resume: bool = False,
    force: bool = False,
    eval_samples: int = 8,
    show_progress: bool = True,
) -> TrainResult:
    """Train a supernet into the run folder ``out`` (resumable); see the module docstring.

    >>> result = train(out="runs/demo", config=TrainConfig(epochs=1))  # doctest: +SKIP
    >>> result.summary["random_val_accuracy_mean"]  # doctest: +SKIP
    0.93
    """
    plan = plan_training(
        out=out,
        data=data,
        space=space,
        weights=weights,
        config=config,
        shrink=shrink,
        resume=resume,
    )
    return train_planned(
        plan,
        device=device,
        resume=resume,
        force=force,
        eval_samples=eval_samples,
        show_progress=show_progress,
    )


@dataclass(frozen=True)
class TrainPlan:
    """Everything settled before a run folder is touched: bad input fails here."""

    out: Path
    data: DataOptions
    space: SpaceOptions
    weights: str
    config: TrainConfig
    dataset: Dataset
    search_space: SearchSpace
    resuming: bool
    shrink: ShrinkConfig | None = None


def plan_training(
    *,
    out: str | Path,
    data: DataOptions | None,
    space: SpaceOptions | None,
    weights: str,
    config: TrainConfig | None,
    resume: bool,
    shrink: ShrinkConfig | None = None,
) -> TrainPlan:
    """Read the run's stored settings when resuming, load the data, build the space."""
    if weights not in WEIGHT_MODES:
        raise ConfigError(f"unknown weight mode {weights!r}; valid: {', '.join(WEIGHT_MODES)}")
    out = Path(out)
    resuming = resume and (out / "config.json").exists()
    if resuming:
        data, space, weights, config = load_run_config(out)
        stored = read_json(out / "config.json").get("shrink")
        shrink = ShrinkConfig(**stored) if stored else None
    data, space, config = data or DataOptions(), space or SpaceOptions(), config or TrainConfig()
    dataset = data.load()
    return TrainPlan(
        out, data, space, weights, config, dataset, space.build(dataset), resuming, shrink
    )


def train_planned(
    plan: TrainPlan,
    *,
    device: str | None,
    resume: bool,
    force: bool,
    eval_samples: int = 8,
    show_progress: bool = True,
) -> TrainResult:
    """Run (or resume, or reuse) the training stage of ``plan``."""
    dev = resolve_device(device)
    data, space, weights, config = plan.data, plan.space, plan.weights, plan.config
    dataset, search_space, resuming = plan.dataset, plan.search_space, plan.resuming
    ckpt_path = plan.out / CHECKPOINT
    run = prepare_run_dir(plan.out, resume=resume, force=force)
    if not resuming:
        cfg = _config_dict(data, space, weights, config)
        cfg["shrink"] = asdict(plan.shrink) if plan.shrink is not None else None
        write_json(run / "config.json", cfg)
        write_json(run / "space.json", search_space.to_dict())
    if resuming and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        search_space = SearchSpace.from_json(ckpt["space"])
        if ckpt["epoch"] >= config.epochs and (run / "train_summary.json").exists():
            summary = read_json(run / "train_summary.json")
            net = Supernet(search_space, weights=weights)
            net.load_state_dict(ckpt["model"])
            state = TrainState(epoch=int(ckpt["epoch"]), history=list(ckpt["history"]))
            return TrainResult(run, net.to(dev), state, dataset, summary)
    torch.manual_seed(config.seed)
    supernet = Supernet(search_space, weights=weights)
    t0 = time.perf_counter()
    supernet, state = train_supernet(
        supernet,
        torch.from_numpy(dataset.x_train),
        torch.from_numpy(dataset.y_train),
        config=config,
        device=dev,
        checkpoint=ckpt_path,
        resume=resuming,
        show_progress=show_progress,
        shrink_epochs=plan.shrink.epochs(config.epochs) if plan.shrink else (),
        shrink=(
            Shrinker(
                plan.shrink, dataset=dataset, device=dev, run_dir=run, show_progress=show_progress
            )
            if plan.shrink
            else None
        ),
    )
    train_seconds = time.perf_counter() - t0
    summary = {
        "epochs": state.epoch,
        "train_seconds": train_seconds,
        "history": state.history,
        "device": str(dev),
        "weights": weights,
        "supernet_params": sum(p.numel() for p in supernet.parameters()),
        **random_ensemble_accuracy(supernet, dataset, n=eval_samples, seed=config.seed, device=dev),
    }
    write_json(run / "train_summary.json", summary)
    return TrainResult(run, supernet, state, dataset, summary)


def random_ensemble_accuracy(
    supernet: Supernet, dataset: Dataset, *, n: int, seed: int, device: torch.device
) -> dict[str, float]:
    """Validation accuracy of ``n`` uniformly sampled ensembles (BN recalibrated for each)."""
    if n < 1:
        return {}
    rng = np.random.default_rng([seed, 7919])
    calib = calibration_images(dataset, seed=seed)
    x, y = torch.from_numpy(dataset.x_val), torch.from_numpy(dataset.y_val)
    accs = [
        evaluate_arch(supernet, sample(supernet.space, rng), x_calib=calib, x=x, y=y, device=device)
        for _ in range(n)
    ]
    return {
        "random_val_accuracy_mean": float(np.mean([m.accuracy for m in accs])),
        "random_val_accuracy_max": float(np.max([m.accuracy for m in accs])),
        "random_val_disagreement_mean": float(np.mean([m.disagreement for m in accs])),
        "random_val_samples": n,
    }


def require_trained(run_dir: str | Path) -> Path:
    """The checkpoint path of a run folder, or a one-line error saying there is none."""
    ckpt = Path(run_dir) / CHECKPOINT
    if not ckpt.exists():
        raise RunDirError(f"{run_dir} holds no trained supernet ({CHECKPOINT}); run `neas train`")
    return ckpt


def load_trained(run_dir: str | Path, *, device: str | None = None) -> tuple[Supernet, Dataset]:
    """The trained supernet (over its current, possibly shrunk, space) and data of a run."""
    ckpt = require_trained(run_dir)
    data, _, _, _ = load_run_config(Path(run_dir))
    supernet = supernet_from_checkpoint(load_checkpoint(ckpt))
    return supernet.to(resolve_device(device)), data.load()


@dataclass(frozen=True)
class RunResult:
    """What ``search`` produced: the run folder, training summary and search result."""

    run_dir: Path
    train: TrainResult
    search: SearchResult
    exported: list[Path]


def search(
    *,
    out: str | Path,
    data: DataOptions | None = None,
    space: SpaceOptions | None = None,
    weights: str = "entangled",
    config: TrainConfig | None = None,
    shrink: ShrinkConfig | None = None,
    options: SearchOptions | None = None,
    device: str | None = None,
    resume: bool = False,
    force: bool = False,
    export: bool = True,
    show_progress: bool = True,
) -> RunResult:
    """The main job: train (with shrinking), search, export the front, report.

    Stages already finished in ``out`` are reused with ``resume=True`` (a search with the same
    options is not run again).

    >>> result = search(out="runs/digits", options=SearchOptions(budget="600M"))  # doctest: +SKIP
    >>> result.search.front[["id", "members", "macs", "test_accuracy"]]  # doctest: +SKIP
    """
    options = options or SearchOptions()
    options.validate()
    plan = plan_training(
        out=out,
        data=data,
        space=space,
        weights=weights,
        config=config,
        shrink=shrink,
        resume=resume,
    )
    check_budget(options, plan.search_space)  # before anything is trained or written
    trained = train_planned(
        plan, device=device, resume=resume, force=force, show_progress=show_progress
    )
    result = evolve(
        trained.run_dir,
        options=options,
        device=device,
        resume=resume,
        show_progress=show_progress,
        trained=(trained.supernet, trained.dataset),
    )
    exported = export_front(trained.run_dir, show_progress=show_progress) if export else []
    return RunResult(trained.run_dir, trained, result, exported)


def evolve(
    run_dir: str | Path,
    *,
    options: SearchOptions | None = None,
    device: str | None = None,
    resume: bool = True,
    show_progress: bool = True,
    trained: tuple[Supernet, Dataset] | None = None,
) -> SearchResult:
    """Only the search, on the trained supernet in ``run_dir``."""
    options = options or SearchOptions()
    options.validate()
    run_dir = Path(run_dir)
    supernet, dataset = trained or load_trained(run_dir, device=device)
    check_budget(options, supernet.space)
    previous = load_search(run_dir) if resume else None
    if previous is not None and previous.summary.get("options") == asdict(options):
        return previous
    return run_search(
        run_dir,
        supernet,
        dataset,
        options=options,
        device=resolve_device(device),
        show_progress=show_progress,
    )


def export_front(run_dir: Path, *, show_progress: bool = True) -> list[Path]:
    """Export every front ensemble (ONNX + PyTorch + manifest), verified and timed."""
    from neas.export import export_run

    return export_run(run_dir, select="all", show_progress=show_progress)

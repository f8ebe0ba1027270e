"""The training stage: a supernet trained (the space shrunk on the way) into the run.

Done when the run's ``train`` record matches its configuration (``Run.is_done``); a resumed
run continues from the last epoch's checkpoint. Under a time limit (``clock``) the epochs and
shrink steps are planned from a timed probe when the stage starts (and written into the run's
``config.json``), and training stops after the epoch in which the stage's time runs out.
Under ``torchrun`` (``world``) every rank trains; only rank 0 writes the run folder and shows
progress, and only rank 0's summary has the random ensembles' scores. A stage with
``random_summary=False`` scores none: a search that follows scores its own first generation of
random ensembles (within its budget: the baseline its report shows), so ``neas search`` does not
pay for a second random sample.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import torch

from neas.checkpoint import load_checkpoint, supernet_from_checkpoint
from neas.config import (
    EXPORT_SCORINGS,
    FINAL_EPOCH_COST,
    THREADS,
    TIME_FINAL_MIN_EPOCHS,
    SearchOptions,
)
from neas.data import Dataset
from neas.device import Threads, torch_threads
from neas.errors import NeasError
from neas.evaluate import calibration_images, evaluate_arch
from neas.layout import CHECKPOINT
from neas.limited import probe_seconds
from neas.nn.supernet import Supernet
from neas.run import Run, TrainedRun, resumes
from neas.search_spaces import sample
from neas.shrink import Shrinker
from neas.time_limit import JobClock, plan_epochs
from neas.training import TrainState, train_supernet, training_threads
from neas.training.distributed import World


@dataclass
class TrainStage:
    """Train (or resume, or reuse) the run's supernet on ``device`` with ``threads`` (timed
    for ``auto`` once the run folder and any checkpoint have been checked); then score
    ``summary_samples`` random ensembles if ``random_summary``."""

    name: ClassVar[str] = "train"
    device: torch.device
    resume: bool = False
    force: bool = False
    threads: Threads = THREADS
    show_progress: bool = True
    plots: bool = True
    world: World = field(default_factory=World)
    clock: JobClock | None = None
    random_summary: bool = True

    @staticmethod
    def inputs(run: Run) -> dict[str, Any]:
        return run.config.to_dict()

    def preflight(self, run: Run) -> None:
        run.settle()  # the data's training schedule, where the configuration leaves it open
        run.search_space  # noqa: B018  (builds the space from the data: its errors are here)

    def is_done(self, run: Run) -> bool:
        return (run / CHECKPOINT).is_file() and run.is_done(self.name, self.inputs(run))

    def run(self, run: Run) -> TrainedRun:
        world, dev, clock = self.world, self.device, self.clock
        resuming = resumes(run.path, self.resume)
        prepare_on_main(run, resume=self.resume, force=self.force, resuming=resuming, world=world)
        if clock is not None and world.is_main:
            clock.attach(run.path)
        if resuming and self.is_done(run):
            ckpt_path = run / CHECKPOINT
            ckpt = load_checkpoint(ckpt_path)
            state = TrainState(epoch=int(ckpt["epoch"]), history=list(ckpt["history"]))
            net = supernet_from_checkpoint(ckpt, ckpt_path).to(dev)
            return self._handed_over(run, net, state, run.train_summary() or {}, None)
        # threads are timed only now: bad input (an occupied folder, a damaged checkpoint) has
        # failed
        space = run.search_space
        n_threads = training_threads(
            self.threads, space, run.dataset, config=run.config.train, device=dev
        )
        summary_samples = run.config.train.summary_samples if self.random_summary else 0
        with torch_threads(n_threads):
            if clock is not None:
                plan_training_time(
                    run, clock, device=dev, world=world, summary_samples=summary_samples
                )
            supernet, state, summary = _train(
                run,
                resuming=resuming,
                device=dev,
                show_progress=self.show_progress and world.is_main,
                world=world,
                plots=self.plots,
                stop_when=clock.stopper("train") if clock is not None else None,
                summary_samples=summary_samples,
            )
        if clock is not None:
            clock.end("train", epochs=state.epoch, stopped_early=state.stop)
        if world.is_main:
            run.mark_done(self.name, self.inputs(run), epochs=state.epoch)
        return self._handed_over(run, supernet, state, summary, n_threads)

    @staticmethod
    def _handed_over(
        run: Run,
        supernet: Supernet,
        state: TrainState,
        summary: dict[str, Any],
        threads: int | None,
    ) -> TrainedRun:
        trained = TrainedRun(
            run.path,
            run.config,
            supernet,
            run.dataset,
            state.epoch,
            state.history,
            summary=summary,
            threads=threads,
        )
        run.use_trained(trained)
        return trained


def prepare_on_main(run: Run, *, resume: bool, force: bool, resuming: bool, world: World) -> None:
    """Rank 0 creates (or clears, or reopens) the run folder and writes the configuration;
    the other ranks wait, and raise rank 0's error if it refused (e.g. an occupied folder)."""
    world.barrier()  # every rank has read the folder (preflight) before rank 0 writes
    error: NeasError | None = None
    if world.is_main:
        try:
            Run.create(run.path, resume=resume, force=force)
            if not resuming:  # config.json last: a run with one has all written before it
                run.write_space(run.search_space)
                run.write_config(run.config)
        except NeasError as exc:
            error = exc
    error = world.broadcast(error)
    if error is not None:
        raise error


def plan_training_time(
    run: Run, clock: JobClock, *, device: torch.device, world: World, summary_samples: int
) -> None:
    """Start (or go on with) the training stage under ``clock``; a fresh stage times the
    probe and plans its epochs and shrink steps: the epochs the allowance holds after the
    random-ensemble summary's ``summary_samples`` scorings and as many shrink steps' scorings as
    leave at least as many epochs to shrink at (the later steps are dropped). Rank 0 decides;
    the plan goes into ``config.json``."""
    clock.begin("train")
    epochs = clock.planned("train", "epochs")
    cfg = run.config
    if epochs is None:
        probe = clock.record.get("probe") or probe_seconds(
            run.search_space,
            run.dataset,
            cfg,
            device=device,
            calibration=SearchOptions().calibration_images,
        )
        clock.record["probe"] = probe
        epoch_s = probe["step_s"] * probe["steps_per_epoch"]
        final_s = TIME_FINAL_MIN_EPOCHS * FINAL_EPOCH_COST * run.search_space.num_members
        final_s = final_s * epoch_s + EXPORT_SCORINGS * probe["eval_s"]  # and the export
        if clock.expected("final") < final_s and not clock.skipped("final"):
            clock.skip(
                "final",
                because=f"the least final training and its export would take {final_s:.0f} s",
                running="train",
            )
        left = clock.left("train")
        at = cfg.shrink.at
        for shrinks in range(len(at), -1, -1):  # as many shrink steps as the time pays for
            scorings = summary_samples + shrinks * cfg.shrink.samples
            epochs = plan_epochs(left, epoch_s=epoch_s, fixed_s=scorings * probe["eval_s"])
            if len(cfg.shrink.epochs(epochs)) >= shrinks:
                break
        epochs, at = world.broadcast((epochs, at[:shrinks]))
        clock.plan("train", epochs=epochs, shrink_at=list(at))
    at = tuple(clock.planned("train", "shrink_at") or ())
    if (epochs, at) == (cfg.train.epochs, cfg.shrink.at):
        return
    planned = replace(
        cfg, train=replace(cfg.train, epochs=int(epochs)), shrink=replace(cfg.shrink, at=at)
    )
    if world.is_main:
        run.write_config(planned)
    else:  # the other ranks hold rank 0's plan in memory
        run.adopt_config(planned)


def _train(
    run: Run,
    *,
    resuming: bool,
    device: torch.device,
    show_progress: bool,
    world: World,
    plots: bool = True,
    stop_when: Callable[[], bool] | None = None,
    summary_samples: int = 0,
) -> tuple[Supernet, TrainState, dict[str, Any]]:
    cfg, dataset, dev = run.config, run.dataset, device
    torch.manual_seed(cfg.train.seed)
    supernet = Supernet(run.search_space, weights=cfg.train.weights)
    shrinker = (
        Shrinker(
            cfg.shrink,
            dataset=dataset,
            device=dev,
            run_dir=run.path,
            show_progress=show_progress,
            plot=False,  # drawn once, below
        )
        if cfg.shrink.enabled  # only rank 0 calls it; train_supernet broadcasts the result
        else None
    )
    t0 = time.perf_counter()
    supernet, state = train_supernet(
        supernet,
        torch.from_numpy(dataset.x_train),
        torch.from_numpy(dataset.y_train),
        config=cfg.train,
        device=dev,
        checkpoint=run / CHECKPOINT,
        resume=resuming,
        show_progress=show_progress,
        shrink_epochs=cfg.shrink.epochs(cfg.train.epochs),
        shrink=shrinker,
        world=world,
        stop_when=stop_when,
    )
    if plots and shrinker is not None and world.is_main:
        shrinker.draw()
    summary = {
        "epochs": state.epoch,
        "stopped_by_time_limit": state.stop,
        "train_seconds": time.perf_counter() - t0,
        "history": state.history,
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "weights": cfg.train.weights,
        "supernet_params": sum(p.numel() for p in supernet.parameters()),
        "split_sizes": {
            "train": len(dataset.y_train),
            "val": len(dataset.y_val),
            "test": len(dataset.y_test),
        },
    }
    if world.distributed:
        summary["processes"] = world.size
    if world.is_main:
        summary.update(
            random_ensemble_accuracy(
                supernet,
                dataset,
                n=summary_samples,
                seed=cfg.train.seed,
                device=dev,
                stop_when=stop_when,
            )
        )
        run.write_train_summary(summary)
    return supernet, state, summary


def random_ensemble_accuracy(
    supernet: Supernet,
    dataset: Dataset,
    *,
    n: int,
    seed: int,
    device: torch.device,
    stop_when: Callable[[], bool] | None = None,
) -> dict[str, float]:
    """Validation accuracy, member disagreement and ensemble gain (ensemble accuracy minus
    mean member accuracy) of ``n`` uniformly sampled ensembles (scored as the search scores);
    fewer (perhaps none) when ``stop_when()`` says time is up."""
    rng = np.random.default_rng([seed, 7919])
    calib = calibration_images(dataset, seed=seed)
    x, y = torch.from_numpy(dataset.x_val), torch.from_numpy(dataset.y_val)
    accs = []
    for _ in range(n):
        if stop_when is not None and stop_when():
            break
        arch = sample(supernet.space, rng)
        accs.append(evaluate_arch(supernet, arch, x_calib=calib, x=x, y=y, device=device))
    if not accs:
        return {}
    return {
        "random_val_accuracy_mean": float(np.mean([m.accuracy for m in accs])),
        "random_val_accuracy_max": float(np.max([m.accuracy for m in accs])),
        "random_val_disagreement_mean": float(np.mean([m.disagreement for m in accs])),
        "random_val_ensemble_gain_mean": float(
            np.mean([m.accuracy - np.mean(m.member_accuracy) for m in accs])
        ),
        "random_val_samples": len(accs),
    }

"""Diversity-guided search-space shrinking during supernet training (NEAS, our definition).

At each shrink point (a fraction of training, ``ShrinkConfig.at``) the :class:`Shrinker` samples
M ensembles from the current space, evaluates each on the validation split with inherited
weights (scored as the search scores: ``neas.evaluate.evaluate_arch``), and scores every
(layer, op) still in the space:

- **potentiality** p: mean validation accuracy of the sampled ensembles that use the op at that
  layer, in the trunk or in any member (an ensemble counts once per (layer, op));
- **diversity** d: the mean pairwise member disagreement (fraction of samples whose argmax
  differs) of those same ensembles;
- **score** = z(p) + λ·z(d), with λ = ``diversity_weight`` (λ = 0: potentiality only).

z-normalisation is *global*: the mean and std run over every scored (layer, op) of the space.
Only the order inside a layer decides what is dropped, so a global z keeps one exchange rate
between accuracy and disagreement for the whole network; a per-layer z would turn a layer's
noise into unit spread and, with two or three ops left, reduce each term to about ±1 whatever
the gap. Ops that no sampled ensemble used get no score and are kept.

Each step drops ``floor(ratio * n_ops)`` of a layer's lowest-scoring ops (skip counts as an op),
never going below ``min_ops`` and never removing the last non-skip op; ``shrink_supernet``
then frees the dropped ops' weights (separate) or shrinks the shared weight set when its largest
kernel or expansion went (entangled).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neas.config import ShrinkConfig
from neas.data import Dataset
from neas.evaluate import calibration_images, evaluate_arch
from neas.files import read_json, write_json
from neas.layout import SHRINK_HISTORY, SHRINK_PLOT
from neas.nn.supernet import Supernet
from neas.nn.surgery import num_params, shrink_supernet
from neas.plots import plot_shrink_history
from neas.progress import make_progress
from neas.search_spaces.arch import EnsembleArch, sample
from neas.search_spaces.spec import SKIP, SearchSpace

__all__ = [
    "OpScore",
    "ShrinkRecord",
    "Shrinker",
    "drop_budget",
    "ops_used",
    "score_ops",
    "select_drops",
    "shrink_space",
    "shrink_supernet",
]


@dataclass(frozen=True)
class ShrinkRecord:
    """One sampled ensemble: its architecture, validation accuracy and member disagreement."""

    arch: EnsembleArch
    accuracy: float
    disagreement: float


@dataclass(frozen=True)
class OpScore:
    """A (layer, op)'s potentiality, diversity, combined score and how many ensembles used it."""

    potentiality: float
    diversity: float
    score: float
    n: int


def ops_used(arch: EnsembleArch, layer: int) -> set[int]:
    """The ops ``arch`` runs at ``layer``: the trunk's, or every member's."""
    if layer < arch.split:
        return {arch.shared[layer]}
    return {m[layer - arch.split] for m in arch.members}


def _z(values: np.ndarray) -> np.ndarray:
    std = values.std()
    return (values - values.mean()) / std if std > 1e-12 else np.zeros_like(values)


def score_ops(
    records: Sequence[ShrinkRecord], space: SearchSpace, *, diversity_weight: float
) -> dict[tuple[int, int], OpScore]:
    """Score every (layer, op) of ``space`` from sampled ensembles (globally z-normalised).

    Ops no record used get ``n=0`` and NaN values (the caller keeps them).

    >>> from neas.search_spaces import create_space
    >>> space = create_space("mbconv", image_size=8, in_channels=1, num_classes=10)
    >>> a = EnsembleArch(split=20, shared=(0,) * 20, members=((), ()))
    >>> b = EnsembleArch(split=20, shared=(1,) * 20, members=((), ()))
    >>> s = score_ops([ShrinkRecord(a, 0.9, 0.0), ShrinkRecord(b, 0.7, 0.0)], space,
    ...               diversity_weight=1.0)
    >>> s[(0, 0)].score > s[(0, 1)].score, s[(0, 2)].n
    (True, 0)
    """
    keys = [(i, op) for i, layer in enumerate(space.layers) for op in layer.candidates]
    acc = {k: [] for k in keys}
    div = {k: [] for k in keys}
    for r in records:
        for i in range(space.num_layers):
            for op in ops_used(r.arch, i):
                if (i, op) in acc:
                    acc[(i, op)].append(r.accuracy)
                    div[(i, op)].append(r.disagreement)
    seen = [k for k in keys if acc[k]]
    p = np.array([np.mean(acc[k]) for k in seen])
    d = np.array([np.mean(div[k]) for k in seen])
    score = _z(p) + diversity_weight * _z(d) if seen else p
    out = {k: OpScore(math.nan, math.nan, math.nan, 0) for k in keys}
    for k, pk, dk, sk in zip(seen, p, d, score):
        out[k] = OpScore(float(pk), float(dk), float(sk), len(acc[k]))
    return out


def drop_budget(n_ops: int, *, ratio: float, min_ops: int) -> int:
    """How many of a layer's ``n_ops`` ops one step may drop: ``floor(ratio * n)``, floored
    so that ``min_ops`` remain.

    >>> drop_budget(7, ratio=0.25, min_ops=2), drop_budget(2, ratio=0.9, min_ops=2)
    (1, 0)
    """
    return max(0, min(math.floor(ratio * n_ops + 1e-9), n_ops - min_ops))


def select_drops(
    candidates: Sequence[int], scores: Sequence[float], *, ratio: float, min_ops: int
) -> tuple[int, ...]:
    """The ops to drop from one layer: ``floor(ratio * n)`` lowest scores, NaN scores kept.

    Never leaves fewer than ``min_ops`` ops or no non-skip op; ties go to the later op.

    >>> select_drops([0, 1, 2, -1], [0.5, -1.0, 2.0, -3.0], ratio=0.5, min_ops=2)
    (-1, 1)
    """
    n = len(candidates)
    budget = drop_budget(n, ratio=ratio, min_ops=min_ops)
    order = sorted(
        (i for i in range(n) if not math.isnan(scores[i])), key=lambda i: (scores[i], -i)
    )
    dropped: list[int] = []
    for i in order:
        if len(dropped) >= budget:
            break
        left = [c for c in candidates if c not in dropped and c != candidates[i]]
        if any(c != SKIP for c in left):
            dropped.append(candidates[i])
    return tuple(dropped)


def shrink_space(
    space: SearchSpace,
    scores: dict[tuple[int, int], OpScore],
    *,
    ratio: float,
    min_ops: int,
) -> tuple[SearchSpace, tuple[tuple[int, ...], ...]]:
    """The space without each layer's dropped ops, and the dropped ops per layer."""
    drops = tuple(
        select_drops(
            layer.candidates,
            [scores[(i, op)].score for op in layer.candidates],
            ratio=ratio,
            min_ops=min_ops,
        )
        for i, layer in enumerate(space.layers)
    )
    kept = tuple(
        tuple(c for c in layer.candidates if c not in drop)
        for layer, drop in zip(space.layers, drops)
    )
    return space.with_candidates(kept), drops


class Shrinker:
    """The ``neas.training.ShrinkHook`` that shrinks the space at each shrink point.

    Example (not run as a doctest: it trains or needs a run folder)::

        cfg = ShrinkConfig(at=(0.5,))
        hook = Shrinker(cfg, dataset=ds, device="cpu", run_dir=None)
        train_supernet(net, x, y, config=tc, shrink_epochs=cfg.epochs(tc.epochs), shrink=hook)
    """

    def __init__(
        self,
        config: ShrinkConfig,
        *,
        dataset: Dataset,
        device: torch.device | str = "cpu",
        run_dir: Path | str | None = None,
        show_progress: bool = True,
        plot: bool = True,
    ) -> None:
        self.config, self.dataset, self.device = config, dataset, torch.device(device)
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.show_progress, self.plot = show_progress, plot
        self.x_calib = calibration_images(dataset, seed=config.seed)
        self.x_val = torch.from_numpy(dataset.x_val)
        self.y_val = torch.from_numpy(dataset.y_val)

    def evaluate(self, supernet: Supernet, epochs_done: int) -> list[ShrinkRecord]:
        """Sample and evaluate ``config.samples`` ensembles (seeded by seed and epoch)."""
        rng = np.random.default_rng([self.config.seed, epochs_done, 4242])
        archs = [sample(supernet.space, rng) for _ in range(self.config.samples)]
        records = []
        with make_progress(show=self.show_progress) as progress:
            task = progress.add_task(f"shrink @ epoch {epochs_done}", total=len(archs), info="")
            for arch in archs:
                kw = {"x_calib": self.x_calib, "x": self.x_val, "y": self.y_val}
                m = evaluate_arch(supernet, arch, device=self.device, **kw)
                records.append(ShrinkRecord(arch, m.accuracy, m.disagreement))
                progress.update(task, advance=1, info=f"acc {m.accuracy:.3f}")
        return records

    def __call__(self, supernet: Supernet, epochs_done: int) -> Supernet:
        cfg, t0 = self.config, time.perf_counter()
        space = supernet.space
        n_ops = [len(layer.candidates) for layer in space.layers]
        if not any(drop_budget(n, ratio=cfg.ratio, min_ops=cfg.min_ops) for n in n_ops):
            # nothing may be dropped any more: skip the evaluations
            return supernet
        with torch.random.fork_rng(devices=[]):  # leave training's RNG stream untouched
            records = self.evaluate(supernet, epochs_done)
        scores = score_ops(records, space, diversity_weight=cfg.diversity_weight)
        new_space, drops = shrink_space(space, scores, ratio=cfg.ratio, min_ops=cfg.min_ops)
        shrunk = shrink_supernet(supernet, new_space)
        step = {
            "epoch": epochs_done,
            "seconds": time.perf_counter() - t0,
            "log10_size_before": space.log10_size(),
            "log10_size_after": new_space.log10_size(),
            "params_before": num_params(supernet),
            "params_after": num_params(shrunk),
            "sampled_accuracy_mean": float(np.mean([r.accuracy for r in records])),
            "sampled_disagreement_mean": float(np.mean([r.disagreement for r in records])),
            "layers": [
                {
                    "layer": i,
                    "ops": [
                        {
                            "op": space.op_name(op),
                            **{k: _num(getattr(scores[(i, op)], k)) for k in _FIELDS},
                            "kept": op not in drops[i],
                        }
                        for op in layer.candidates
                    ],
                }
                for i, layer in enumerate(space.layers)
            ],
            "samples": [
                {
                    "arch": r.arch.to_dict(space),
                    "accuracy": r.accuracy,
                    "disagreement": r.disagreement,
                }
                for r in records
            ],
        }
        if self.run_dir is not None:
            self.record(step)
        return shrunk

    def record(self, step: dict[str, Any]) -> None:
        """Add ``step`` to the history (replacing a step of the same epoch) and redraw the plot
        (unless the hook was made with ``plot=False``)."""
        path = self.run_dir / SHRINK_HISTORY
        history = read_json(path) if path.exists() else {"format": 1, "steps": []}
        steps = [s for s in history["steps"] if s["epoch"] != step["epoch"]] + [step]
        history["config"] = asdict(self.config)
        history["steps"] = sorted(steps, key=lambda s: s["epoch"])
        write_json(path, history)
        if self.plot:
            self.draw()

    def draw(self) -> None:
        """Draw the history's plot (``SHRINK_PLOT``), if there is a history to draw: the
        training stage draws it once after training (1-2 s a drawing), not after every step."""
        path = None if self.run_dir is None else self.run_dir / SHRINK_HISTORY
        if path is not None and path.exists():
            plot_shrink_history(read_json(path), self.run_dir / SHRINK_PLOT)


_FIELDS = ("potentiality", "diversity", "score", "n")


def _num(v: float | int) -> float | int | None:
    return None if isinstance(v, float) and math.isnan(v) else v

"""BN recalibration, member logits and vectorised ensemble metrics.

Evaluating an architecture with inherited supernet weights needs BN statistics of *that*
architecture: ``recalibrate_bn`` resets every BN layer and re-estimates its running statistics
(a cumulative average) on a fixed subset of training images (``calibration_images``). It
overwrites the supernet's running stats, which are meaningless for a supernet anyway (training
uses batch statistics).

The search's score (``evaluate_arch``) skips that pass when the validation split holds images
and no more than the calibration subset (``scores_in_one_batch``: digits): the split goes
through in one batch whose BN layers normalise by the statistics of that batch itself, one
forward pass instead of two. On the digits main job's searches (``benchmarks/calibration.py``,
three seeds, 63 ensembles each) it ranks the ensembles as the 512-image calibration it replaces
does: Kendall tau 0.63 against 0.58 versus recalibration on every training image, 0.31 against
0.32 versus their test accuracy, in 0.61x the seconds. Tables keep the calibration: on the 18
real tables (three seeds) the same rule measured -0.07 points of accuracy and log-loss 0.358 ->
0.361.

``calibrate_ensemble`` goes one step further: the static network of an architecture with its
recalibrated statistics and its member logits on the evaluation splits. The search computes
it for every front ensemble (their test accuracy) and hands it to the export, which then
neither recalibrates nor recomputes logits (``CalibratedEnsemble``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from neas.config import CALIBRATION_IMAGES, EVAL_BATCH_CPU, EVAL_BATCH_CUDA
from neas.data import Dataset
from neas.nn.dynamic import PathBatchNorm2d
from neas.nn.ensemble import build_ensemble
from neas.nn.layers import EnsembleNet
from neas.nn.supernet import Supernet
from neas.search_spaces.arch import EnsembleArch


def calibration_images(
    dataset: Dataset, *, n: int = CALIBRATION_IMAGES, seed: int = 0
) -> torch.Tensor:
    """A fixed random subset of ``n`` training images (in index order) for BN recalibration.

    >>> from neas.data import load_dataset
    >>> tuple(calibration_images(load_dataset("digits"), n=100).shape)
    (100, 1, 8, 8)
    """
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(dataset.x_train))[:n]
    return torch.from_numpy(dataset.x_train[np.sort(idx)])


def eval_batch_size(device: torch.device | str) -> int:
    """Images per no-gradient forward on ``device``.

    >>> eval_batch_size("cpu"), eval_batch_size("cuda")
    (128, 1024)
    """
    return EVAL_BATCH_CUDA if torch.device(device).type == "cuda" else EVAL_BATCH_CPU


def _batches(x: np.ndarray | torch.Tensor, batch_size: int | None, device: torch.device | str):
    for xb in torch.as_tensor(x).split(batch_size or eval_batch_size(device)):
        xb = xb.to(device, non_blocking=True)
        yield xb.contiguous(memory_format=torch.channels_last) if xb.ndim == 4 else xb


@contextmanager
def _estimating_bn(supernet: Supernet) -> Iterator[None]:
    """Every BN layer normalising by batch statistics and accumulating them afresh (a
    cumulative average), dropout off; the modes and momenta as they were afterwards."""
    bns = [m for m in supernet.modules() if isinstance(m, (PathBatchNorm2d, nn.BatchNorm2d))]
    saved = [m.momentum for m in bns]
    was_training = supernet.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    supernet.eval()  # dropout off: statistics of what evaluation runs
    for m in bns:
        m.train()
    try:
        yield
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom
        supernet.train(was_training)


@torch.no_grad()
def recalibrate_bn(
    supernet: Supernet,
    arch: EnsembleArch,
    x: torch.Tensor,
    *,
    batch_size: int | None = None,
    device: torch.device | str = "cpu",
) -> None:
    """Re-estimate every BN layer's running statistics for ``arch`` on the images ``x``."""
    with _estimating_bn(supernet):
        for xb in _batches(x, batch_size, device):
            supernet(xb, arch)


@torch.no_grad()
def member_logits(
    model: Supernet,
    arch: EnsembleArch,
    x: torch.Tensor,
    *,
    batch_size: int | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Eval-mode logits of every member: a float tensor of shape (K, N, classes) on the CPU."""
    was_training = model.training
    model.eval()
    try:
        parts = [
            torch.stack([t.float() for t in model(xb, arch)]).cpu()
            for xb in _batches(x, batch_size, device)
        ]
    finally:
        model.train(was_training)
    return torch.cat(parts, dim=1)


@torch.no_grad()
def ensemble_logits(
    net: EnsembleNet,
    x: np.ndarray | torch.Tensor,
    *,
    batch_size: int | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Eval-mode logits of every member of a static ensemble: float (K, N, classes), CPU."""
    was_training = net.training
    net.eval()
    try:
        parts = [
            torch.stack([t.float() for t in net.member_logits(xb)]).cpu()
            for xb in _batches(x, batch_size, device)
        ]
    finally:
        net.train(was_training)
    return torch.cat(parts, dim=1)


@dataclass(frozen=True)
class EnsembleMetrics:
    """Ensemble accuracy, NLL and ECE; mean pairwise member disagreement; member accuracies."""

    accuracy: float
    nll: float
    ece: float
    disagreement: float
    member_accuracy: tuple[float, ...]

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["member_accuracy"] = list(self.member_accuracy)
        return d


def disagreement(predictions: torch.Tensor) -> float:
    """Mean over member pairs of the fraction of samples whose argmax differs; (K, N) ints."""
    k = predictions.shape[0]
    if k < 2:
        return 0.0
    differ = predictions[:, None, :] != predictions[None, :, :]  # (K, K, N)
    return float(differ.float().mean(-1).sum() / (k * (k - 1)))


def expected_calibration_error(probs: torch.Tensor, y: torch.Tensor, bins: int = 15) -> float:
    """ECE with ``bins`` equal-width confidence bins."""
    conf, pred = probs.max(-1)
    correct = (pred == y).float()
    idx = torch.clamp((conf * bins).long(), max=bins - 1)
    conf_sum = torch.bincount(idx, weights=conf, minlength=bins)
    acc_sum = torch.bincount(idx, weights=correct, minlength=bins)
    return float((conf_sum - acc_sum).abs().sum() / len(y))


def ensemble_metrics(logits: torch.Tensor, y: torch.Tensor | np.ndarray) -> EnsembleMetrics:
    """Metrics of member logits (K, N, C) against labels (N,); members averaged as probabilities.

    >>> logits = torch.tensor([[[2.0, 0.0], [0.0, 2.0]], [[2.0, 0.0], [2.0, 0.0]]])
    >>> m = ensemble_metrics(logits, torch.tensor([0, 1]))
    >>> m.member_accuracy, m.disagreement
    ((1.0, 0.5), 0.5)
    """
    y = torch.as_tensor(y, dtype=torch.long)
    probs_m = logits.float().softmax(-1)
    probs = probs_m.mean(0)
    preds = logits.argmax(-1)
    nll = -torch.log(probs.gather(1, y[:, None]).clamp_min(1e-12)).mean()
    return EnsembleMetrics(
        accuracy=float((probs.argmax(-1) == y).float().mean()),
        nll=float(nll),
        ece=expected_calibration_error(probs, y),
        disagreement=disagreement(preds),
        member_accuracy=tuple(float(a) for a in (preds == y[None]).float().mean(-1)),
    )


@dataclass(frozen=True)
class CalibratedEnsemble:
    """An architecture's static network, BN recalibrated on ``calibration`` = (images, seed) of
    ``calibration_images``, and its eval-mode member logits per split (``"val"``, ``"test"``:
    float (K, N, classes) on the CPU). ``arch`` is the architecture's JSON in its space.

    What ``neas.deploy.export_ensemble`` would compute itself for that architecture and
    calibration on the same supernet (``calibrate_ensemble``), so it takes it as it is.
    """

    arch: str
    calibration: tuple[int, int]
    net: EnsembleNet
    logits: dict[str, torch.Tensor]


def bn_statistics(supernet: Supernet) -> dict[str, torch.Tensor]:
    """A copy of the running statistics of every BN layer (what ``recalibrate_bn`` left)."""
    return {
        f"{name}.{key}": buf.detach().clone()
        for name, m in supernet.named_modules()
        if isinstance(m, (PathBatchNorm2d, nn.BatchNorm2d))
        for key, buf in m.named_buffers(recurse=False)
    }


@torch.no_grad()
def load_bn_statistics(supernet: Supernet, statistics: dict[str, torch.Tensor]) -> None:
    """Put back statistics that ``bn_statistics`` copied from this supernet."""
    buffers = dict(supernet.named_buffers())
    for key, value in statistics.items():
        buffers[key].copy_(value)


def calibrate_ensemble(
    supernet: Supernet,
    arch: EnsembleArch,
    *,
    x_calib: torch.Tensor,
    calibration: tuple[int, int],
    splits: dict[str, torch.Tensor | np.ndarray],
    device: torch.device | str = "cpu",
    statistics: dict[str, torch.Tensor] | None = None,
) -> CalibratedEnsemble:
    """Recalibrate BN for ``arch`` on ``x_calib`` (the ``calibration`` = (images, seed) subset),
    extract its static network and compute that network's member logits on every split.

    ``statistics``: what ``bn_statistics`` copied right after ``recalibrate_bn`` did the same
    for ``arch`` on this supernet (the search's scoring); they are put back instead, which
    gives the same statistics without the forward passes.
    """
    if statistics is None:
        recalibrate_bn(supernet, arch, x_calib, device=device)
    else:
        load_bn_statistics(supernet, statistics)
    net = build_ensemble(supernet, arch).eval()
    logits = {name: ensemble_logits(net, x, device=device) for name, x in splits.items()}
    return CalibratedEnsemble(arch.to_json(supernet.space), calibration, net, logits)


@torch.no_grad()
def own_statistics_logits(
    supernet: Supernet, arch: EnsembleArch, x: torch.Tensor, *, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Member logits (K, N, classes; CPU) of ``x`` in one batch whose BN layers normalise by
    that batch's own statistics (left in the running statistics), dropout off."""
    with _estimating_bn(supernet):
        (xb,) = _batches(x, len(x), device)
        return torch.stack([t.float() for t in supernet(xb, arch)]).cpu()


def scores_in_one_batch(x: torch.Tensor | np.ndarray, calibration: int) -> bool:
    """Whether ``evaluate_arch`` scores the split ``x`` in one batch normalised by its own
    statistics instead of recalibrating on ``calibration`` images first: when ``x`` holds
    images (each channel's statistics then pool every pixel of every image), more than one and
    no more than ``calibration`` (the one pass then costs less than the calibration alone). A
    table's rows (N x F x 1 x 1) give a statistic one value a row: recalibrated, as before.

    >>> def split(n, side):
    ...     return np.zeros((n, 1, side, side))
    >>> sizes = [(360, 8), (12_000, 28), (1, 8), (90, 1)]
    >>> [scores_in_one_batch(split(n, side), 512) for n, side in sizes]
    [True, False, False, False]
    """
    return 1 < len(x) <= calibration and math.prod(x.shape[2:]) > 1


@torch.no_grad()
def evaluate_arch(
    supernet: Supernet,
    arch: EnsembleArch,
    *,
    x_calib: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor | np.ndarray,
    device: torch.device | str = "cpu",
) -> EnsembleMetrics:
    """The search's score of ``arch`` on (``x``, ``y``): with ``scores_in_one_batch``, one
    pass over ``x`` whose BN layers normalise by its own statistics; else BN recalibrated on
    ``x_calib``, then eval-mode logits. Either way the supernet's BN statistics are left
    overwritten (by those of ``x`` or of ``x_calib``)."""
    if scores_in_one_batch(x, len(x_calib)):
        logits = own_statistics_logits(supernet, arch, x, device=device)
    else:
        recalibrate_bn(supernet, arch, x_calib, device=device)
        logits = member_logits(supernet, arch, x, device=device)
    return ensemble_metrics(logits, y)

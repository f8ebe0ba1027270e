"""The search's score of an ensemble on the trained digits supernet (``neas.evaluate``)."""

from __future__ import annotations

import numpy as np
import torch

from neas.evaluate import (
    calibration_images,
    ensemble_metrics,
    evaluate_arch,
    member_logits,
    recalibrate_bn,
)
from neas.nn.dynamic import PathBatchNorm2d
from neas.run import open_trained
from neas.search_spaces import sample


def _setup(trained_run):
    run = open_trained(trained_run)
    net, ds = run.supernet.eval(), run.dataset
    x, y = torch.from_numpy(ds.x_val), torch.from_numpy(ds.y_val)
    archs = [sample(net.space, np.random.default_rng(i)) for i in range(3)]
    return net, ds, x, y, archs


def test_a_small_split_is_scored_under_its_own_bn_statistics(trained_run) -> None:
    """Validation no larger than the calibration subset: one pass, normalised by the split's
    own statistics; the same score as recalibrating on the split itself and then evaluating,
    and not the score of a recalibration on training images."""
    net, ds, x, y, archs = _setup(trained_run)
    x, y = x[:200], y[:200]  # the tiny run trains on 300 images
    calib = calibration_images(ds, n=len(x) + 1, seed=0)
    momenta = {m: m.momentum for m in net.modules() if isinstance(m, PathBatchNorm2d)}
    for arch in archs:
        got = evaluate_arch(net, arch, x_calib=calib, x=x, y=y)
        assert not net.training and {m: m.momentum for m in momenta} == momenta
        recalibrate_bn(net, arch, x, batch_size=len(x))
        own = ensemble_metrics(member_logits(net, arch, x), y)
        # not equal: eval mode divides by the unbiased variance, the batch by the biased one
        assert abs(got.nll - own.nll) < 1e-4 * own.nll
        recalibrate_bn(net, arch, calib)
        train_stats = ensemble_metrics(member_logits(net, arch, x), y)
        assert abs(got.nll - own.nll) < abs(got.nll - train_stats.nll) / 3


def test_a_large_split_is_scored_after_recalibration(trained_run) -> None:
    """More validation images than calibration images: BN recalibrated on the calibration
    images, then eval-mode logits, exactly."""
    net, ds, x, y, archs = _setup(trained_run)
    calib = calibration_images(ds, n=len(x) // 2, seed=0)
    for arch in archs:
        got = evaluate_arch(net, arch, x_calib=calib, x=x, y=y)
        recalibrate_bn(net, arch, calib)
        assert got == ensemble_metrics(member_logits(net, arch, x), y)

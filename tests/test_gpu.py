"""The main job on CUDA (skipped without a GPU): bfloat16 autocast training, shrinking, the
search with a latency table timed on the GPU, and the export with its ONNX check.

CUDA convolutions run in TF32 by default, so the CUDA supernet and the exported CPU model agree
to about 1e-3, not 1e-6; the exported model must equal the static ensemble built from the
supernet (BN recalibrated on the GPU, as the export does), moved to the CPU.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from neas.checkpoint import load_checkpoint
from neas.config import FINAL_INITS, SearchOptions, ShrinkConfig
from neas.deploy import load_ensemble
from neas.evaluate import calibration_images, recalibrate_bn
from neas.files import read_json
from neas.nn import build_ensemble
from neas.pipeline import search
from neas.run import open_trained
from neas.search_spaces import EnsembleArch
from tests.conftest import tiny_run

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def main_job_on(device: str, out: Path) -> None:
    """Run the tiny main job on ``device`` and check what it wrote (also runs on "cpu")."""
    config = tiny_run(epochs=2, summary_samples=2, shrink=ShrinkConfig(at=(0.5,), samples=3))
    options = SearchOptions(population=4, generations=1, latency=True)
    result = search(out=out, config=config, options=options, device=device, show_progress=False)
    assert result is not None
    summary = read_json(out / "train_summary.json")
    assert summary["device"] == device and summary["epochs"] == 2
    assert all(np.isfinite(h["loss"]) for h in summary["history"])
    ckpt = load_checkpoint(out / "supernet.pt")
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values() if t.is_floating_point())
    assert len(read_json(out / "shrink_history.json")["steps"]) == 1
    assert read_json(out / "latency_table.json")["device"] == device
    front = pd.read_csv(out / "pareto.csv")
    assert len(front) >= 1
    folder = out / "ensembles" / str(front["id"].iloc[0])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["onnx"]["parity_max_abs_diff"] <= 1e-4  # ONNX Runtime == the CPU network
    assert (folder / "model.onnx").stat().st_size > 0

    # the exported model is the supernet's ensemble for that architecture
    run = open_trained(out, device=device)
    arch = EnsembleArch.from_json(str(front["arch"].iloc[0]), run.space)
    calib = calibration_images(run.dataset, seed=run.config.train.seed)
    recalibrate_bn(run.supernet, arch, calib, device=device)
    net = build_ensemble(run.supernet, arch).eval()
    x = torch.from_numpy(run.dataset.x_val[:128])
    with torch.no_grad():
        on_device = net(x.to(device)).float().cpu()
        on_cpu = net.to("cpu", memory_format=torch.contiguous_format)(x)
    exported = load_ensemble(folder / "model.pt").predict_proba(x).cpu()
    np.testing.assert_allclose(exported.numpy(), on_cpu.numpy(), atol=1e-5)
    np.testing.assert_allclose(exported.numpy(), on_device.numpy(), atol=2e-2)
    assert (exported.argmax(-1) == on_device.argmax(-1)).float().mean() >= 0.95


@needs_cuda
def test_main_job_on_cuda(tmp_path) -> None:
    main_job_on("cuda", tmp_path / "run")


@needs_cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
@pytest.mark.slow
def test_torchrun_trains_on_two_gpus_with_nccl(tmp_path) -> None:
    from tests.test_ddp import _torchrun

    out = tmp_path / "run"
    done = _torchrun(
        "train", "--device", "cuda", "--epochs", "2", "--max-train", "192", "--batch-size",
        "32", "--width-mult", "0.25", "--head-width", "32", "--feature-width", "32",
        "--shrink-at", "0.5", "--shrink-samples", "3", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = read_json(out / "train_summary.json")
    assert summary["processes"] == 2 and summary["device"] == "cuda:0"
    assert os.path.getsize(out / "supernet.pt") > 0


@needs_cuda
@pytest.mark.parametrize("init", FINAL_INITS)
def test_every_final_init_starts_a_network_on_cuda(init: str) -> None:
    """The final stage's starting weights are made beside a network already on the GPU (the
    export builds it on the supernet's device): every init leaves it whole on that device."""
    from neas.deploy.final import initialise
    from neas.nn.builder import static_ensemble
    from neas.search_spaces import create_space, sample

    space = create_space("mlp", in_channels=6, num_classes=3, width_mult=0.125)
    arch = sample(space, np.random.default_rng(0))
    net = initialise(static_ensemble(space, arch).cuda(), space, arch, init=init, seed=0)
    assert all(p.is_cuda for p in net.parameters())
    assert torch.isfinite(net.cuda()(torch.randn(4, 6, 1, 1, device="cuda"))).all()

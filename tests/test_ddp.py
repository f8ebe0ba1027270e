"""Data-parallel training (``neas.training.distributed``) on CPU with gloo.

Two processes with global batch B must train the weights a one-process run with batch B trains.
Two things differ by design, and the one-process reference (``RankChunks``) reproduces them: it
runs the supernet on each rank's B/2-row chunk in turn, because each rank's BatchNorm normalises
its own rows (it keeps rank 0's running statistics, the ones rank 0 saves; SyncBatchNorm does
not apply: ``PathBatchNorm2d`` keeps statistics per path and slices channels), and it draws each
chunk's dropout masks from that rank's generator (seeded per epoch by ``rank_seed``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from neas.checkpoint import load_checkpoint
from neas.config import TrainConfig
from neas.data import load_dataset
from neas.errors import ConfigError
from neas.files import read_json
from neas.nn import Supernet
from neas.nn.surgery import shrink_supernet
from neas.search_spaces import EnsembleArch, SearchSpace
from neas.training import train_supernet
from neas.training.distributed import World, data_parallel, rank_seed, world_from_env
from neas.training.loop import fit
from tests.conftest import tiny_space

RANKS = 2
CONFIG = TrainConfig(epochs=2, batch_size=32, seed=3, optimizer="sgd")
ROWS = 192
STEPS = ROWS // CONFIG.batch_size
#: Measured with SGD: at most 1.2e-6 (a BN running variance; the order in which the averaged
#: gradient is summed). With AdamW a parameter whose gradient is near zero can move by up to a
#: learning rate one way or the other (Adam normalises the rounding), so the test uses SGD.
ATOL = 1e-5
ROOT = Path(__file__).resolve().parents[1]


class RankChunks(nn.Module):
    """The one-process reference: the supernet run on each rank's chunk of the batch in turn,
    with that rank's dropout generator (BN statistics per chunk, running statistics kept from
    chunk 0, as rank 0 keeps them)."""

    def __init__(self, net: Supernet, calls: int = 0) -> None:
        super().__init__()
        self.net, self.calls, self.rng = net, calls, [torch.get_rng_state()] * RANKS

    @property
    def space(self) -> SearchSpace:
        return self.net.space

    def forward(self, x: torch.Tensor, arch: EnsembleArch) -> list[torch.Tensor]:
        epoch, step = divmod(self.calls, STEPS)
        self.calls += 1
        if step == 0:  # fit reseeds every rank at the start of an epoch
            self.rng = [torch.manual_seed(rank_seed(CONFIG.seed, epoch, r)).get_state()
                        for r in range(RANKS)]  # fmt: skip
        outs, rank0 = [], []
        for r, chunk in enumerate(x.chunk(RANKS)):
            torch.set_rng_state(self.rng[r])
            outs.append(self.net(chunk, arch))
            self.rng[r] = torch.get_rng_state()
            if r == 0:
                rank0 = [b.clone() for b in self.net.buffers()]
        for b, kept in zip(self.net.buffers(), rank0):
            b.data.copy_(kept)  # .data: autograd saved these views, but backward does not read them
        return [torch.cat(member) for member in zip(*outs)]


def shrink_hook(model: nn.Module, epochs_done: int) -> nn.Module:
    """A fixed shrink: keep each layer's first three candidates (crops the entangled weights)."""
    net = model.net if isinstance(model, RankChunks) else model
    kept = tuple(layer.candidates[:3] for layer in net.space.layers)
    shrunk = shrink_supernet(net, net.space.with_candidates(kept))
    return RankChunks(shrunk, model.calls) if isinstance(model, RankChunks) else shrunk


def data() -> tuple[torch.Tensor, torch.Tensor]:
    ds = load_dataset("digits", seed=0)
    return torch.from_numpy(ds.x_train[:ROWS]), torch.from_numpy(ds.y_train[:ROWS])


def fresh() -> Supernet:
    torch.manual_seed(0)
    return Supernet(tiny_space(), weights="entangled")


def _worker(rank: int, port: int, out: str) -> None:
    env = {"RANK": str(rank), "WORLD_SIZE": str(RANKS), "LOCAL_RANK": str(rank)}
    os.environ.update(env, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    x, y = data()
    ckpt = Path(out) / "ckpt.pt"
    with data_parallel(torch.device("cpu")) as (world, device):
        assert world == World(rank=rank, size=RANKS, local_rank=rank)
        kw = dict(config=CONFIG, checkpoint=ckpt, show_progress=False, world=world)
        kw |= dict(shrink_epochs=(1,), shrink=shrink_hook)
        # rank 0's weights win: rank 1's different start must not matter
        net = fresh() if rank == 0 else Supernet(tiny_space(), weights="entangled")
        train_supernet(net, x, y, stop_after=1, **kw)  # as if killed after epoch 1
        world.barrier()  # rank 0 has written the checkpoint
        net, state = train_supernet(fresh(), x, y, resume=True, **kw)
    torch.save({"model": net.state_dict(), "history": state.history}, Path(out) / f"{rank}.pt")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_ranks_train_what_one_process_trains(tmp_path) -> None:
    """Two ranks (killed after epoch 1, resumed, shrunk on the way) == one process, batch 32."""
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=RANKS, join=True)
    r0, r1 = (torch.load(tmp_path / f"{r}.pt") for r in range(RANKS))
    x, y = data()
    reference, state = train_supernet(
        RankChunks(fresh()), x, y, config=CONFIG, show_progress=False,
        shrink_epochs=(1,), shrink=shrink_hook,
    )  # fmt: skip
    ref = reference.net.state_dict()
    assert r0["model"].keys() == ref.keys()
    worst = max((r0["model"][k].double() - ref[k].double()).abs().max().item() for k in ref)
    assert worst < ATOL, worst
    for k in ref:
        if k.endswith("num_batches_tracked"):
            assert torch.equal(r0["model"][k], ref[k]), k
    # every rank holds the same weights (running statistics are each rank's own)
    params = dict(reference.net.named_parameters())
    for k in params:
        assert torch.equal(r0["model"][k], r1["model"][k]), k
    # the history's loss is over both ranks' rows: the one-process loss
    for a, b in zip(r0["history"], state.history):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
    ckpt = load_checkpoint(tmp_path / "ckpt.pt")
    assert ckpt["epoch"] == 2 and SearchSpace.from_json(ckpt["space"]) == reference.space


def test_world_from_env() -> None:
    assert world_from_env({}) == World() and not World().distributed
    assert world_from_env({"RANK": "0", "WORLD_SIZE": "1"}) == World()
    world = world_from_env({"RANK": "2", "WORLD_SIZE": "4", "LOCAL_RANK": "0"})
    assert (world.rank, world.size, world.local_rank, world.is_main) == (2, 4, 0, False)
    assert world.shard(10) == slice(4, 6)  # 10 // 4 rows each, the remainder dropped
    with pytest.raises(ConfigError, match="outside"):
        world_from_env({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="integers"):
        world_from_env({"RANK": "x", "WORLD_SIZE": "2"})


def test_a_plain_run_is_a_world_of_one(monkeypatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    with data_parallel(torch.device("cpu")) as (world, device):
        assert world == World() and device == torch.device("cpu")
        assert not torch.distributed.is_initialized()


def test_the_global_batch_must_split_evenly() -> None:
    model = nn.Linear(4, 3)
    x, y = torch.randn(12, 4), torch.randint(0, 3, (12,))
    cfg = TrainConfig(epochs=1, batch_size=5, augment=False, channels_last=False)
    with pytest.raises(ConfigError, match="multiple of the 2 processes"):
        fit(model, x, y, config=cfg, loss_fn=None, world=World(rank=0, size=2))  # type: ignore[arg-type]


def _torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           str(RANKS), "-m", "neas", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_torchrun_search_trains_on_two_ranks_and_rank_0_does_the_rest(tmp_path) -> None:
    out = tmp_path / "run"
    done = _torchrun(
        "search", "--budget", "600M", "--epochs", "2", "--max-train", "192", "--batch-size",
        "32", "--width-mult", "0.25", "--head-width", "32", "--feature-width", "32",
        "--shrink-at", "0.5", "--shrink-samples", "3", "--population", "4", "--generations",
        "1", "--no-latency", "--threads", "1", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("Pareto front") == 1  # one rank prints
    summary = read_json(out / "train_summary.json")
    assert summary["processes"] == RANKS and summary["epochs"] == 2
    assert len(read_json(out / "shrink_history.json")["steps"]) == 1
    front = pd.read_csv(out / "pareto.csv")
    assert len(front) >= 1
    assert all((out / "ensembles" / i / "model.onnx").exists() for i in front["id"])
    # an occupied folder: rank 0 refuses, every rank exits with its error (none waits forever)
    refused = _torchrun("train", "--out", str(out), "--epochs", "1")
    assert refused.returncode != 0 and "pass --resume" in refused.stderr

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from neas.cli import app
from neas.cost import CostTable, supernet_params_floor
from neas.nn import Supernet, build_ensemble
from neas.search_spaces import create_space, sample


@pytest.mark.parametrize("image_size,in_channels", [(8, 1), (28, 1), (32, 3), (64, 3)])
@pytest.mark.parametrize("weights", ["entangled", "separate"])
def test_macs_and_params_match_flop_counter(
    image_size: int, in_channels: int, weights: str
) -> None:
    space = create_space(
        "mbconv",
        image_size=image_size,
        in_channels=in_channels,
        num_classes=10,
        num_members=3,
        width_mult=0.5,
        head_width=64,
        feature_width=96,
    )
    table = CostTable.from_space(space)
    net = Supernet(space, weights=weights)
    rng = np.random.default_rng(image_size)
    for _ in range(6):  # 4 sizes x 2 modes x 6 = 48 random architectures
        arch = sample(space, rng)
        model = build_ensemble(net, arch).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(1, in_channels, image_size, image_size))
        cost = table.ensemble(arch)
        assert cost.macs == counter.get_total_flops() // 2
        assert cost.params == sum(p.numel() for p in model.parameters())


def test_trunk_is_counted_once() -> None:
    space = create_space("mbconv", image_size=32, num_classes=10, width_mult=0.5)
    table = CostTable.from_space(space)
    arch = sample(space, np.random.default_rng(0))
    members = sum(table.member(arch, m).macs for m in range(arch.num_members))
    assert table.ensemble(arch).macs == table.trunk(arch).macs + members


@pytest.mark.parametrize(
    "name,low,high", [("NEAS-S", 250e6, 350e6), ("NEAS-M", 400e6, 500e6), ("NEAS-L", 500e6, 600e6)]
)
def test_neas_cost_cli_on_published_archs(name: str, low: float, high: float) -> None:
    from neas.search_spaces import NEAS_ARCH_LISTS

    arch_list = ",".join(str(v) for v in NEAS_ARCH_LISTS[name])
    result = CliRunner().invoke(
        app,
        [
            "cost",
            "--space",
            "mbconv",
            "--image-size",
            "224",
            "--num-classes",
            "1000",
            "--neas-arch-list",
            arch_list,
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert low < out["macs"] < high  # the paper's S/M/L sit near 300M/450M/550M
    assert out["params"] > 5e6 and out["members"] == 2


def test_cost_cli_reads_our_json(tmp_path) -> None:
    space = create_space("mbconv")
    arch = sample(space, np.random.default_rng(3))
    f = tmp_path / "arch.json"
    f.write_text(arch.to_json(space))
    result = CliRunner().invoke(app, ["cost", "--arch-file", str(f)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["macs"] == CostTable.from_space(space).ensemble(arch).macs


@pytest.mark.parametrize("embedding", ["none", "periodic", "piecewise"])
@pytest.mark.parametrize("weights", ["entangled", "separate", "members"])
def test_mlp_macs_and_params_match_flop_counter(weights: str, embedding: str) -> None:
    space = create_space(
        "mlp", in_channels=13, num_classes=3, num_members=3, width_mult=0.5, embedding=embedding
    )
    table, net = CostTable.from_space(space), Supernet(space, weights=weights)
    rng = np.random.default_rng(1)
    for _ in range(8):
        arch = sample(space, rng)
        model = build_ensemble(net, arch).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(1, 13, 1, 1))
        cost = table.ensemble(arch)
        assert cost.macs == counter.get_total_flops() // 2 > 0
        assert cost.params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ["mbconv", "mlp"])
@pytest.mark.parametrize("weights", ["entangled", "separate", "members"])
def test_params_floor_holds_for_shrunk_spaces(name: str, weights: str) -> None:
    """A supernet over a shrunk space (each layer's largest ops dropped) holds at least the
    floor: an honest shrunk checkpoint is never refused as too small for its space."""
    if name == "mbconv":
        space = create_space(
            name,
            image_size=8,
            in_channels=1,
            num_classes=10,
            width_mult=0.25,
            head_width=32,
            feature_width=32,
        )
    else:
        space = create_space(name, in_channels=30, num_classes=2, width_mult=0.5)
    shrunk = space.with_candidates(
        tuple(tuple(c for c in lay.candidates if c not in (4, 5)) for lay in space.layers)
    )
    for s in (space, shrunk):
        held = sum(v.numel() for v in Supernet(s, weights=weights).state_dict().values())
        assert supernet_params_floor(s) <= held
    assert supernet_params_floor(shrunk) < supernet_params_floor(space)

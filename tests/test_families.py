"""Block families as plug-ins: a third family registered here, and nowhere else, trains in the
supernet, builds as a static ensemble, costs exactly what it computes and exports to ONNX."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from neas.cost import FAMILY_COSTS, Cost, CostTable
from neas.deploy.onnx_export import INPUT, ort_session, to_onnx
from neas.errors import ConfigError
from neas.nn import Supernet, build_ensemble, combine
from neas.nn.families import FAMILIES, BlockFamily, register_family
from neas.search_spaces import create_space, sample
from neas.search_spaces.spec import LayerSpec, OpChoice, SearchSpace, StemSpec, make_divisible


class DenseBlock(nn.Module):
    """x + W2 silu(W1 x), 1x1 convs without bias or BN: unlike both built-in families."""

    def __init__(self, channels: int, mid: int) -> None:
        super().__init__()
        self.expand = nn.Conv2d(channels, mid, 1, bias=False)
        self.project = nn.Conv2d(mid, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(F.silu(self.expand(x)))


class DynamicDense(nn.Module):
    def __init__(self, channels: int, max_op: OpChoice) -> None:
        super().__init__()
        self.channels, self.max_op = channels, max_op
        mid = make_divisible(channels * max_op.expand)
        self.expand_weight = nn.Parameter(torch.randn(mid, channels, 1, 1) * 0.1)
        self.project_weight = nn.Parameter(torch.randn(channels, mid, 1, 1) * 0.1)

    def _mid(self, op: OpChoice) -> int:
        return make_divisible(self.channels * op.expand)

    def forward(self, x: torch.Tensor, op: OpChoice, path: int = 0) -> torch.Tensor:
        mid = self._mid(op)
        return x + F.conv2d(
            F.silu(F.conv2d(x, self.expand_weight[:mid])), self.project_weight[:, :mid]
        )

    def static_state(self, op: OpChoice, path: int) -> dict[str, torch.Tensor]:
        mid = self._mid(op)
        return {
            "expand.weight": self.expand_weight[:mid],
            "project.weight": self.project_weight[:, :mid],
        }

    def with_max_op(self, max_op: OpChoice) -> DynamicDense:
        return DynamicDense(self.channels, max_op)


def dense_stem(space: SearchSpace) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(space.stem.in_channels, space.stem.out_channels, 1, bias=False), nn.SiLU()
    )


def dense_stem_cost(stem: StemSpec) -> Cost:
    n = stem.in_channels * stem.out_channels
    return Cost(n, n)


def dense_op_cost(layer: LayerSpec, op: OpChoice) -> Cost:
    n = 2 * layer.in_channels * make_divisible(layer.in_channels * op.expand)
    return Cost(n, n)


@pytest.fixture
def dense_space():
    register_family(
        BlockFamily(
            "dense",
            stem=dense_stem,
            block=lambda spec, op: DenseBlock(
                spec.in_channels, make_divisible(spec.in_channels * op.expand)
            ),
            dynamic=lambda spec, max_op, num_paths: DynamicDense(spec.in_channels, max_op),
        ),
        stem_cost=dense_stem_cost,
        op_cost=dense_op_cost,
    )
    try:  # the mlp space's layout (tables), built from this family's blocks
        yield replace(
            create_space("mlp", in_channels=6, num_classes=3, width_mult=0.125), block="dense"
        )
    finally:
        FAMILIES.pop("dense"), FAMILY_COSTS.pop("dense")


def test_a_registered_family_trains_builds_costs_and_exports(dense_space) -> None:
    torch.manual_seed(0)
    space, rng = dense_space, np.random.default_rng(0)
    net = Supernet(space)
    x = torch.randn(5, 6, 1, 1)
    for _ in range(3):
        arch = sample(space, rng)
        # the supernet trains through the family's dynamic blocks
        loss = sum(F.cross_entropy(t, torch.tensor([0, 1, 2, 0, 1])) for t in net.train()(x, arch))
        loss.backward()
        assert any(
            isinstance(m, DynamicDense) and m.expand_weight.grad is not None for m in net.modules()
        )
        net.zero_grad()
        # the static ensemble computes what the supernet computes
        static = build_ensemble(net, arch).eval()
        assert any(isinstance(m, DenseBlock) for m in static.modules()) or arch.split == 0
        with torch.no_grad():
            assert torch.allclose(static(x), combine(net.eval()(x, arch)), atol=1e-5)
        # its costs are what it holds and computes
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            static(x[:1])
        cost = CostTable.from_space(space).ensemble(arch)
        assert cost.macs == counter.get_total_flops() // 2 > 0
        assert cost.params == sum(p.numel() for p in static.parameters())
        # and it exports to ONNX with the same outputs
        session = ort_session(to_onnx(static, input_shape=(6, 1, 1)).SerializeToString())
        probs, *logits = session.run(None, {INPUT: x.numpy()})
        with torch.no_grad():
            members = static.member_logits(x)
            np.testing.assert_allclose(probs, static(x).numpy(), atol=1e-5)
        for got, want in zip(logits, members, strict=True):
            np.testing.assert_allclose(got, want.numpy(), atol=1e-5)


def test_an_unknown_family_fails_loudly() -> None:
    space = replace(create_space("mlp", in_channels=6, num_classes=3), block="resnet")
    with pytest.raises(ConfigError, match="unknown block family 'resnet'; registered: mbconv, mlp"):
        Supernet(space)
    with pytest.raises(ConfigError, match="unknown block family 'resnet'"):
        CostTable.from_space(space)

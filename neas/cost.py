"""Exact MACs and parameter counts of ensemble architectures, from the space alone (no torch).

MACs count convolutions and linear layers (what ``torch.utils.flop_counter.FlopCounterMode``
counts, divided by two); BN, activations, pooling and the SE gate's multiply are not counted.
Parameters are those of the static ``EnsembleNet``: trunk once, every member's layers and head.
An ensemble's MACs are the stem, the trunk once, and each member's layers and head.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from neas.errors import ConfigError
from neas.search_spaces.arch import EnsembleArch
from neas.search_spaces.spec import (
    SKIP,
    HeadSpec,
    LayerSpec,
    OpChoice,
    SearchSpace,
    StemSpec,
    effective_kernel,
    make_divisible,
)


@dataclass(frozen=True)
class Cost:
    macs: int
    params: int

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.macs + other.macs, self.params + other.params)


ZERO = Cost(0, 0)


def _se(channels: int, ratio: float) -> Cost:
    red = make_divisible(channels * ratio)
    return Cost(2 * channels * red, 2 * channels * red + channels + red)


def mbconv_stem_cost(stem: StemSpec) -> Cost:
    """conv3x3 + BN, then the depthwise-separable block with SE (3x3 dw, 1x1 pw)."""
    c, size = stem.out_channels, stem.output_size
    conv = Cost(size * size * c * stem.in_channels * 9, c * stem.in_channels * 9 + 2 * c)
    dw = Cost(size * size * c * 9, c * 9 + 2 * c)
    pw = Cost(size * size * c * c, c * c + 2 * c)
    return conv + dw + _se(c, stem.se_ratio) + pw


def mbconv_op_cost(layer: LayerSpec, op: OpChoice) -> Cost:
    """1x1 expand + BN, k x k depthwise (cropped to the map) + BN, SE, 1x1 project + BN."""
    mid = make_divisible(layer.in_channels * op.expand)
    k = effective_kernel(op.kernel, layer.input_size)
    s_in, s_out = layer.input_size, layer.output_size
    expand = Cost(s_in * s_in * mid * layer.in_channels, mid * layer.in_channels + 2 * mid)
    dw = Cost(s_out * s_out * mid * k * k, mid * k * k + 2 * mid)
    project = Cost(
        s_out * s_out * layer.out_channels * mid, layer.out_channels * mid + 2 * layer.out_channels
    )
    return expand + dw + _se(mid, layer.se_ratio) + project


def mlp_stem_cost(stem: StemSpec) -> Cost:
    """One linear layer (1x1 conv) + BN, after the periodic embeddings (``F x k`` frequencies,
    one shared ``2k -> d`` linear layer applied to each of the F features) when it has them;
    the piecewise-linear encoding adds no parameters and no multiply-accumulates (its width
    is in ``linear_in``)."""
    c = stem.out_channels
    linear = Cost(c * stem.linear_in, c * stem.linear_in + 2 * c)
    if not stem.frequencies:
        return linear
    f, k, d = stem.in_channels, stem.frequencies, stem.embedding_dim
    return linear + Cost(f * 2 * k * d, f * k + 2 * k * d + d)  # MACs: matmuls only


def mlp_op_cost(layer: LayerSpec, op: OpChoice) -> Cost:
    """Expand and project, each a linear layer + BN."""
    mid = make_divisible(layer.in_channels * op.expand)
    c = layer.in_channels
    return Cost(mid * c, mid * c + 2 * mid) + Cost(c * mid, c * mid + 2 * c)


StemCost = Callable[[StemSpec], Cost]
OpCost = Callable[[LayerSpec, OpChoice], Cost]
#: The costs of each block family, by name (``neas.nn.families.register_family`` adds one).
FAMILY_COSTS: dict[str, tuple[StemCost, OpCost]] = {
    "mbconv": (mbconv_stem_cost, mbconv_op_cost),
    "mlp": (mlp_stem_cost, mlp_op_cost),
}


def register_family_cost(name: str, *, stem: StemCost, op: OpCost) -> None:
    FAMILY_COSTS[name] = (stem, op)


def _family(block: str) -> tuple[StemCost, OpCost]:
    if block not in FAMILY_COSTS:
        raise ConfigError(
            f"unknown block family {block!r}; registered: {', '.join(sorted(FAMILY_COSTS))}"
        )
    return FAMILY_COSTS[block]


def stem_cost(stem: StemSpec, block: str = "mbconv") -> Cost:
    """The stem of family ``block``."""
    return _family(block)[0](stem)


def op_cost(layer: LayerSpec, op: OpChoice | None, block: str = "mbconv") -> Cost:
    """One searchable layer of family ``block`` running ``op`` (``None`` = skip)."""
    return ZERO if op is None else _family(block)[1](layer, op)


def head_cost(head: HeadSpec) -> Cost:
    s, hw, fw = head.input_size, head.head_width, head.feature_width
    conv = Cost(s * s * hw * head.in_channels, hw * head.in_channels + 2 * hw)
    features = Cost(hw * fw, hw * fw + fw)
    fc = Cost(fw * head.num_classes, fw * head.num_classes + head.num_classes)
    return conv + features + fc


@dataclass(frozen=True)
class CostTable:
    """Per-(layer, op) costs at the space's resolution; ``ensemble`` sums them for an arch.

    >>> from neas.search_spaces import create_space, from_neas_arch_list, NEAS_ARCH_LISTS
    >>> space = create_space("mbconv")
    >>> table = CostTable.from_space(space)
    >>> table.ensemble(from_neas_arch_list(NEAS_ARCH_LISTS["NEAS-S"], space)).macs > 0
    True
    """

    stem: Cost
    head: Cost
    layers: tuple[dict[int, Cost], ...]

    @classmethod
    def from_space(cls, space: SearchSpace) -> CostTable:
        layers = tuple(
            {SKIP: ZERO, **{i: op_cost(layer, op, space.block) for i, op in enumerate(space.ops)}}
            for layer in space.layers
        )
        stem = stem_cost(space.stem, space.block)
        return cls(stem=stem, head=head_cost(space.head), layers=layers)

    def member(self, arch: EnsembleArch, m: int) -> Cost:
        """Member ``m``'s own layers and head (without the trunk)."""
        total = self.head
        for j, op in enumerate(arch.members[m]):
            total = total + self.layers[arch.split + j][op]
        return total

    def trunk(self, arch: EnsembleArch) -> Cost:
        total = self.stem
        for i, op in enumerate(arch.shared):
            total = total + self.layers[i][op]
        return total

    def ensemble(self, arch: EnsembleArch) -> Cost:
        total = self.trunk(arch)
        for m in range(arch.num_members):
            total = total + self.member(arch, m)
        return total


def ensemble_cost(space: SearchSpace, arch: EnsembleArch) -> Cost:
    """MACs and params of ``arch`` in ``space`` (builds a ``CostTable``; reuse one for many)."""
    return CostTable.from_space(space).ensemble(arch)


def supernet_params_floor(space: SearchSpace) -> int:
    """A lower bound on the parameters of any supernet over ``space`` (every weight mode holds
    at least the stem, each member's head and each layer's largest op among its candidates: a
    shrunk space's supernet holds no weights for the ops shrinking dropped), from the spec alone.

    A file that claims ``space`` but holds fewer tensor elements than this is refused before a
    network is built for it; an honest one never is (``tests/test_hostile_runs.py``).

    >>> from neas.search_spaces import create_space
    >>> space = create_space("mbconv", image_size=8, in_channels=1, num_classes=10)
    >>> 0 < supernet_params_floor(space) < 10**8
    True
    """
    table = CostTable.from_space(space)
    largest = sum(  # the largest op still in the (possibly shrunk) space
        max(table.layers[i][op].params for op in lay.candidates)
        for i, lay in enumerate(space.layers)
    )
    return table.stem.params + space.num_members * table.head.params + largest

"""Block families: what a search space's ``block`` names, in one place per family.

A family decides four things: the stem, the static block of an op at a layer, the
weight-sliceable block the supernet trains, and (torch-free, in ``neas.cost``) their MACs and
parameters. ``mbconv`` (images: conv stem, inverted residuals with SE) and ``mlp`` (tables: a
linear stem, residual MLP blocks written as 1x1 convs on N x F x 1 x 1) are registered here;
another family is one ``register_family`` call, and every builder, the supernet, the cost table
and the exporters use it through ``family(name)``. An unknown name fails with one line.

A dynamic block takes ``forward(x, op, path)``, gives the state of the static block that
computes the same (``static_state(op, path)``, the keys of ``block(...)``'s state dict) and a
fresh copy sized for a smaller largest op (``with_max_op``); its ``max_op`` is that op.

>>> sorted(FAMILIES)
['mbconv', 'mlp']
>>> family("resnet")
Traceback (most recent call last):
...
neas.errors.ConfigError: unknown block family 'resnet'; registered: mbconv, mlp
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from neas.cost import Cost, register_family_cost
from neas.errors import ConfigError
from neas.nn.dynamic import DynamicMBConv, DynamicMLP
from neas.nn.layers import (
    MBConv,
    MLPBlock,
    PeriodicEmbedding,
    PiecewiseLinearEncoding,
    Stem,
    conv_bn,
)
from neas.search_spaces.mlp import BIN_TAIL, FREQUENCY_SCALE
from neas.search_spaces.spec import (
    LayerSpec,
    OpChoice,
    SearchSpace,
    StemSpec,
    effective_kernel,
    make_divisible,
)


@dataclass(frozen=True)
class BlockFamily:
    """The modules of one family: ``stem(space)``, ``block(layer, op)`` (static) and
    ``dynamic(layer, max_op, num_paths)`` (the supernet's, sized for ``max_op``)."""

    name: str
    stem: Callable[[SearchSpace], nn.Module]
    block: Callable[[LayerSpec, OpChoice], nn.Module]
    dynamic: Callable[[LayerSpec, OpChoice, int], nn.Module]


FAMILIES: dict[str, BlockFamily] = {}


def register_family(
    fam: BlockFamily,
    *,
    stem_cost: Callable[[StemSpec], Cost],
    op_cost: Callable[[LayerSpec, OpChoice], Cost],
) -> None:
    """Register ``fam`` and its costs (``neas.cost``: the MACs and parameters of its stem and
    of one op at a layer, exactly what its static modules hold and compute)."""
    register_family_cost(fam.name, stem=stem_cost, op=op_cost)
    FAMILIES[fam.name] = fam


def family(name: str) -> BlockFamily:
    """The family ``name``; an unknown one is a one-line ``ConfigError``."""
    if name not in FAMILIES:
        raise ConfigError(
            f"unknown block family {name!r}; registered: {', '.join(sorted(FAMILIES))}"
        )
    return FAMILIES[name]


# --- mbconv -----------------------------------------------------------------------------------


def mbconv_dims(layer: LayerSpec, op: OpChoice) -> tuple[int, int, int]:
    """(mid channels, SE channels, effective kernel) of op ``op`` at ``layer``.

    The kernel is cropped to the taps that can touch the layer's input (a k7 on a 2x2 map is a
    k3), so the static block computes what the supernet computes, at the MACs counted for it.
    """
    mid = make_divisible(layer.in_channels * op.expand)
    return mid, make_divisible(mid * layer.se_ratio), effective_kernel(op.kernel, layer.input_size)


def _mbconv_stem(space: SearchSpace) -> nn.Module:
    st = space.stem
    return Stem(
        st.in_channels,
        st.out_channels,
        stride=st.stride,
        reduced=make_divisible(st.out_channels * st.se_ratio),
    )


def _mbconv_block(spec: LayerSpec, op: OpChoice) -> nn.Module:
    mid, reduced, kernel = mbconv_dims(spec, op)
    return MBConv(
        spec.in_channels, spec.out_channels, kernel=kernel, mid=mid, reduced=reduced,
        stride=spec.stride,
    )  # fmt: skip


def _mbconv_dynamic(spec: LayerSpec, max_op: OpChoice, num_paths: int) -> nn.Module:
    return DynamicMBConv(
        spec.in_channels, spec.out_channels, stride=spec.stride, max_op=max_op,
        input_size=spec.input_size, num_paths=num_paths, se_ratio=spec.se_ratio,
    )  # fmt: skip


# --- mlp --------------------------------------------------------------------------------------


def mlp_mid(layer: LayerSpec, op: OpChoice) -> int:
    """Hidden width of MLP op ``op`` at ``layer``."""
    return make_divisible(layer.in_channels * op.expand)


def _mlp_stem(space: SearchSpace) -> nn.Module:
    st = space.stem
    linear = conv_bn(st.linear_in, st.out_channels, 1)
    if st.bins:
        return nn.Sequential(PiecewiseLinearEncoding(st.bins, tail=BIN_TAIL), *linear)
    if not st.frequencies:
        return linear
    embed = PeriodicEmbedding(
        st.in_channels, frequencies=st.frequencies, dim=st.embedding_dim, scale=FREQUENCY_SCALE
    )
    return nn.Sequential(embed, *linear)


def _mlp_block(spec: LayerSpec, op: OpChoice) -> nn.Module:
    return MLPBlock(spec.in_channels, mid=mlp_mid(spec, op), dropout=op.dropout)


def _mlp_dynamic(spec: LayerSpec, max_op: OpChoice, num_paths: int) -> nn.Module:
    return DynamicMLP(spec.in_channels, max_op=max_op, num_paths=num_paths)


def _register_builtins() -> None:
    from neas.cost import mbconv_op_cost, mbconv_stem_cost, mlp_op_cost, mlp_stem_cost

    register_family(
        BlockFamily("mbconv", _mbconv_stem, _mbconv_block, _mbconv_dynamic),
        stem_cost=mbconv_stem_cost,
        op_cost=mbconv_op_cost,
    )
    register_family(
        BlockFamily("mlp", _mlp_stem, _mlp_block, _mlp_dynamic),
        stem_cost=mlp_stem_cost,
        op_cost=mlp_op_cost,
    )


_register_builtins()

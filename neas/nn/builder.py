"""The one builder from a search-space spec to static modules: stem, block for (layer, op), head.

The supernet builds its stem and heads here, ``build_ensemble`` and the model-file loader build
their static ensembles here, so a static network always has one structure whatever made it.

>>> import numpy as np
>>> from neas.search_spaces import create_space, sample
>>> space = create_space("mbconv", image_size=8, in_channels=1, num_classes=10)
>>> net = static_ensemble(space, sample(space, np.random.default_rng(0)))
>>> net.num_members, type(build_block(space, 0, 0)).__name__
(2, 'MBConv')
>>> table = create_space("mlp", in_channels=30, num_classes=2)
>>> type(build_block(table, 1, 3)).__name__, build_block(table, 1, 3).dropout.p
('MLPBlock', 0.2)
"""

from __future__ import annotations

from torch import nn

from neas.nn.layers import (
    EnsembleNet,
    Head,
    MBConv,
    MLPBlock,
    PeriodicEmbedding,
    Stem,
    conv_bn,
)
from neas.search_spaces.arch import EnsembleArch, validate
from neas.search_spaces.mlp import FREQUENCY_SCALE
from neas.search_spaces.spec import (
    SKIP,
    LayerSpec,
    OpChoice,
    SearchSpace,
    effective_kernel,
    make_divisible,
)


def build_stem(space: SearchSpace) -> nn.Module:
    """The stem: conv3x3 (stride) -> BN -> Swish, then the fixed depthwise-separable block
    (``mbconv``); a linear layer (1x1 conv) -> BN -> Swish (``mlp``), after periodic embeddings
    of the features when the space has them."""
    st = space.stem
    if space.block == "mlp":
        linear = conv_bn(st.linear_in, st.out_channels, 1)
        if not st.frequencies:
            return linear
        embed = PeriodicEmbedding(
            st.in_channels, frequencies=st.frequencies, dim=st.embedding_dim, scale=FREQUENCY_SCALE
        )
        return nn.Sequential(embed, *linear)
    return Stem(
        st.in_channels,
        st.out_channels,
        stride=st.stride,
        reduced=make_divisible(st.out_channels * st.se_ratio),
    )


def build_head(space: SearchSpace) -> Head:
    """One member's head (1x1 conv, pool, 1x1 conv, dropout, linear)."""
    hd = space.head
    return Head(
        hd.in_channels,
        head_width=hd.head_width,
        feature_width=hd.feature_width,
        num_classes=hd.num_classes,
        dropout=hd.dropout,
    )


def mlp_mid(layer: LayerSpec, op: OpChoice) -> int:
    """Hidden width of MLP op ``op`` at ``layer``."""
    return make_divisible(layer.in_channels * op.expand)


def mbconv_dims(layer: LayerSpec, op: OpChoice) -> tuple[int, int, int]:
    """(mid channels, SE channels, effective kernel) of op ``op`` at ``layer``.

    The kernel is cropped to the taps that can touch the layer's input (a k7 on a 2x2 map is a
    k3), so the static block computes what the supernet computes, at the MACs counted for it.
    """
    mid = make_divisible(layer.in_channels * op.expand)
    return mid, make_divisible(mid * layer.se_ratio), effective_kernel(op.kernel, layer.input_size)


def build_block(space: SearchSpace, layer: int, op: int) -> nn.Module:
    """The static block of op ``op`` at searchable layer ``layer`` (``nn.Identity`` for skip)."""
    if op == SKIP:
        return nn.Identity()
    spec, choice = space.layers[layer], space.ops[op]
    if space.block == "mlp":
        return MLPBlock(spec.in_channels, mid=mlp_mid(spec, choice), dropout=choice.dropout)
    mid, reduced, kernel = mbconv_dims(spec, choice)
    return MBConv(
        spec.in_channels,
        spec.out_channels,
        kernel=kernel,
        mid=mid,
        reduced=reduced,
        stride=spec.stride,
    )


def static_ensemble(space: SearchSpace, arch: EnsembleArch) -> EnsembleNet:
    """An ``EnsembleNet`` for ``arch`` with fresh weights: trunk once, then K branches."""
    validate(arch, space)
    trunk = nn.Sequential(*(build_block(space, i, op) for i, op in enumerate(arch.shared)))
    branches = nn.ModuleList(
        nn.Sequential(
            *(build_block(space, arch.split + j, op) for j, op in enumerate(ops)),
            build_head(space),
        )
        for ops in arch.members
    )
    return EnsembleNet(build_stem(space), trunk, branches)

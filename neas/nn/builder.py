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

from neas.nn.families import family
from neas.nn.layers import EnsembleNet, Head
from neas.search_spaces.arch import EnsembleArch, validate
from neas.search_spaces.spec import SKIP, SearchSpace


def build_stem(space: SearchSpace) -> nn.Module:
    """The stem of the space's block family (``neas.nn.families``)."""
    return family(space.block).stem(space)


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


def build_block(space: SearchSpace, layer: int, op: int) -> nn.Module:
    """The static block of op ``op`` at searchable layer ``layer`` (``nn.Identity`` for skip),
    of the space's block family."""
    if op == SKIP:
        return nn.Identity()
    return family(space.block).block(space.layers[layer], space.ops[op])


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

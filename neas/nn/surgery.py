"""Module surgery for search-space shrinking: a supernet over a sub-space that reuses weights.

>>> from neas.search_spaces import create_space
>>> space = create_space("mbconv", image_size=8, in_channels=1, num_classes=10,
...                      width_mult=0.25, head_width=32, feature_width=32)
>>> net = Supernet(space, weights="separate")
>>> small = space.with_candidates(tuple((0, 1) for _ in space.layers))
>>> num_params(shrink_supernet(net, small)) < num_params(net)
True
"""

from __future__ import annotations

import torch
from torch import nn

from neas.nn.dynamic import DynamicMBConv, DynamicMLP
from neas.nn.supernet import Supernet, SupernetLayer, largest_op
from neas.search_spaces.spec import OpChoice, SearchSpace

__all__ = ["num_params", "shrink_supernet"]

DynamicBlock = DynamicMBConv | DynamicMLP


def num_params(net: nn.Module) -> int:
    """The number of parameters of ``net``."""
    return sum(p.numel() for p in net.parameters())


def _shrunk_block(old: DynamicBlock, max_op: OpChoice) -> DynamicBlock:
    """A smaller block holding ``old``'s centre-cropped, channel-sliced weights."""
    new = old.with_max_op(max_op)
    before = old.state_dict()
    crop = (old.max_op.kernel - max_op.kernel) // 2  # depthwise kernels only (mbconv)
    with torch.no_grad():
        for name, t in new.state_dict().items():
            index = [slice(0, n) for n in t.shape]
            if name == "dw_weight":
                index[2] = index[3] = slice(crop, crop + max_op.kernel)
            t.copy_(before[name][tuple(index)])
    weight = old.expand_weight
    return new.to(device=weight.device, dtype=weight.dtype)


def shrink_supernet(supernet: Supernet, new_space: SearchSpace) -> Supernet:
    """A supernet over ``new_space`` (a sub-space) that reuses ``supernet``'s modules.

    Separate weights: the dropped ops' banks are freed. Entangled (and each set of the members
    mode): a layer whose largest kernel or expansion was dropped gets a smaller block with the
    cropped weights; other layers keep
    their block objects (so the optimizer keeps their state). For every architecture of
    ``new_space`` the outputs equal the old supernet's, and the state dict loads into
    ``Supernet(new_space, weights=...)``.

    >>> from neas.search_spaces import create_space
    >>> space = create_space("mbconv", image_size=8, in_channels=1, num_classes=10,
    ...                      width_mult=0.25, head_width=32, feature_width=32)
    >>> net = Supernet(space, weights="separate")
    >>> small = space.with_candidates(tuple((0, 1) for _ in space.layers))
    >>> shrunk = shrink_supernet(net, small)
    >>> shrunk.space == small, num_params(shrunk) < num_params(net)
    (True, True)
    """
    old_space = supernet.space
    for old, new in zip(old_space.layers, new_space.layers):
        if not set(new.candidates) <= set(old.candidates):
            raise ValueError(f"layer {old.index}: new candidates are not a subset of the old")
    with torch.device("meta"):  # skeleton only; every module is replaced below
        out = Supernet(new_space, weights=supernet.weights)
    out.stem, out.heads = supernet.stem, supernet.heads
    layers = []
    for old_layer, spec in zip(supernet.layers, new_space.layers):
        with torch.device("meta"):
            layer = SupernetLayer(
                spec,
                new_space.ops,
                weights=supernet.weights,
                num_paths=new_space.num_members,
                kind=new_space.block,
            )
        for key in list(layer.blocks.keys()):
            block = old_layer.blocks[key]
            if supernet.weights != "separate":  # entangled sets: crop to the new largest op
                max_op = largest_op(new_space.ops, spec.candidates)
                if max_op != block.max_op:
                    block = _shrunk_block(block, max_op)
            layer.blocks[key] = block
        layers.append(layer)
    out.layers = nn.ModuleList(layers)
    return out.train(supernet.training)

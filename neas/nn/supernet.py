"""The K-path ensemble supernet: ``supernet(x, arch)`` returns one logit tensor per member.

The trunk (stem, fixed block, the first ``arch.split`` layers) runs once per batch; its
gradient is the mean of the members' gradients (NEAS's GradDiv). There is no "active subnet"
state: the architecture is an argument of ``forward``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from neas.config import WEIGHT_MODES
from neas.nn.builder import build_head, build_stem
from neas.nn.dynamic import DynamicMBConv, DynamicMLP
from neas.nn.families import family
from neas.nn.layers import Stem, init_weights
from neas.search_spaces.arch import EnsembleArch
from neas.search_spaces.spec import SKIP, LayerSpec, OpChoice, SearchSpace

WeightMode = Literal["entangled", "separate", "members"]
TRUNK = "trunk"  # the owner of the layers before the split; members are "m0", "m1", ...


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad * ctx.scale, None


def scale_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; multiplies the gradient by ``scale`` on the way back."""
    return _ScaleGrad.apply(x, scale)


def largest_op(ops: tuple[OpChoice, ...], candidates: tuple[int, ...]) -> OpChoice:
    """The op whose weights contain every candidate's (max kernel, max expansion)."""
    chosen = [ops[c] for c in candidates if c != SKIP]
    return OpChoice(max(o.kernel for o in chosen), max(o.expand for o in chosen))


def member_key(m: int) -> str:
    return f"m{m}"


class SupernetLayer(nn.Module):
    """One searchable layer: a shared weight set (``entangled``), one bank per op
    (``separate``), or one entangled set for the trunk and one per member slot (``members``:
    after the split every member runs its own, independently initialised weights, as the
    members of a deep ensemble do)."""

    def __init__(
        self,
        spec: LayerSpec,
        ops: tuple[OpChoice, ...],
        *,
        weights: WeightMode,
        num_paths: int,
        kind: str = "mbconv",
    ) -> None:
        super().__init__()
        self.spec, self.ops, self.weights = spec, ops, weights

        def block(max_op: OpChoice) -> DynamicMBConv | DynamicMLP:
            return family(kind).dynamic(spec, max_op, num_paths)

        if weights == "entangled":
            self.blocks = nn.ModuleDict({"shared": block(largest_op(ops, spec.candidates))})
        elif weights == "separate":
            self.blocks = nn.ModuleDict(
                {ops[c].name: block(ops[c]) for c in spec.candidates if c != SKIP}
            )
        elif weights == "members":
            owners = [TRUNK, *(member_key(m) for m in range(num_paths))]
            largest = largest_op(ops, spec.candidates)
            self.blocks = nn.ModuleDict({o: block(largest) for o in owners})
        else:
            raise ValueError(f"unknown weight mode {weights!r}; valid: {', '.join(WEIGHT_MODES)}")

    def block_for(self, op: int, owner: str = TRUNK) -> DynamicMBConv | DynamicMLP:
        """The weights that run ``op`` for ``owner`` (the trunk, or member ``"m<i>"``)."""
        if self.weights == "entangled":
            key = "shared"
        elif self.weights == "separate":
            key = self.ops[op].name
        else:
            key = owner
        return self.blocks[key]  # type: ignore[return-value]

    def forward(self, x: torch.Tensor, op: int, path: int = 0, owner: str = TRUNK) -> torch.Tensor:
        if op == SKIP:
            return x
        return self.block_for(op, owner)(x, self.ops[op], path)

    def static_state(self, op: int, path: int, owner: str = TRUNK) -> dict[str, torch.Tensor]:
        """The state dict of this layer's static block for ``op`` on ``path`` (empty for skip)."""
        if op == SKIP:
            return {}
        return self.block_for(op, owner).static_state(self.ops[op], path)


class Supernet(nn.Module):
    """Weight-sharing supernet over every ensemble architecture of ``space``.

    >>> from neas.search_spaces import create_space, sample
    >>> import numpy as np
    >>> space = create_space("mbconv", image_size=8, in_channels=1, num_classes=10,
    ...                      width_mult=0.25, head_width=32, feature_width=32)
    >>> net = Supernet(space)
    >>> [t.shape for t in net(torch.zeros(2, 1, 8, 8), sample(space, np.random.default_rng(0)))]
    [torch.Size([2, 10]), torch.Size([2, 10])]
    """

    def __init__(self, space: SearchSpace, *, weights: WeightMode = "entangled") -> None:
        super().__init__()
        self.space, self.weights = space, weights
        k = space.num_members
        self.stem = build_stem(space)
        self.heads = nn.ModuleList(build_head(space) for _ in range(k))
        init_weights(self)  # static parts; dynamic blocks initialise themselves
        if isinstance(self.stem, Stem):  # the fixed residual block starts as the identity
            nn.init.zeros_(self.stem.block.pointwise[1].weight)
        self.layers = nn.ModuleList(
            SupernetLayer(layer, space.ops, weights=weights, num_paths=k, kind=space.block)
            for layer in space.layers
        )

    def forward(self, x: torch.Tensor, arch: EnsembleArch) -> list[torch.Tensor]:
        h = self.stem(x)
        for i, op in enumerate(arch.shared):
            h = self.layers[i](h, op, 0)
        h = scale_grad(h, 1.0 / arch.num_members)
        outs = []
        for m, ops in enumerate(arch.members):
            z = h
            for j, op in enumerate(ops):
                z = self.layers[arch.split + j](z, op, m, member_key(m))
            outs.append(self.heads[m](z))
        return outs

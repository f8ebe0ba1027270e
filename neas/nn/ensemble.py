"""Static ensemble networks: trunk once, then K branches, members averaged as probabilities.

Members are combined by averaging their softmax probabilities (not logits): each member is a
calibrated-ish classifier on its own, and probability averaging is the standard deep-ensemble rule.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from neas.nn.supernet import Supernet
from neas.search_spaces.arch import EnsembleArch, validate


def combine(logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """The ensemble's prediction: the mean of the members' softmax probabilities."""
    return torch.stack([t.float().softmax(-1) for t in logits]).mean(0)


class EnsembleNet(nn.Module):
    """A deployable ensemble: ``forward(x)`` returns combined class probabilities."""

    def __init__(self, stem: nn.Module, trunk: nn.Sequential, branches: nn.ModuleList) -> None:
        super().__init__()
        self.stem, self.trunk, self.branches = stem, trunk, branches

    @property
    def num_members(self) -> int:
        return len(self.branches)

    def member_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.trunk(self.stem(x))
        return [branch(h) for branch in self.branches]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return combine(self.member_logits(x))


@torch.no_grad()
def build_ensemble(supernet: Supernet, arch: EnsembleArch) -> EnsembleNet:
    """Extract ``arch`` from ``supernet`` as a static network with copied weights.

    In eval mode its outputs equal ``combine(supernet(x, arch))`` (BN statistics included).
    """
    validate(arch, supernet.space)
    layers = supernet.layers
    trunk = nn.Sequential(*(layers[i].export(op, 0) for i, op in enumerate(arch.shared)))
    branches = nn.ModuleList()
    for m, ops in enumerate(arch.members):
        blocks = [layers[arch.split + j].export(op, m) for j, op in enumerate(ops)]
        branches.append(nn.Sequential(*blocks, copy.deepcopy(supernet.heads[m])))
    net = EnsembleNet(copy.deepcopy(supernet.stem), trunk, branches)
    return net.train(supernet.training)

"""Extracting a static ensemble from the supernet: the builder's structure, the supernet's weights.

>>> import numpy as np
>>> from neas.nn import Supernet
>>> from neas.search_spaces import create_space, sample
>>> space = create_space("mbconv", image_size=8, in_channels=1, num_classes=10,
...                      width_mult=0.25, head_width=32, feature_width=32)
>>> net, arch = Supernet(space).eval(), sample(space, np.random.default_rng(0))
>>> x = torch.randn(4, 1, 8, 8)
>>> bool(torch.allclose(build_ensemble(net, arch).eval()(x), combine(net(x, arch)), atol=1e-6))
True
"""

from __future__ import annotations

import torch

from neas.nn.builder import static_ensemble
from neas.nn.layers import EnsembleNet, combine
from neas.nn.supernet import Supernet, member_key
from neas.search_spaces.arch import EnsembleArch

__all__ = ["EnsembleNet", "build_ensemble", "combine"]


@torch.no_grad()
def build_ensemble(supernet: Supernet, arch: EnsembleArch) -> EnsembleNet:
    """Extract ``arch`` from ``supernet`` as a static network with copied weights.

    In eval mode its outputs equal ``combine(supernet(x, arch))`` (BN statistics included).
    Torch's random stream is left as it was (the initialisation the copied weights replace
    draws from it).
    """
    with torch.random.fork_rng(devices=[]):
        net = static_ensemble(supernet.space, arch)
    state = {f"stem.{k}": v for k, v in supernet.stem.state_dict().items()}
    for i, op in enumerate(arch.shared):
        for k, v in supernet.layers[i].static_state(op, 0).items():
            state[f"trunk.{i}.{k}"] = v
    for m, ops in enumerate(arch.members):
        for j, op in enumerate(ops):
            layer = supernet.layers[arch.split + j]
            for k, v in layer.static_state(op, m, member_key(m)).items():
                state[f"branches.{m}.{j}.{k}"] = v
        for k, v in supernet.heads[m].state_dict().items():
            state[f"branches.{m}.{len(ops)}.{k}"] = v
    net.load_state_dict({k: v.detach().clone() for k, v in state.items()})
    net = net.to(device=next(supernet.parameters()).device)
    return net.train(supernet.training)

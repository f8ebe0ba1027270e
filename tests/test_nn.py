from __future__ import annotations

import numpy as np
import pytest
import torch

from neas.evaluate import recalibrate_bn
from neas.nn import Supernet, build_ensemble, combine, scale_grad
from neas.nn.layers import Depthwise, depthwise
from neas.search_spaces import EnsembleArch, sample
from tests.conftest import tiny_space


@pytest.mark.parametrize("weights", ["entangled", "separate", "members"])
@pytest.mark.parametrize("image_size", [8, 28])
def test_static_ensemble_matches_supernet(weights: str, image_size: int) -> None:
    torch.manual_seed(0)
    space = tiny_space(image_size)
    net = Supernet(space, weights=weights)
    with torch.no_grad():  # make BN affine params non-trivial so a wrong slice would show
        for p in net.parameters():
            if p.ndim == 1:
                p.uniform_(0.5, 1.5)
    x = torch.randn(24, 1, image_size, image_size)
    rng = np.random.default_rng(0)
    for _ in range(4):
        arch = sample(space, rng)
        recalibrate_bn(net, arch, x)  # per-path statistics, members included
        net.eval()
        with torch.no_grad():
            expected = net(x, arch)
            static = build_ensemble(net, arch).eval()
            got = static.member_logits(x)
            probs = static(x)
        for a, b in zip(expected, got):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(probs, combine(expected))
        torch.testing.assert_close(probs.sum(-1), torch.ones(len(x)))


@pytest.mark.parametrize(
    "kernel,size,stride",
    [(5, 8, 1), (7, 4, 1), (3, 2, 1), (7, 3, 1), (3, 8, 1), (7, 8, 2), (5, 12, 1)],
)
@pytest.mark.parametrize("channels_last", [True, False])
def test_depthwise_matches_conv2d_values_and_gradients(
    kernel: int, size: int, stride: int, channels_last: bool
) -> None:
    """The faster weight gradient is the same gradient, for a weight that is a slice of a larger
    one (the supernet's) and inputs in either memory format."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(5, 12, size, size, dtype=torch.float64).to(memory_format=fmt)
    x.requires_grad_()
    big = torch.randn(16, 1, 7, 7, dtype=torch.float64, requires_grad=True)
    s = (7 - kernel) // 2
    w = big[:12, :, s : s + kernel, s : s + kernel]
    ours = depthwise(x, w, stride)
    ref = torch.nn.functional.conv2d(x, w, None, stride, kernel // 2, 1, 12)
    # where oneDNN's own is slow and the forward-convolution gradient beats it
    slow = stride == 1 and (kernel > 3 or size < kernel) and size * size <= 64
    assert ("DepthwiseGrad" in type(ours.grad_fn).__name__) == slow
    grad = torch.randn_like(ref)
    got = torch.autograd.grad(ours, (x, big), grad)
    want = torch.autograd.grad(ref, (x, big), grad)
    torch.testing.assert_close(ours, ref)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    with torch.no_grad():  # no gradient wanted: the plain convolution's values
        torch.testing.assert_close(depthwise(x, w, stride), ref.detach())


def test_depthwise_module_is_a_conv2d_with_its_state() -> None:
    conv = torch.nn.Conv2d(8, 8, 5, 1, 2, groups=8, bias=False)
    mod = Depthwise(8, 5)
    assert isinstance(mod, torch.nn.Conv2d) and mod.state_dict().keys() == conv.state_dict().keys()
    mod.load_state_dict(conv.state_dict())  # strict: the same names and shapes
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(mod(x), conv(x))


def test_forward_returns_one_logit_tensor_per_member() -> None:
    space = tiny_space(members=3)
    net = Supernet(space)
    arch = sample(space, np.random.default_rng(1))
    outs = net(torch.randn(5, 1, 8, 8), arch)
    assert len(outs) == 3 and all(o.shape == (5, 10) for o in outs)


def test_scale_grad_scales_only_the_gradient() -> None:
    x = torch.ones(3, requires_grad=True)
    y = scale_grad(x, 0.25)
    assert torch.equal(y, x.detach())
    y.sum().backward()
    assert torch.equal(x.grad, torch.full((3,), 0.25))


def test_trunk_gradient_is_the_mean_of_member_gradients() -> None:
    """K identical members (same ops, copied heads): trunk grad equals a single member's."""
    torch.manual_seed(0)
    space = tiny_space(members=3)
    net = Supernet(space).train()
    for head in net.heads[1:]:
        head.load_state_dict(net.heads[0].state_dict())
    base = sample(space, np.random.default_rng(2))
    split = 6
    ops = base.member_ops(0)
    ensemble = EnsembleArch(split=split, shared=ops[:split], members=(ops[split:],) * 3)
    single = EnsembleArch(split=split, shared=ops[:split], members=(ops[split:],))
    x = torch.randn(8, 1, 8, 8)
    stem_w = net.stem.conv[0].weight

    def trunk_grad(arch: EnsembleArch) -> torch.Tensor:
        net.zero_grad()
        torch.manual_seed(1)  # same dropout masks
        sum(o.square().mean() for o in net(x, arch)).backward()
        return stem_w.grad.clone()

    net.heads[0].dropout.p = net.heads[1].dropout.p = net.heads[2].dropout.p = 0.0
    torch.testing.assert_close(trunk_grad(ensemble), trunk_grad(single))


def test_separate_weights_have_one_bank_per_op() -> None:
    space = tiny_space()
    ent, sep = Supernet(space, weights="entangled"), Supernet(space, weights="separate")
    assert len(sep.layers[1].blocks) == 6 and len(ent.layers[1].blocks) == 1
    assert sum(p.numel() for p in sep.parameters()) > 2 * sum(p.numel() for p in ent.parameters())


@pytest.mark.parametrize("weights", ["entangled", "separate", "members"])
def test_mlp_static_ensemble_matches_supernet_and_shrinks(weights: str) -> None:
    from neas.nn.surgery import shrink_supernet
    from neas.search_spaces import create_space

    torch.manual_seed(0)
    space = create_space(
        "mlp", in_channels=7, num_classes=3, width_mult=0.25, head_width=16, dropout=0.0
    )
    net = Supernet(space, weights=weights)
    with torch.no_grad():
        for p in net.parameters():
            if p.ndim == 1:
                p.uniform_(0.5, 1.5)
    x = torch.randn(32, 7, 1, 1)
    rng = np.random.default_rng(0)
    small = space.with_candidates(tuple(c[:3] for c in (la.candidates for la in space.layers)))
    shrunk = shrink_supernet(net, small)
    for _ in range(4):
        arch = sample(small, rng)
        recalibrate_bn(net, arch, x)
        net.eval()
        with torch.no_grad():
            expected = net(x, arch)
            got = build_ensemble(net, arch).eval().member_logits(x)
        recalibrate_bn(shrunk, arch, x)
        with torch.no_grad():
            after = shrunk.eval()(x, arch)
        for a, b, c in zip(expected, got, after):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(a, c)
    # dropout is part of the op: in training mode the k1e*d20 ops drop units, k1e* do not
    net.train()
    plain = EnsembleArch(split=6, shared=(0, 2, 4, 0, 2, 4), members=((), ()))
    torch.testing.assert_close(net(x, plain)[0], net(x, plain)[0])
    noisy = EnsembleArch(split=6, shared=(1, 3, 5, 1, 3, 5), members=((), ()))
    assert not torch.equal(net(x, noisy)[0], net(x, noisy)[0])


def test_members_mode_gives_each_member_its_own_weights_after_the_split() -> None:
    torch.manual_seed(0)
    space = tiny_space()
    net = Supernet(space, weights="members")
    layer = net.layers[5]
    assert sorted(layer.blocks) == ["m0", "m1", "trunk"]
    a, b = layer.blocks["m0"].expand_weight, layer.blocks["m1"].expand_weight
    assert not torch.equal(a, b)  # independently initialised, like a deep ensemble's members
    # the same op after the split runs different weights per member; in the trunk, the trunk's
    arch = EnsembleArch(split=3, shared=(0, 0, 0), members=((0,) * 17, (0,) * 17))
    x = torch.randn(8, 1, 8, 8)
    net.train()
    out = net(x, arch)
    (out[0].sum() + 0 * out[1].sum()).backward()
    assert layer.blocks["m0"].expand_weight.grad is not None
    assert layer.blocks["m1"].expand_weight.grad.abs().sum() == 0  # member 1 got no loss
    assert layer.blocks["trunk"].expand_weight.grad is None  # layer 5 is after the split
    assert net.layers[1].blocks["trunk"].expand_weight.grad is not None

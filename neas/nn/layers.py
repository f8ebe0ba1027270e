"""Static modules: the blocks shared by the supernet and exported ensembles, and the ensemble."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class SqueezeExcite(nn.Module):
    """SE: global pool -> 1x1 reduce -> ReLU -> 1x1 expand -> hard-sigmoid gate."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.reduce = Pointwise(channels, reduced)
        self.expand = Pointwise(reduced, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * F.hardsigmoid(self.expand(F.relu(self.reduce(s))))


def pointwise(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """A 1x1 convolution. On N x C x 1 x 1 maps (table rows, pooled features) it is computed as
    the matrix product it is: the same result, about 3.5x faster than ``conv2d`` forward and
    backward on one CPU thread (256 x 128 -> 256). While tracing (the ONNX export) it stays a
    ``Conv`` node: the graph does not depend on the map size it was traced with."""
    if not torch.jit.is_tracing() and x.shape[-1] == 1 and x.shape[-2] == 1:
        return F.linear(x.flatten(1), weight.flatten(1), bias)[:, :, None, None]
    return F.conv2d(x, weight, bias)


#: The largest map (pixels) on which :func:`depthwise_weight_grad` beat oneDNN: 2.3-3.7x on
#: 2x2 to 8x8 maps of the digits supernet, 0.6-1.0x on 14x14 (one thread).
FAST_GRAD_MAX_PIXELS = 64


def depthwise(x: torch.Tensor, weight: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """A depthwise convolution ('same' padding, no bias): ``F.conv2d(x, weight, None, stride,
    k // 2, 1, C)``, the same values, with a faster weight gradient on a CPU.

    oneDNN computes the weight gradient of a depthwise convolution with a kernel of 5 or 7 (or a
    3x3 kernel on a map smaller than 3) with its generic grouped-convolution kernel, 5-30x
    slower than the forward pass on one thread, about a quarter of a digits supernet's training
    step. At stride 1, on maps up to 8x8, :class:`_DepthwiseGrad` computes that gradient as a
    depthwise *forward* convolution, 2-5x faster (``benchmarks/train_step.py``). On CUDA, at
    stride 2 (where oneDNN's own is as fast), on larger maps, without gradients or while tracing
    it is ``F.conv2d`` itself.
    """
    k = weight.shape[-1]
    if (
        x.device.type == "cpu"
        and stride == 1
        and torch.is_grad_enabled()
        and weight.requires_grad
        and not torch.jit.is_tracing()
        and (k > 3 or min(x.shape[-2:]) < k)
        and x.shape[-1] * x.shape[-2] <= FAST_GRAD_MAX_PIXELS
    ):
        return _DepthwiseGrad.apply(x, weight)
    return F.conv2d(x, weight, None, stride, k // 2, 1, weight.shape[0])


class _DepthwiseGrad(torch.autograd.Function):
    """``F.conv2d(x, w, None, 1, k // 2, 1, C)`` whose weight gradient, the sum over images and
    positions ``o`` of ``grad[n, c, o] * x_padded[n, c, o + tap]``, is
    :func:`depthwise_weight_grad`; the input gradient is oneDNN's (fast for every kernel)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        return F.conv2d(x, weight, None, 1, weight.shape[-1] // 2, 1, weight.shape[0])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        c, k = weight.shape[0], weight.shape[-1]
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad,
                x,
                weight,
                None,
                [1, 1],
                [k // 2] * 2,
                [1, 1],
                False,
                [0, 0],
                c,
                [True, False, False],
            )[0]
        return grad_x, depthwise_weight_grad(x, grad, k).to(weight.dtype)


def depthwise_weight_grad(x: torch.Tensor, grad: torch.Tensor, kernel: int) -> torch.Tensor:
    """The weight gradient (C x 1 x k x k) of a stride-1 'same' depthwise convolution of ``x``
    whose output gradient is ``grad``: each padded (image, channel) map convolved with its
    output gradient as the kernel (one depthwise forward convolution), summed over images."""
    n, c, h, w = x.shape
    maps = x.reshape(1, n * c, h, w)
    kernels = grad.reshape(n * c, 1, h, w)
    taps = F.conv2d(maps, kernels, None, 1, kernel // 2, 1, n * c)[0, :, :kernel, :kernel]
    return taps.reshape(n, c, kernel, kernel).sum(0).unsqueeze(1)


class Depthwise(nn.Conv2d):
    """``nn.Conv2d(ch, ch, kernel, stride, kernel // 2, groups=ch, bias=False)`` (same
    parameters and state) whose forward is :func:`depthwise`."""

    def __init__(self, channels: int, kernel: int, *, stride: int = 1) -> None:
        super().__init__(
            channels, channels, kernel, stride, kernel // 2, groups=channels, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depthwise(x, self.weight, self.stride[0])


class Pointwise(nn.Conv2d):
    """``nn.Conv2d(in_ch, out_ch, 1)`` (same parameters and state) whose forward is
    :func:`pointwise`."""

    def __init__(self, in_ch: int, out_ch: int, *, bias: bool = True) -> None:
        super().__init__(in_ch, out_ch, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pointwise(x, self.weight, self.bias)


def conv_bn(
    in_ch: int, out_ch: int, kernel: int, *, stride: int = 1, groups: int = 1, act: bool = True
) -> nn.Sequential:
    """conv (no bias, 'same' padding) -> BN -> optional Swish."""
    conv: nn.Module
    if kernel == 1 and stride == 1 and groups == 1:
        conv = Pointwise(in_ch, out_ch, bias=False)
    elif groups == in_ch == out_ch:
        conv = Depthwise(in_ch, kernel, stride=stride)
    else:
        conv = nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False)
    mods: list[nn.Module] = [conv, nn.BatchNorm2d(out_ch)]
    if act:
        mods.append(nn.SiLU())
    return nn.Sequential(*mods)


class MBConv(nn.Module):
    """Static inverted residual: expand 1x1, depthwise kxk, SE, project 1x1, optional residual."""

    def __init__(
        self, in_ch: int, out_ch: int, *, kernel: int, mid: int, reduced: int, stride: int
    ) -> None:
        super().__init__()
        self.residual = stride == 1 and in_ch == out_ch
        self.expand = conv_bn(in_ch, mid, 1)
        self.depthwise = conv_bn(mid, mid, kernel, stride=stride, groups=mid)
        self.se = SqueezeExcite(mid, reduced)
        self.project = conv_bn(mid, out_ch, 1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y


class MLPBlock(nn.Module):
    """Residual MLP block on N x C x 1 x 1: 1x1 expand -> BN -> Swish -> dropout -> 1x1 project
    -> BN, plus the input."""

    def __init__(self, channels: int, *, mid: int, dropout: float) -> None:
        super().__init__()
        self.expand = conv_bn(channels, mid, 1)
        self.dropout = nn.Dropout(dropout)
        self.project = conv_bn(mid, channels, 1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(self.dropout(self.expand(x)))


class PeriodicEmbedding(nn.Module):
    """Periodic embeddings of numeric features (Gorishniy et al. 2022, "PLR(lite)"): each
    feature x of N x F x 1 x 1 becomes ReLU(W [cos 2pi c x, sin 2pi c x] + b) with ``k``
    trainable frequencies c per feature and one linear layer W (2k -> d) shared by all
    features; out: N x (F d) x 1 x 1. Frequencies start at N(0, ``scale``^2)."""

    def __init__(self, features: int, *, frequencies: int, dim: int, scale: float) -> None:
        super().__init__()
        self.frequencies = nn.Parameter(torch.randn(features, frequencies) * scale)
        self.linear = nn.Parameter(torch.empty(2 * frequencies, dim))
        self.bias = nn.Parameter(torch.empty(dim))
        bound = (2 * frequencies) ** -0.5  # nn.Linear's default initialisation
        nn.init.uniform_(self.linear, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = 2 * math.pi * self.frequencies * x.flatten(1).unsqueeze(-1)  # N x F x k
        h = torch.relu(torch.cat([torch.cos(z), torch.sin(z)], dim=-1) @ self.linear + self.bias)
        return h.flatten(1)[:, :, None, None]


class PiecewiseLinearEncoding(nn.Module):
    """Piecewise-linear encoding of numeric features (Gorishniy et al. 2022, "PLE"; their
    MLP-Q): each feature x of N x F x 1 x 1 becomes ``bins`` values, bin t holding
    clamp((x - e_t) / (e_{t+1} - e_t), 0, 1), the first bin unclamped below and the last above,
    so the encoding is monotone and lossless. No trainable parts and no fitted state: the edges
    are the standard-normal quantiles of ``bins + 1`` evenly spaced probabilities in
    [``tail``, 1 - ``tail``], because the features reach the network as normal scores (the
    table encoder's quantile map, then standardisation), so each bin holds about the same share
    of a column's rows. Out: N x (F bins) x 1 x 1."""

    def __init__(self, bins: int, *, tail: float) -> None:
        super().__init__()
        p = torch.linspace(tail, 1.0 - tail, bins + 1, dtype=torch.float64)
        edges = torch.special.ndtri(p).float()
        self.register_buffer("left", edges[:-1], persistent=False)
        self.register_buffer("width", edges[1:] - edges[:-1], persistent=False)
        lo, hi = torch.zeros(bins), torch.ones(bins)
        lo[0], hi[-1] = -math.inf, math.inf
        self.register_buffer("low", lo, persistent=False)
        self.register_buffer("high", hi, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = (x.flatten(1).unsqueeze(-1) - self.left) / self.width  # N x F x bins
        r = torch.maximum(torch.minimum(r, self.high), self.low)
        return r.flatten(1)[:, :, None, None]


class DepthwiseSeparable(nn.Module):
    """The fixed first block: depthwise 3x3 -> SE -> pointwise 1x1 (+ residual)."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.depthwise = conv_bn(channels, channels, 3, groups=channels)
        self.se = SqueezeExcite(channels, reduced)
        self.pointwise = conv_bn(channels, channels, 1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pointwise(self.se(self.depthwise(x)))


class Stem(nn.Module):
    """conv3x3 (stride) -> BN -> Swish, then the fixed depthwise-separable block."""

    def __init__(self, in_ch: int, out_ch: int, *, stride: int, reduced: int) -> None:
        super().__init__()
        self.conv = conv_bn(in_ch, out_ch, 3, stride=stride)
        self.block = DepthwiseSeparable(out_ch, reduced)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.conv(x))


class Head(nn.Module):
    """1x1 conv -> BN -> Swish -> pool -> 1x1 conv -> Swish -> dropout -> linear."""

    def __init__(
        self, in_ch: int, *, head_width: int, feature_width: int, num_classes: int, dropout: float
    ) -> None:
        super().__init__()
        self.conv = conv_bn(in_ch, head_width, 1)
        self.features = Pointwise(head_width, feature_width)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(feature_width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x).mean((2, 3), keepdim=True)
        x = F.silu(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal (fan-out) convs, unit BN, small-normal linears, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


def combine(logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """The ensemble's prediction: the mean of the members' softmax probabilities.

    Probabilities, not logits: each member is a classifier on its own, and probability
    averaging is the standard deep-ensemble rule.
    """
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

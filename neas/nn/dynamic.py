"""Weight-sliceable MBConv for the supernet.

One ``DynamicMBConv`` holds weights for its largest op; op (k, e) uses the centre k x k of the
depthwise kernel and the first ``make_divisible(in_ch * e)`` mid channels (Once-for-All style).
BatchNorm keeps one set of running statistics per *path* (the trunk and each member), because
members that share a layer's weights see different inputs: their statistics must not mix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neas.nn.layers import depthwise, pointwise
from neas.search_spaces.spec import OpChoice, effective_kernel, make_divisible


class PathBatchNorm2d(nn.Module):
    """BatchNorm over the first ``x.shape[1]`` channels, with running stats per path.

    ``momentum=None`` gives a cumulative average (used by BN recalibration).
    """

    def __init__(self, num_features: int, *, num_paths: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.momentum: float | None = 0.1
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_paths, num_features))
        self.register_buffer("running_var", torch.ones(num_paths, num_features))
        self.register_buffer("num_batches_tracked", torch.zeros(num_paths, dtype=torch.long))

    def reset_running_stats(self) -> None:
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches_tracked.zero_()

    def forward(self, x: torch.Tensor, path: int = 0) -> torch.Tensor:
        c = x.shape[1]
        momentum = self.momentum if self.momentum is not None else 0.0
        if self.training:
            self.num_batches_tracked[path] += 1
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked[path])
        return F.batch_norm(
            x,
            self.running_mean[path, :c],
            self.running_var[path, :c],
            self.weight[:c],
            self.bias[:c],
            self.training,
            momentum,
            self.eps,
        )

    def static_state(self, channels: int, path: int) -> dict[str, torch.Tensor]:
        """The state of a static ``BatchNorm2d`` with this path's statistics for ``channels``."""
        return {
            "weight": self.weight[:channels],
            "bias": self.bias[:channels],
            "running_mean": self.running_mean[path, :channels],
            "running_var": self.running_var[path, :channels],
            "num_batches_tracked": self.num_batches_tracked[path],
        }


class DynamicMBConv(nn.Module):
    """An MBConv whose weights serve every op up to ``max_op`` by slicing."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        stride: int,
        max_op: OpChoice,
        input_size: int,
        num_paths: int,
        se_ratio: float = 0.25,
    ) -> None:
        super().__init__()
        self.in_ch, self.out_ch, self.stride = in_ch, out_ch, stride
        self.input_size, self.se_ratio = input_size, se_ratio
        self.max_op = max_op
        mid = self.mid_channels(max_op)
        red = make_divisible(mid * se_ratio)
        k = max_op.kernel
        self.expand_weight = nn.Parameter(torch.empty(mid, in_ch, 1, 1))
        self.bn1 = PathBatchNorm2d(mid, num_paths=num_paths)
        self.dw_weight = nn.Parameter(torch.empty(mid, 1, k, k))
        self.bn2 = PathBatchNorm2d(mid, num_paths=num_paths)
        self.se_reduce_weight = nn.Parameter(torch.empty(red, mid, 1, 1))
        self.se_reduce_bias = nn.Parameter(torch.zeros(red))
        self.se_expand_weight = nn.Parameter(torch.empty(mid, red, 1, 1))
        self.se_expand_bias = nn.Parameter(torch.zeros(mid))
        self.project_weight = nn.Parameter(torch.empty(out_ch, mid, 1, 1))
        self.bn3 = PathBatchNorm2d(out_ch, num_paths=num_paths)
        for w in (
            self.expand_weight,
            self.dw_weight,
            self.se_reduce_weight,
            self.se_expand_weight,
            self.project_weight,
        ):
            nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
        if self.residual:  # a new residual block starts as the identity
            nn.init.zeros_(self.bn3.weight)

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_ch == self.out_ch

    def with_max_op(self, max_op: OpChoice) -> DynamicMBConv:
        """A fresh block of the same layer sized for ``max_op`` (weights to be copied in)."""
        return DynamicMBConv(
            self.in_ch,
            self.out_ch,
            stride=self.stride,
            max_op=max_op,
            input_size=self.input_size,
            num_paths=self.bn1.running_mean.shape[0],
            se_ratio=self.se_ratio,
        )

    def mid_channels(self, op: OpChoice) -> int:
        return make_divisible(self.in_ch * op.expand)

    def _slices(self, op: OpChoice) -> tuple[int, int, int, int]:
        if op.kernel > self.max_op.kernel or op.expand > self.max_op.expand:
            raise ValueError(f"op {op.name} is larger than this layer's {self.max_op.name}")
        mid = self.mid_channels(op)
        red = make_divisible(mid * self.se_ratio)
        k = effective_kernel(op.kernel, self.input_size)
        start = (self.max_op.kernel - k) // 2
        return mid, red, k, start

    def forward(self, x: torch.Tensor, op: OpChoice, path: int = 0) -> torch.Tensor:
        mid, red, k, s = self._slices(op)
        h = F.silu(self.bn1(pointwise(x, self.expand_weight[:mid]), path))
        dw = self.dw_weight[:mid, :, s : s + k, s : s + k]
        h = F.silu(self.bn2(depthwise(h, dw, self.stride), path))
        g = F.relu(
            pointwise(
                h.mean((2, 3), keepdim=True),
                self.se_reduce_weight[:red, :mid],
                self.se_reduce_bias[:red],
            )
        )
        g = pointwise(g, self.se_expand_weight[:mid, :red], self.se_expand_bias[:mid])
        h = h * F.hardsigmoid(g)
        y = self.bn3(pointwise(h, self.project_weight[:, :mid]), path)
        return x + y if self.residual else y

    @torch.no_grad()
    def static_state(self, op: OpChoice, path: int) -> dict[str, torch.Tensor]:
        """The state of the static ``MBConv`` (``neas.nn.builder``) computing ``forward(x, op,
        path)`` in eval mode: this op's slices of every weight, this path's BN statistics."""
        mid, red, k, s = self._slices(op)
        state = {
            "expand.0.weight": self.expand_weight[:mid],
            "depthwise.0.weight": self.dw_weight[:mid, :, s : s + k, s : s + k],
            "se.reduce.weight": self.se_reduce_weight[:red, :mid],
            "se.reduce.bias": self.se_reduce_bias[:red],
            "se.expand.weight": self.se_expand_weight[:mid, :red],
            "se.expand.bias": self.se_expand_bias[:mid],
            "project.0.weight": self.project_weight[:, :mid],
        }
        for prefix, bn, channels in (
            ("expand.1", self.bn1, mid),
            ("depthwise.1", self.bn2, mid),
            ("project.1", self.bn3, self.out_ch),
        ):
            state |= {f"{prefix}.{k}": v for k, v in bn.static_state(channels, path).items()}
        return state


class DynamicMLP(nn.Module):
    """A residual MLP block (1x1 convs on N x C x 1 x 1) whose weights serve every hidden
    width up to ``max_op``'s: op (e, dropout) uses the first ``make_divisible(C * e)`` hidden
    units and its own dropout rate."""

    def __init__(self, channels: int, *, max_op: OpChoice, num_paths: int) -> None:
        super().__init__()
        self.in_ch = self.out_ch = channels
        self.max_op = max_op
        mid = self.mid_channels(max_op)
        self.expand_weight = nn.Parameter(torch.empty(mid, channels, 1, 1))
        self.bn1 = PathBatchNorm2d(mid, num_paths=num_paths)
        self.project_weight = nn.Parameter(torch.empty(channels, mid, 1, 1))
        self.bn3 = PathBatchNorm2d(channels, num_paths=num_paths)
        for w in (self.expand_weight, self.project_weight):
            nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.bn3.weight)  # a new residual block starts as the identity

    def with_max_op(self, max_op: OpChoice) -> DynamicMLP:
        return DynamicMLP(self.in_ch, max_op=max_op, num_paths=self.bn1.running_mean.shape[0])

    def mid_channels(self, op: OpChoice) -> int:
        return make_divisible(self.in_ch * op.expand)

    def _mid(self, op: OpChoice) -> int:
        if op.expand > self.max_op.expand:
            raise ValueError(f"op {op.name} is larger than this layer's {self.max_op.name}")
        return self.mid_channels(op)

    def forward(self, x: torch.Tensor, op: OpChoice, path: int = 0) -> torch.Tensor:
        mid = self._mid(op)
        h = F.silu(self.bn1(pointwise(x, self.expand_weight[:mid]), path))
        h = F.dropout(h, op.dropout, self.training)
        return x + self.bn3(pointwise(h, self.project_weight[:, :mid]), path)

    @torch.no_grad()
    def static_state(self, op: OpChoice, path: int) -> dict[str, torch.Tensor]:
        """The state of the static ``MLPBlock`` computing ``forward(x, op, path)`` in eval."""
        mid = self._mid(op)
        state = {
            "expand.0.weight": self.expand_weight[:mid],
            "project.0.weight": self.project_weight[:, :mid],
        }
        for prefix, bn, channels in (
            ("expand.1", self.bn1, mid),
            ("project.1", self.bn3, self.out_ch),
        ):
            state |= {f"{prefix}.{k}": v for k, v in bn.static_state(channels, path).items()}
        return state

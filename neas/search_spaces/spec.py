"""Torch-free, frozen, JSON-serialisable description of an ensemble search space.

A space is a stem, a fixed first block, searchable layers (each with a tuple of candidate op
ids into ``ops``; ``SKIP`` = -1 where depth may shrink), one head per member, the number of
members K, and the largest allowed split point (how many leading layers the members share).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

SKIP = -1


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to a multiple of ``divisor``, never going below 90% of it.

    >>> make_divisible(16 * 6), make_divisible(4.0), make_divisible(24 * 0.25)
    (96, 8, 8)
    """
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def conv_out(size: int, stride: int) -> int:
    """Spatial size after a 'same'-padded odd-kernel conv with ``stride``."""
    return (size + stride - 1) // stride


def effective_kernel(kernel: int, size: int) -> int:
    """Largest kernel whose taps can touch a ``size``-wide input at padding ``kernel // 2``.

    Cropping a depthwise kernel to this gives exactly the same output, e.g. a k7 on a 2x2 map is
    a k3: ``effective_kernel(7, 2) == 3``.
    """
    return min(kernel, 2 * size - 1)


@dataclass(frozen=True)
class OpChoice:
    """One candidate op: depthwise kernel size (1 for MLP blocks), expansion ratio, dropout.

    >>> OpChoice(3, 6).name, OpChoice(1, 2, 0.2).name
    ('k3e6', 'k1e2d20')
    """

    kernel: int
    expand: int
    dropout: float = 0.0

    @property
    def name(self) -> str:
        drop = f"d{round(100 * self.dropout)}" if self.dropout else ""
        return f"k{self.kernel}e{self.expand}{drop}"


@dataclass(frozen=True)
class StemSpec:
    """conv3x3 (stride) -> BN -> Swish, then a fixed depthwise-separable block with SE
    (``mbconv``); for ``mlp``, a linear layer -> BN -> Swish, after periodic embeddings of each
    feature when ``frequencies`` > 0 (``embedding_dim`` values per feature), or its
    piecewise-linear encoding when ``bins`` > 0 (``bins`` values per feature)."""

    in_channels: int
    out_channels: int
    stride: int
    input_size: int
    se_ratio: float = 0.25
    frequencies: int = 0
    embedding_dim: int = 0
    bins: int = 0

    @property
    def linear_in(self) -> int:
        """Width entering the stem's linear layer: the features, or their embeddings."""
        if self.frequencies:
            return self.in_channels * self.embedding_dim
        return self.in_channels * max(1, self.bins)

    @property
    def output_size(self) -> int:
        return conv_out(self.input_size, self.stride)


@dataclass(frozen=True)
class LayerSpec:
    """A searchable MBConv layer; ``candidates`` are op ids (``SKIP`` allowed if listed)."""

    index: int
    stage: int
    in_channels: int
    out_channels: int
    stride: int
    input_size: int
    first_in_stage: bool
    candidates: tuple[int, ...]
    se_ratio: float = 0.25

    @property
    def output_size(self) -> int:
        return conv_out(self.input_size, self.stride)

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels

    @property
    def allows_skip(self) -> bool:
        return SKIP in self.candidates


@dataclass(frozen=True)
class HeadSpec:
    """Per-member head: 1x1 conv -> BN -> Swish -> pool -> 1x1 conv -> Swish -> dropout -> fc."""

    in_channels: int
    head_width: int
    feature_width: int
    num_classes: int
    input_size: int
    dropout: float = 0.2


@dataclass(frozen=True)
class SearchSpace:
    """An ensemble search space. Build one with ``neas.search_spaces.create_space``.

    ``block`` names the family of the stem and the searchable layers: ``mbconv`` (conv stem,
    inverted residuals) or ``mlp`` (a linear stem and residual MLP blocks, written as 1x1
    convolutions on N x F x 1 x 1 inputs so that every stage handles tables like images), or
    any family registered in ``neas.nn.families``.
    """

    name: str
    ops: tuple[OpChoice, ...]
    stem: StemSpec
    layers: tuple[LayerSpec, ...]
    head: HeadSpec
    num_members: int
    image_size: int
    in_channels: int
    num_classes: int
    overrides: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    block: str = "mbconv"

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def op_name(self, op: int) -> str:
        return "skip" if op == SKIP else self.ops[op].name

    def op_id(self, name: str) -> int:
        if name == "skip":
            return SKIP
        for i, op in enumerate(self.ops):
            if op.name == name:
                return i
        valid = ", ".join(["skip", *(o.name for o in self.ops)])
        raise ValueError(f"unknown op {name!r}; valid ops: {valid}")

    def num_architectures(self) -> float:
        """How many distinct ensemble encodings the space holds (log-free, may be huge)."""
        k = self.num_members
        total = 0.0
        for split in range(self.num_layers + 1):
            n = 1.0
            for i, layer in enumerate(self.layers):
                n *= len(layer.candidates) ** (1 if i < split else k)
            total += n
        return total

    def log10_size(self) -> float:
        return math.log10(self.num_architectures())

    def with_candidates(self, candidates: tuple[tuple[int, ...], ...]) -> SearchSpace:
        """A new space with each layer's candidate ops replaced (used by shrinking)."""
        if len(candidates) != self.num_layers:
            raise ValueError(f"expected {self.num_layers} candidate tuples, got {len(candidates)}")
        layers = []
        for layer, cands in zip(self.layers, candidates):
            cands = tuple(cands)
            if not any(c != SKIP for c in cands):
                raise ValueError(f"layer {layer.index} would have no non-skip op left")
            if SKIP in cands and not layer.allows_skip:
                raise ValueError(f"layer {layer.index} is a stage's first layer: no skip")
            layers.append(replace(layer, candidates=cands))
        return replace(self, layers=tuple(layers))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSpace:
        return cls(
            name=data["name"],
            ops=tuple(OpChoice(**o) for o in data["ops"]),
            stem=StemSpec(**data["stem"]),
            layers=tuple(
                LayerSpec(**{**lay, "candidates": tuple(lay["candidates"])})
                for lay in data["layers"]
            ),
            head=HeadSpec(**data["head"]),
            num_members=data["num_members"],
            image_size=data["image_size"],
            in_channels=data["in_channels"],
            num_classes=data["num_classes"],
            overrides=dict(data.get("overrides", {})),
            block=data.get("block", "mbconv"),
        )

    @classmethod
    def from_json(cls, text: str) -> SearchSpace:
        return cls.from_dict(json.loads(text))

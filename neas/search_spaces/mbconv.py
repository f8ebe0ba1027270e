"""The NEAS MBConv ensemble space (Cream/NEAS layout), adapted to any input resolution."""

from __future__ import annotations

from neas.errors import ConfigError
from neas.search_spaces.spec import (
    SKIP,
    HeadSpec,
    LayerSpec,
    OpChoice,
    SearchSpace,
    StemSpec,
    conv_out,
    make_divisible,
)

OPS = tuple(OpChoice(k, e) for k in (3, 5, 7) for e in (4, 6))  # 0=k3e4 ... 5=k7e6
STAGE_CHANNELS = (24, 40, 80, 112, 160)
STAGE_STRIDES = (2, 2, 2, 1, 2)
LAYERS_PER_STAGE = 4
STEM_CHANNELS = 16
#: The paper's defaults (ImageNet); ``neas cost`` without a dataset uses them too.
MEMBERS, WIDTH_MULT, HEAD_WIDTH, FEATURE_WIDTH = 2, 1.0, 960, 1280
PAPER_IMAGE_SIZE, PAPER_CLASSES, PAPER_IN_CHANNELS = 224, 1000, 3


def _strides(image_size: int, wanted: list[int]) -> list[int]:
    """Drop stride-2 steps, earliest first, until the last feature map is at least 2x2."""
    strides = list(wanted)
    while True:
        size = image_size
        for s in strides:
            size = conv_out(size, s)
        if size >= 2 or 2 not in strides:
            return strides
        strides[strides.index(2)] = 1


def mbconv_space(
    *,
    num_members: int = MEMBERS,
    image_size: int = PAPER_IMAGE_SIZE,
    in_channels: int = PAPER_IN_CHANNELS,
    num_classes: int = PAPER_CLASSES,
    width_mult: float = WIDTH_MULT,
    head_width: int = HEAD_WIDTH,
    feature_width: int = FEATURE_WIDTH,
    dropout: float = 0.2,
) -> SearchSpace:
    """The NEAS space: stem, DS block, 5 stages x 4 MBConv layers, K member heads.

    >>> space = mbconv_space(image_size=8, in_channels=1, num_classes=10)
    >>> space.num_layers, space.layers[-1].output_size
    (20, 2)
    """
    if num_members < 1:
        raise ConfigError(f"num_members must be >= 1, got {num_members}")
    if image_size < 2:
        raise ConfigError(
            f"the mbconv space takes images of at least 2x2, got {image_size}x{image_size}; "
            "for a table (N x F features) use --space mlp"
        )
    if width_mult <= 0:
        raise ConfigError(f"width_mult must be > 0, got {width_mult}")
    stem_ch = make_divisible(STEM_CHANNELS * width_mult)
    strides = _strides(image_size, [2, *STAGE_STRIDES])
    stem = StemSpec(
        in_channels=in_channels, out_channels=stem_ch, stride=strides[0], input_size=image_size
    )
    layers: list[LayerSpec] = []
    in_ch, size = stem_ch, stem.output_size
    all_ops = tuple(range(len(OPS)))
    for stage, (ch, stride) in enumerate(zip(STAGE_CHANNELS, strides[1:])):
        out_ch = make_divisible(ch * width_mult)
        for j in range(LAYERS_PER_STAGE):
            first = j == 0
            layer = LayerSpec(
                index=len(layers),
                stage=stage,
                in_channels=in_ch,
                out_channels=out_ch,
                stride=stride if first else 1,
                input_size=size,
                first_in_stage=first,
                candidates=all_ops if first else (*all_ops, SKIP),
            )
            layers.append(layer)
            in_ch, size = out_ch, layer.output_size
    head = HeadSpec(
        in_channels=in_ch,
        head_width=head_width,
        feature_width=feature_width,
        num_classes=num_classes,
        input_size=size,
        dropout=dropout,
    )
    return SearchSpace(
        name="mbconv",
        ops=OPS,
        stem=stem,
        layers=tuple(layers),
        head=head,
        num_members=num_members,
        image_size=image_size,
        in_channels=in_channels,
        num_classes=num_classes,
        overrides={
            "num_members": num_members,
            "image_size": image_size,
            "in_channels": in_channels,
            "num_classes": num_classes,
            "width_mult": width_mult,
            "head_width": head_width,
            "feature_width": feature_width,
            "dropout": dropout,
        },
    )

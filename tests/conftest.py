from __future__ import annotations

import pytest
import torch

from neas.search_spaces import SearchSpace, create_space

torch.set_num_threads(1)  # tiny nets: one thread is as fast, and robust to a busy machine


def tiny_space(image_size: int = 8, *, members: int = 2, in_channels: int = 1) -> SearchSpace:
    """A narrow mbconv space that trains in seconds on CPU."""
    return create_space(
        "mbconv",
        image_size=image_size,
        in_channels=in_channels,
        num_classes=10,
        num_members=members,
        width_mult=0.25,
        head_width=32,
        feature_width=32,
    )


@pytest.fixture
def space() -> SearchSpace:
    return tiny_space()

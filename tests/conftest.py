from __future__ import annotations

import pytest
import torch

from neas.config import DataOptions, RunConfig, ShrinkConfig, SpaceOptions, TrainConfig
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


#: The tiny space's overrides as ``SpaceOptions`` (for pipeline-level tests).
TINY = SpaceOptions(width_mult=0.25, head_width=32, feature_width=32)
NO_SHRINK = ShrinkConfig(at=())


def tiny_run(
    *,
    epochs: int = 1,
    max_train: int | None = 300,
    members: int | None = None,
    batch_size: int = 64,
    summary_samples: int = 1,
    shrink: ShrinkConfig = NO_SHRINK,
    weights: str = "entangled",
    seed: int = 0,
) -> RunConfig:
    """A run configuration that trains in seconds: tiny space, capped data, no shrinking."""
    return RunConfig(
        data=DataOptions(max_train=max_train),
        space=SpaceOptions(width_mult=0.25, head_width=32, feature_width=32, members=members),
        train=TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            summary_samples=summary_samples,
            weights=weights,
        ),
        shrink=shrink,
    ).with_seed(seed)

"""The search space a job trains: a registered space's options (``SpaceOptions``) resolved
against the data (its inputs, classes and image size), and refused before a weight is allocated
when its supernet would be too large. The run builds it once (``neas.run.Run.search_space``)."""

from __future__ import annotations

from neas.config import MAX_SUPERNET_PARAMS, SMALL_IMAGE, SMALL_PRESETS, SpaceOptions
from neas.cost import supernet_params_floor
from neas.data import Dataset
from neas.errors import ConfigError
from neas.search_spaces import SearchSpace, create_space


def build_space(options: SpaceOptions, dataset: Dataset) -> SearchSpace:
    """The space ``options`` name, for ``dataset``'s inputs and classes: ``auto`` resolved, the
    compact preset for small images (``SMALL_PRESETS``) where ``options`` leave a size open; a
    one-line ``ConfigError`` for a supernet over ``MAX_SUPERNET_PARAMS`` (before a weight is
    allocated) or an embedding on images.

    >>> from neas.data import load_dataset
    >>> build_space(SpaceOptions(), load_dataset("digits")).num_layers
    20
    """
    name = options.resolved(dataset)
    small = dataset.image_size <= SMALL_IMAGE
    preset = SMALL_PRESETS.get(name, {}) if small else {}
    chosen = {
        "width_mult": options.width_mult,
        "head_width": options.head_width,
        "feature_width": options.feature_width,
    }
    overrides = {k: (v if v is not None else preset.get(k)) for k, v in chosen.items()}
    if options.embedding is not None:
        if name != "mlp":
            raise ConfigError("--embedding applies to tables (the mlp space) only")
        overrides["embedding"] = options.embedding
    space = create_space(
        name,
        num_members=options.members,
        image_size=dataset.image_size,
        in_channels=dataset.in_channels,
        num_classes=dataset.num_classes,
        **overrides,
    )
    floor = supernet_params_floor(space)
    if floor > MAX_SUPERNET_PARAMS:
        raise ConfigError(
            f"this space's supernet would hold over {floor:,} parameters (the limit is "
            f"{MAX_SUPERNET_PARAMS:,}); lower --width-mult, --head-width, --feature-width "
            "or --members"
        )
    return space

"""Search spaces as torch-free data, and a small registry of named space factories.

>>> from neas.search_spaces import create_space, list_spaces
>>> list_spaces()
['mbconv', 'mlp']
>>> create_space("mbconv", image_size=32, num_classes=10).num_members
2
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from neas.errors import UnknownSpaceError
from neas.search_spaces.arch import (
    NEAS_ARCH_LISTS,
    EnsembleArch,
    InvalidArchError,
    decode,
    encode,
    from_neas_arch_list,
    genome_bounds,
    sample,
    validate,
)
from neas.search_spaces.mbconv import mbconv_space
from neas.search_spaces.mlp import mlp_space
from neas.search_spaces.spec import (
    SKIP,
    HeadSpec,
    LayerSpec,
    OpChoice,
    SearchSpace,
    StemSpec,
    make_divisible,
)

__all__ = [
    "NEAS_ARCH_LISTS",
    "SKIP",
    "EnsembleArch",
    "HeadSpec",
    "InvalidArchError",
    "LayerSpec",
    "OpChoice",
    "SearchSpace",
    "StemSpec",
    "UnknownSpaceError",
    "create_space",
    "decode",
    "encode",
    "from_neas_arch_list",
    "genome_bounds",
    "list_spaces",
    "make_divisible",
    "register_space",
    "sample",
    "validate",
]

_REGISTRY: dict[str, Callable[..., SearchSpace]] = {}


def register_space(name: str, factory: Callable[..., SearchSpace]) -> None:
    """Register a factory ``factory(**overrides) -> SearchSpace`` under ``name``."""
    _REGISTRY[name] = factory


def list_spaces(pattern: str = "*") -> list[str]:
    """Sorted registered space names matching a shell-style ``pattern``."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def create_space(name: str, **overrides: object) -> SearchSpace:
    """Build a registered space; ``None`` overrides are dropped so the space's defaults hold."""
    if name not in _REGISTRY:
        raise UnknownSpaceError(
            f"unknown search space {name!r}; valid spaces: {', '.join(list_spaces())}"
        )
    return _REGISTRY[name](**{k: v for k, v in overrides.items() if v is not None})


register_space("mbconv", mbconv_space)
register_space("mlp", mlp_space)

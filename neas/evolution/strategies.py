"""The registry of search strategies: one narrow interface, one implementation per file.

>>> list_strategies()
['nsga2', 'optuna', 'random']
"""

from __future__ import annotations

from neas.errors import ConfigError, UnknownStrategyError
from neas.evolution._base import SearchStrategy
from neas.evolution._nsga2 import NSGA2Search
from neas.evolution._optuna import OptunaSearch
from neas.evolution._random import RandomSearch

_STRATEGIES: dict[str, type[SearchStrategy]] = {
    "nsga2": NSGA2Search,
    "optuna": OptunaSearch,
    "random": RandomSearch,
}


def list_strategies() -> list[str]:
    return sorted(_STRATEGIES)


def create_strategy(
    name: str, *, storage: str | None = None, surrogate: bool = False
) -> SearchStrategy:
    """A strategy by name; ``storage`` applies to ``optuna``, ``surrogate`` to ``nsga2``."""
    if name not in _STRATEGIES:
        raise UnknownStrategyError(
            f"unknown strategy {name!r}; valid strategies: {', '.join(list_strategies())}"
        )
    if surrogate and name != "nsga2":
        raise ConfigError(f"--surrogate pre-screens NSGA-II offspring; it does not apply to {name}")
    if name == "optuna":
        return OptunaSearch(storage=storage)
    if name == "nsga2":
        return NSGA2Search(surrogate=surrogate)
    return _STRATEGIES[name]()

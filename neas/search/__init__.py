"""Multi-objective ensemble search: the problem and interchangeable strategies.

>>> from neas.search import list_strategies
>>> list_strategies()
['nsga2', 'optuna', 'random']
"""

from __future__ import annotations

from neas.errors import ConfigError, NeasError
from neas.search._base import SearchStrategy
from neas.search._nsga2 import NSGA2Search
from neas.search._optuna import OptunaSearch
from neas.search._random import RandomSearch
from neas.search.problem import Evaluation, SearchProblem, cheapest_macs, pareto_front

__all__ = [
    "Evaluation",
    "NSGA2Search",
    "OptunaSearch",
    "RandomSearch",
    "SearchProblem",
    "SearchStrategy",
    "UnknownStrategyError",
    "cheapest_macs",
    "create_strategy",
    "list_strategies",
    "pareto_front",
]

_STRATEGIES: dict[str, type[SearchStrategy]] = {
    "nsga2": NSGA2Search,
    "optuna": OptunaSearch,
    "random": RandomSearch,
}


class UnknownStrategyError(NeasError):
    """A strategy name that is not registered."""


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

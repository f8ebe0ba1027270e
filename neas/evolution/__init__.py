"""Multi-objective ensemble search: the problem, interchangeable strategies and the search stage.

The problem (``problem``) turns integer genomes into ensembles and scores them (validation
error, MACs, latency; MACs <= budget as a constraint); strategies (``strategies``: NSGA-II,
optuna, random) only propose genomes (ask/tell; ``propose`` is the one loop that scores them);
the stage (``stage``) runs one on a trained supernet and writes the front into the run folder.

>>> list_strategies()
['nsga2', 'optuna', 'random']
"""

from __future__ import annotations

from neas.evolution._base import Proposal, SearchStrategy, propose
from neas.evolution._nsga2 import NSGA2Search
from neas.evolution._optuna import OptunaSearch
from neas.evolution._random import RandomSearch
from neas.evolution.problem import Evaluation, SearchProblem, cheapest_macs, pareto_front
from neas.evolution.stage import (
    SearchResult,
    check_search,
    load_search,
    preflight_search,
    run_search,
)
from neas.evolution.strategies import create_strategy, list_strategies

__all__ = [
    "Evaluation",
    "NSGA2Search",
    "OptunaSearch",
    "Proposal",
    "RandomSearch",
    "SearchProblem",
    "SearchResult",
    "SearchStrategy",
    "cheapest_macs",
    "check_search",
    "create_strategy",
    "list_strategies",
    "load_search",
    "pareto_front",
    "preflight_search",
    "propose",
    "run_search",
]

"""neas: one-shot neural ensemble architecture search under a compute budget.

>>> import neas
>>> space = neas.create_space("mbconv", image_size=8, in_channels=1, num_classes=10)
>>> space.num_layers
20

The main job from Python runs exactly what ``neas search --space mbconv --budget 600M`` runs
(both call ``neas.pipeline.search``, with the defaults of ``neas.config``):

Example (not run as a doctest: it trains or needs a run folder)::

    result = neas.search(out="runs/digits", options=neas.SearchOptions(budget="600M"))
    result.search.front[["id", "members", "macs", "test_accuracy"]]

Package layout (layers run one way): ``cli`` -> ``pipeline`` -> stages (``training``,
``shrink``, ``evolution``, ``deploy``, ``ranking``) -> core (``nn``, ``cost``, ``data``,
``search_spaces``, ``config``, ``run``, ``evaluate``).
"""

from importlib import import_module
from typing import Any

#: Where each public name lives; imported on first use, so ``import neas`` (and the CLI's
#: ``--help``) does not import torch.
_EXPORTS = {
    "parse_budget": "neas.budget",
    "DataOptions": "neas.config",
    "FinalOptions": "neas.config",
    "RunConfig": "neas.config",
    "SearchOptions": "neas.config",
    "ShrinkConfig": "neas.config",
    "SpaceOptions": "neas.config",
    "TrainConfig": "neas.config",
    "CostTable": "neas.cost",
    "ensemble_cost": "neas.cost",
    "Dataset": "neas.data",
    "load_dataset": "neas.data",
    "load_ensemble": "neas.deploy",
    "NeasError": "neas.errors",
    "NEASClassifier": "neas.estimator",
    "evolve": "neas.pipeline",
    "search": "neas.pipeline",
    "train": "neas.pipeline",
    "RunResults": "neas.results",
    "load_run": "neas.results",
    "EnsembleArch": "neas.search_spaces",
    "SearchSpace": "neas.search_spaces",
    "create_space": "neas.search_spaces",
    "list_spaces": "neas.search_spaces",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'neas' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "CostTable",
    "DataOptions",
    "NEASClassifier",
    "Dataset",
    "EnsembleArch",
    "FinalOptions",
    "NeasError",
    "RunConfig",
    "RunResults",
    "SearchOptions",
    "SearchSpace",
    "ShrinkConfig",
    "SpaceOptions",
    "TrainConfig",
    "create_space",
    "ensemble_cost",
    "evolve",
    "list_spaces",
    "load_dataset",
    "load_ensemble",
    "load_run",
    "parse_budget",
    "search",
    "train",
]
__version__ = "0.1.0"

"""neas: one-shot neural ensemble architecture search under a compute budget.

>>> import neas
>>> space = neas.create_space("mbconv", image_size=8, in_channels=1, num_classes=10)
>>> space.num_layers
20

The main job from Python runs exactly what ``neas search --space mbconv --budget 600M`` runs
(both call ``neas.pipeline.search``, with the defaults of ``neas.config``):

>>> result = neas.search(out="runs/digits", options=neas.SearchOptions(budget="600M"))
... # doctest: +SKIP
>>> result.search.front[["id", "members", "macs", "test_accuracy"]]  # doctest: +SKIP

Package layout (layers run one way): ``cli`` -> ``pipeline`` -> stages (``training``,
``shrink``, ``evolution``, ``deploy``, ``ranking``) -> core (``nn``, ``cost``, ``data``,
``search_spaces``, ``config``, ``run``, ``evaluate``).
"""

from neas.budget import parse_budget
from neas.config import (
    DataOptions,
    RunConfig,
    SearchOptions,
    ShrinkConfig,
    SpaceOptions,
    TrainConfig,
)
from neas.cost import CostTable, ensemble_cost
from neas.data import Dataset, load_dataset
from neas.deploy import load_ensemble
from neas.errors import NeasError
from neas.estimator import NEASClassifier
from neas.pipeline import evolve, search, train
from neas.results import RunResults, load_run
from neas.search_spaces import EnsembleArch, SearchSpace, create_space, list_spaces

__all__ = [
    "CostTable",
    "DataOptions",
    "NEASClassifier",
    "Dataset",
    "EnsembleArch",
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

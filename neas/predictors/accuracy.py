"""An optional accuracy surrogate: a scikit-learn regressor on the architecture encoding.

Features per ensemble: K, the split, and for every (layer, op) how many members run that op
there (a shared layer counts for all members). Fitted on the evaluations so far, it pre-screens
NSGA-II offspring: twice as many are bred, and only the better half (by non-dominated rank on
predicted error and exact MACs) is evaluated on data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neas.search_spaces.arch import EnsembleArch
from neas.search_spaces.spec import SearchSpace


def features(archs: Sequence[EnsembleArch], space: SearchSpace) -> np.ndarray:
    """(n, 2 + L * (ops + 1)) array of counts; column ``ops`` of each layer block is skip."""
    n_ops = len(space.ops) + 1
    out = np.zeros((len(archs), 2 + space.num_layers * n_ops), dtype=np.float32)
    for r, arch in enumerate(archs):
        out[r, 0], out[r, 1] = arch.num_members, arch.split
        for m in range(arch.num_members):
            for i, op in enumerate(arch.member_ops(m)):
                out[r, 2 + i * n_ops + (op if op >= 0 else n_ops - 1)] += 1
    return out


class AccuracySurrogate:
    """Random-forest regressor of validation error; ``seed`` makes it deterministic.

    >>> from neas.search_spaces import create_space, sample
    >>> space = create_space("mbconv", image_size=8)
    >>> archs = [sample(space, np.random.default_rng(i)) for i in range(20)]
    >>> s = AccuracySurrogate(seed=0).fit(archs, [a.split / 20 for a in archs], space)
    >>> s.predict(archs[:2], space).shape
    (2,)
    """

    def __init__(self, *, seed: int = 0, n_estimators: int = 200) -> None:
        self.seed, self.n_estimators = seed, n_estimators
        self.model = None

    def fit(
        self, archs: Sequence[EnsembleArch], errors: Sequence[float], space: SearchSpace
    ) -> AccuracySurrogate:
        from sklearn.ensemble import RandomForestRegressor

        self.model = RandomForestRegressor(
            n_estimators=self.n_estimators, random_state=self.seed, min_samples_leaf=2, n_jobs=1
        ).fit(features(archs, space), np.asarray(errors, dtype=np.float64))
        return self

    def predict(self, archs: Sequence[EnsembleArch], space: SearchSpace) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("fit the surrogate before predicting")
        return self.model.predict(features(archs, space))

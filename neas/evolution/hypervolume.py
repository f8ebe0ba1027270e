"""Hypervolume of the feasible front, on objectives scaled to [0, 1]-ish ranges.

Scaling: validation error as is, MACs / budget, latency / the latency of the most expensive
ensemble in the space; reference point (1, 1, 1). Comparable across strategies that share the
space, the budget and the latency table.
"""

from __future__ import annotations

import numpy as np

from neas.evolution.problem import Evaluation, front_mask
from neas.predictors.latency import LatencyTable
from neas.search_spaces.spec import SearchSpace


def latency_reference(space: SearchSpace, table: LatencyTable) -> float:
    """Predicted latency of the slowest ensemble: nothing shared, slowest op everywhere (1 ms for
    an unmeasured table of zeros, so that the latency axis stays defined)."""
    slowest = sum(max(row.values()) for row in table.layers)
    raw = table.stem_ms + space.num_members * (slowest + table.head_ms)
    n_calls = 1 + space.num_members * (len(table.layers) + 1)
    return (table.scale * raw + table.call_ms * n_calls + table.offset_ms) or 1.0


def hypervolume(evaluations: list[Evaluation], *, budget: int, latency_ref: float) -> float:
    """Hypervolume dominated by the feasible evaluations w.r.t. the point (1, 1, 1)."""
    from pymoo.indicators.hv import HV

    feasible = [e for e in evaluations if e.feasible]
    if not feasible:
        return 0.0
    pts = np.array([[e.val_error, e.macs / budget, e.latency_ms / latency_ref] for e in feasible])
    pts = pts[front_mask(pts)]
    return float(HV(ref_point=np.ones(3))(pts))

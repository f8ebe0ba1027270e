"""The latency table: block timings, their calibration on whole ensembles, the stored format."""

from __future__ import annotations

import numpy as np
import pytest

from neas.predictors.latency import LatencyTable, calls, fit_calibration, measure_latency_table
from neas.search_spaces import SKIP, sample
from tests.conftest import tiny_space


def test_fit_recovers_scale_call_overhead_and_offset_none_negative() -> None:
    sums, n = [1.0, 2.0, 4.0, 8.0, 3.0], [5, 9, 7, 12, 11]
    truth = [0.8 * s + 0.05 * c + 0.3 for s, c in zip(sums, n)]
    assert fit_calibration(sums, n, truth) == pytest.approx((0.8, 0.05, 0.3), abs=1e-6)
    # a fit that would need a negative offset keeps every coefficient >= 0
    coef = fit_calibration(sums, n, [2.0 * s - 1.0 for s in sums])
    assert min(coef) >= 0.0 and coef[0] > 0
    assert fit_calibration([], [], []) == (1.0, 0.0, 0.0)
    # timings the call count explains alone would zero the table out: its scale is fitted instead
    sums2, n2 = [4.0, 3.0, 2.0, 1.0], [4, 8, 12, 16]
    scale, call_ms, offset = fit_calibration(sums2, n2, [0.5 * c for c in n2])
    assert (call_ms, offset) == (0.0, 0.0) and scale == pytest.approx(40 / 30, abs=1e-6)


def test_calls_counts_stem_blocks_and_heads() -> None:
    space = tiny_space()
    arch = sample(space, np.random.default_rng(2))
    blocks = [op for op in arch.shared] + [op for m in arch.members for op in m]
    assert calls(arch) == 1 + sum(op != SKIP for op in blocks) + arch.num_members


def test_calibrated_table_predicts_scale_times_sum_plus_offset(tmp_path) -> None:
    space = tiny_space()
    table = measure_latency_table(space, repeats=2, warmup=1, calibration=4, show_progress=False)
    assert table.scale > 0 and table.offset_ms >= 0
    assert table.call_ms >= 0 and table.offset_ms >= 0
    assert (table.scale, table.call_ms, table.offset_ms) != (1.0, 0.0, 0.0)  # calibrated, kept
    arch = sample(space, np.random.default_rng(0))
    assert table.predict(arch) == pytest.approx(
        table.scale * table.block_sum_ms(arch) + table.call_ms * calls(arch) + table.offset_ms
    )
    table.save(tmp_path / "t.json")
    assert LatencyTable.load(tmp_path / "t.json") == table
    raw = measure_latency_table(space, repeats=2, warmup=1, calibration=0, show_progress=False)
    assert (raw.scale, raw.call_ms, raw.offset_ms) == (1.0, 0.0, 0.0)


def test_a_table_written_before_calibration_reads_as_raw_sums() -> None:
    space = tiny_space()
    old = measure_latency_table(space, repeats=1, warmup=0, calibration=0, show_progress=False)
    data = old.to_dict()
    del data["scale"], data["call_ms"], data["offset_ms"]
    table = LatencyTable.from_dict(data)
    arch = sample(space, np.random.default_rng(1))
    assert table.predict(arch) == table.block_sum_ms(arch)


def test_calibrate_fits_the_timings_of_the_ensembles_it_builds(monkeypatch) -> None:
    """``calibrate`` times the static ensembles of the archs it samples and fits the model to
    those timings: with timings that follow the model exactly, it recovers the coefficients."""
    import neas.predictors.latency as lat

    space = tiny_space()
    table = measure_latency_table(space, repeats=1, warmup=0, calibration=0, show_progress=False)

    class Timed:  # stands in for the static ensemble: remembers which arch it is
        def __init__(self, space, arch) -> None:
            self.arch = arch

        def to(self, *args, **kwargs):
            return self

    monkeypatch.setattr(lat, "static_ensemble", Timed)
    monkeypatch.setattr(
        lat,
        "time_module",
        lambda net, x, **kw: 1.7 * table.block_sum_ms(net.arch) + 0.2 * calls(net.arch) + 0.4,
    )
    fitted = lat.calibrate(table, space, samples=8)
    assert (fitted.scale, fitted.call_ms, fitted.offset_ms) == pytest.approx(
        (1.7, 0.2, 0.4), abs=1e-3
    )

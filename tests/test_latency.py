"""The latency table: block timings, their calibration on whole ensembles, the stored format."""

from __future__ import annotations

import numpy as np
import pytest

from neas.predictors.latency import LatencyTable, fit_scale_offset, measure_latency_table
from neas.search_spaces import sample
from tests.conftest import tiny_space


def test_fit_recovers_scale_and_offset_and_refuses_negative_ones() -> None:
    sums = [1.0, 2.0, 4.0, 8.0]
    assert fit_scale_offset(sums, [0.8 * s + 0.3 for s in sums]) == pytest.approx((0.8, 0.3))
    # a fit that would need a negative offset falls back to a pure scale
    scale, offset = fit_scale_offset(sums, [2.0 * s - 1.0 for s in sums])
    assert offset == 0.0 and 1.5 < scale < 2.0


def test_calibrated_table_predicts_scale_times_sum_plus_offset(tmp_path) -> None:
    space = tiny_space()
    table = measure_latency_table(space, repeats=2, warmup=1, calibration=4, show_progress=False)
    assert table.scale > 0 and table.offset_ms >= 0
    assert (table.scale, table.offset_ms) != (1.0, 0.0)  # the calibration ran and was kept
    arch = sample(space, np.random.default_rng(0))
    assert table.predict(arch) == pytest.approx(
        table.scale * table.block_sum_ms(arch) + table.offset_ms
    )
    table.save(tmp_path / "t.json")
    assert LatencyTable.load(tmp_path / "t.json") == table
    raw = measure_latency_table(space, repeats=2, warmup=1, calibration=0, show_progress=False)
    assert (raw.scale, raw.offset_ms) == (1.0, 0.0)


def test_a_table_written_before_calibration_reads_as_raw_sums() -> None:
    space = tiny_space()
    old = measure_latency_table(space, repeats=1, warmup=0, calibration=0, show_progress=False)
    data = old.to_dict()
    del data["scale"], data["offset_ms"]
    table = LatencyTable.from_dict(data)
    arch = sample(space, np.random.default_rng(1))
    assert table.predict(arch) == table.block_sum_ms(arch)

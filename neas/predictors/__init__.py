"""Predictors used by the search: a measured latency lookup table and an accuracy surrogate."""

from neas.predictors.latency import LatencyTable, measure_latency_table, time_module

__all__ = ["LatencyTable", "measure_latency_table", "time_module"]

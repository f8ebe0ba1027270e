"""Fixtures for every test and doctest (``tests/`` and the package's doctests)."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def _neas_logger_as_it_was():
    """A CLI command run in-process shows the library's messages on its console (a handler on
    the ``neas`` logger); take it off again, so no later test or doctest depends on the order."""
    logger = logging.getLogger("neas")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)

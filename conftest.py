"""Fixtures for every test and doctest (``tests/`` and the package's doctests)."""

from __future__ import annotations

import logging

import pytest


def _without_cli_console() -> None:
    logger = logging.getLogger("neas")
    logger.handlers[:] = [h for h in logger.handlers if type(h).__name__ != "_ConsoleHandler"]
    logger.setLevel(logging.NOTSET)


@pytest.fixture(autouse=True)
def _neas_logger_as_a_library_leaves_it():
    """A CLI command run in-process (in a test or in a fixture) shows the library's messages on
    its console (a handler on the ``neas`` logger); every test and doctest starts and ends
    without it, so none depends on which ran before."""
    _without_cli_console()
    yield
    _without_cli_console()

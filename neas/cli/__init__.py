"""The ``neas`` command line: argument parsing and printing only (see ``neas.pipeline``)."""

from neas.cli.app import app, main

__all__ = ["app", "main"]

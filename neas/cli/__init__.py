"""The ``neas`` command line: argument parsing and printing only (see ``neas.pipeline``)."""

from neas.cli.commands import app, main

__all__ = ["app", "main"]

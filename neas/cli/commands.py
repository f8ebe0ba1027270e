"""The typer app with every command registered (one module per group of commands)."""

from neas.cli import (
    export_cmds,  # noqa: F401  (registers export, cascade)
    rank_cmd,  # noqa: F401  (registers rank)
    search_cmds,  # noqa: F401  (registers search, evolve)
    train_cmds,  # noqa: F401  (registers spaces, cost, train)
)
from neas.cli.common import app


def main() -> None:
    app()

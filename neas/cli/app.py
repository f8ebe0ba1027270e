"""The typer app with every command registered (one module per group of commands)."""

from neas.cli import train_cmds  # noqa: F401  (registers spaces, cost, train)
from neas.cli.common import app


def main() -> None:
    app()

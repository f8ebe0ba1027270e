"""The typer app with every command registered (one module per group of commands), listed in
the order of the workflow and grouped in help panels."""

from neas.cli import (
    export_cmds,  # noqa: F401  (registers export, cascade, report)
    rank_cmd,  # noqa: F401  (registers rank)
    search_cmds,  # noqa: F401  (registers search, evolve)
    train_cmds,  # noqa: F401  (registers spaces, cost, train)
)
from neas.cli.common import app

#: ``neas --help`` lists the commands in this order, under these panels.
WORKFLOW: tuple[tuple[str, str], ...] = (
    ("search", "The main job"),
    ("train", "One stage at a time"),
    ("evolve", "One stage at a time"),
    ("export", "One stage at a time"),
    ("report", "One stage at a time"),
    ("cascade", "After export"),
    ("rank", "Diagnostics"),
    ("cost", "Diagnostics"),
    ("spaces", "Diagnostics"),
)
_order = {name: i for i, (name, _) in enumerate(WORKFLOW)}
app.registered_commands.sort(key=lambda c: _order.get(c.name or "", len(WORKFLOW)))
for _command in app.registered_commands:
    _command.rich_help_panel = dict(WORKFLOW).get(_command.name or "", "Other")


def main() -> None:
    app()

"""The typer app with every command registered (one module per group of commands), listed in
the order of the workflow and grouped in help panels; ``main`` runs it with usage errors (a
misspelt option or command, a missing value) as one line, like every other bad input."""

import sys

import typer

from neas.cli import (
    export_cmds,  # noqa: F401  (registers export, cascade, report)
    rank_cmd,  # noqa: F401  (registers rank)
    search_cmds,  # noqa: F401  (registers search, evolve)
    train_cmds,  # noqa: F401  (registers spaces, cost, train)
)
from neas.cli.common import (
    Command,
    app,
)

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
    _command.cls = Command


#: click's ``UsageError`` and ``ClickException``, from whichever click this typer uses (its own
#: copy since typer 0.16, the ``click`` package before).
_USAGE = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_CLICK = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def main(args: list[str] | None = None) -> None:
    """``neas``: the app, whose usage errors print ``error: ...`` and exit 2."""
    try:
        code = app(args=args, standalone_mode=False)
    except _USAGE as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # ``neas`` alone: the help
            exc.show()
        else:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            typer.echo(f"error: {exc.format_message().rstrip('.')}{hint}", err=True)
        sys.exit(exc.exit_code)
    except _CLICK as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("Aborted!", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)

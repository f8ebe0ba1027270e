"""Every exception neas raises on purpose, and the exit code the CLI gives each.

The CLI prints any :class:`NeasError` as one line, ``error: <message>``, and exits with the
error's ``exit_code``: 2 for bad input (a name, a file, a number, a run folder), 3 when neas's
own verification of what it produced fails (an ONNX graph that does not match PyTorch). An
``OSError`` (disk full, read-only file system, no permission) is one line naming the path and
exit code 4; Ctrl-C is one line (with the command that resumes, where there is one) and 130.
Anything else is a bug and keeps its traceback.

>>> issubclass(DataError, NeasError), DataError.exit_code, ExportError.exit_code
(True, 2, 3)
"""

from __future__ import annotations

from typing import ClassVar

#: Exit code for bad input (every ``NeasError`` but verification failures).
EXIT_BAD_INPUT = 2
#: Exit code for a failed verification of an artifact neas produced.
EXIT_VERIFICATION = 3
#: Exit code when the system refused a read or write (disk full, read-only, no permission):
#: the CLI names the path; what was written before stays whole (writes are atomic).
EXIT_SYSTEM = 4
#: Exit code of a job stopped by Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


class NeasError(ValueError):
    """Bad input from the user (a name, a file, a number); the message says what to do."""

    exit_code: ClassVar[int] = EXIT_BAD_INPUT


class ConfigError(NeasError):
    """An invalid option or combination of options."""


class BudgetError(NeasError):
    """A MACs budget that cannot be parsed or is not positive."""


class DataError(NeasError):
    """A dataset that is missing, malformed or unusable; the message names the problem."""


class UnknownSpaceError(NeasError):
    """A search-space name that is not registered."""


class InvalidArchError(NeasError):
    """An architecture that does not fit its search space."""


class UnknownStrategyError(NeasError):
    """A search-strategy name that is not registered."""


class RunDirError(NeasError):
    """A run folder that cannot be used as asked."""


class SelectError(NeasError):
    """A ``--select`` value that names no ensemble of the run."""


class ModelFileError(NeasError):
    """A model file that is not a neas ensemble, or that carries pickled code."""


class InputShapeError(NeasError):
    """Input that does not match the ensemble's input spec."""


class VerificationError(NeasError):
    """Something neas produced failed its own check: do not deploy it (exit code 3)."""

    exit_code: ClassVar[int] = EXIT_VERIFICATION


class ExportError(VerificationError):
    """An export that fails verification (ONNX checker or parity with PyTorch)."""

"""Reading a run's files for the report: regular files only, and a damaged one is a one-line
``RunDirError`` naming it."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from neas.errors import RunDirError

_DAMAGE = (ValueError, KeyError, TypeError, AttributeError, IndexError, OSError)


def _damaged(path: Path, exc: BaseException) -> RunDirError:
    return RunDirError(
        f"{path} is damaged ({type(exc).__name__}); delete it or run the stage that writes it "
        "again, then `neas report`"
    )


def _regular(path: Path) -> Path:
    """``path``, refused when it is a symbolic link: the report shows only the run's own files."""
    if Path(path).is_symlink():
        raise RunDirError(f"{path} is a symbolic link; neas never reads a run file through one")
    return path


def _json(path: Path) -> Any:
    _regular(path)
    try:
        return json.loads(Path(path).read_text())
    except (ValueError, OSError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise _damaged(path, exc) from None


def _csv(path: Path) -> pd.DataFrame:
    _regular(path)
    try:
        return pd.read_csv(path)
    except (ValueError, OSError) as exc:  # ParserError, EmptyDataError, UnicodeDecodeError
        raise _damaged(path, exc) from None


def _section(render: Any, where: Path, path: Path) -> str:
    """``render(where)``; a file of the wrong shape is a one-line error naming ``path``."""
    try:
        return render(where)
    except RunDirError:
        raise
    except _DAMAGE as exc:
        raise _damaged(path, exc) from None


def _img(path: Path, alt: str) -> str:
    if path.is_symlink() or not path.is_file():  # only a run's own regular files are embedded
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'

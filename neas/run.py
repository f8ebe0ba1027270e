"""The run folder: one place for everything a run writes, with atomic writes.

A folder is ours when it holds ``run.json``. An existing non-empty folder is never overwritten
unless the caller resumes it or forces a fresh start, and ``force`` only clears folders of ours.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from neas.errors import NeasError

MARKER = "run.json"


class RunDirError(NeasError):
    """A run folder that cannot be used as asked."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def atomic_torch_save(obj: Any, path: Path) -> None:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def writable_dir(path: Path) -> Path:
    """Create ``path`` and prove it is writable, or raise a one-line ``RunDirError``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(f"cannot write to {path}: {exc.strerror or exc}") from None
    return path


def prepare_run_dir(path: str | os.PathLike[str], *, resume: bool, force: bool) -> Path:
    """Create or reopen a run folder; refuse to overwrite one without ``resume``/``force``.

    >>> import tempfile; d = Path(tempfile.mkdtemp()) / "run"
    >>> prepare_run_dir(d, resume=False, force=False).is_dir()
    True
    """
    run = Path(path)
    if run.exists() and not run.is_dir():
        raise RunDirError(f"{run} exists and is not a folder")
    occupied = run.is_dir() and any(run.iterdir())
    if occupied and not resume:
        if not force:
            raise RunDirError(
                f"{run} already exists and is not empty; pass --resume to continue it "
                "or --force to start over"
            )
        if not (run / MARKER).exists():
            raise RunDirError(f"{run} is not a neas run folder (no {MARKER}); refusing to clear it")
        shutil.rmtree(run)
    writable_dir(run)
    if not (run / MARKER).exists():
        write_json(run / MARKER, {"format": 1, "tool": "neas"})
    return run

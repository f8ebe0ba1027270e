"""Files written whole or not at all, JSON, folder locks: generic IO that imports nothing from
neas (the run folder, the exports and the plots all write through it).

Every write goes to a temp file ``.NAME.XXXXXXXX.tmp`` in the same folder and is renamed into
place, so a killed process leaves whole files and perhaps a temp file, which
:func:`remove_temp_files` clears.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FILE_MODE = 0o644  # what an ordinary file gets under the usual umask 022
TEMP_SUFFIX = ".tmp"  # of the temp files atomic writes rename into place
_TEMP = re.compile(r"^\..+\.[A-Za-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + "$")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600 files; run files are shared like any
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # disk full, read-only, ...: name the file the error is about
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``path`` (created if missing) for the block.

    Processes on one host take turns; on a network file system it holds only where the file
    system passes ``flock`` through. Not reentrant: never nest two locks on one path.

    >>> import tempfile; lock = Path(tempfile.mkdtemp()) / "x.lock"
    >>> with file_lock(lock):
    ...     lock.exists()
    True
    """
    import fcntl

    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


OWNER_LOCK = ".owner.lock"  # in a scratch folder: held by the process using it


@contextmanager
def scratch_folder(prefix: str) -> Iterator[Path]:
    """A new folder in the system's temp folder for the block, removed after it.

    A process killed inside the block (SIGKILL, SIGTERM, a lost node) cannot remove its folder;
    the next ``scratch_folder`` with the same ``prefix`` does: each folder holds a lock file
    (``OWNER_LOCK``) that its process keeps ``flock``-ed, which the kernel releases when the
    process dies, however it dies. A folder whose lock can be taken is one nobody uses.

    >>> with scratch_folder("neas-doc-") as d:
    ...     d.is_dir()
    True
    >>> d.exists()
    False
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): a plain temp folder, which a kill leaves
        fcntl = None
    if fcntl is not None:
        remove_abandoned(prefix)
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        if fcntl is None:
            yield folder
            return
        # locked under another name, then renamed: a sweep never sees the lock file unlocked
        with open(folder / f"{OWNER_LOCK}.new", "w") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            os.replace(folder / f"{OWNER_LOCK}.new", folder / OWNER_LOCK)
            yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_abandoned(prefix: str) -> list[Path]:
    """Remove the folders ``scratch_folder(prefix)`` made in the temp folder whose process is
    gone (their lock file is not held); returns them."""
    import fcntl

    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            with open(folder / OWNER_LOCK) as lock:  # missing: not ours, or being made
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        except OSError:  # held (in use), missing, or not ours to open
            continue
    return removed


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save(obj)`` written atomically (torch is imported only here)."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def remove_temp_files(run_dir: Path) -> list[Path]:
    """Remove the temp files that writes killed before their rename left in ``run_dir`` (and
    its sub-folders); returns them. Only names that :func:`atomic_write_bytes` makes match.

    >>> import tempfile; d = Path(tempfile.mkdtemp())
    >>> _ = (d / ".supernet.pt.a1b2_c3d.tmp").write_bytes(b"x"), (d / "keep.tmp").write_bytes(b"")
    >>> [p.name for p in remove_temp_files(d)], sorted(p.name for p in d.iterdir())
    (['.supernet.pt.a1b2_c3d.tmp'], ['keep.tmp'])
    """
    found = [p for p in Path(run_dir).rglob(f"*{TEMP_SUFFIX}") if _TEMP.match(p.name)]
    for p in found:
        p.unlink(missing_ok=True)
    return found

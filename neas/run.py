"""The run folder: the names of everything a run writes, atomic writes, and opening a run.

A run folder holds (each name is a constant below, used everywhere else):

    run.json                  marker: the folder is ours (``force`` clears only such folders)
    config.json               the ``RunConfig`` (data, space, training, shrinking)
    space.json                the search space the supernet started from
    supernet.pt               checkpoint after each epoch (model, optimizer, RNG, current space)
    train_summary.json        training history and validation metrics of random ensembles
    shrink_history.json/.png  every shrink step (``neas.shrink``)
    latency_table.json        per-(layer, op) latency on the search device
    .search.lock              taken by searches sharing the folder (``file_lock``)
    search/                   history.csv, hypervolume.csv/.png, summary.json, and scores.json
                              (every architecture scored so far: a killed search resumes)
    pareto.csv, pareto.png    the front, with test accuracy
    ensembles/<id>/           exported front ensembles (``neas.deploy``)
    ranking.json/.csv/.png    ranking diagnostics (``neas rank``)
    report.html               everything above on one self-contained page (``neas report``)
    time_limit.json           under ``--time-limit``: the plan, the seconds each stage took and
                              the time spent so far (a resumed run counts it; ``neas.time_limit``)

An existing non-empty folder is never overwritten unless the caller resumes it or forces a
fresh start. Every file is written atomically (a temp file ``.NAME.XXXXXXXX.tmp`` in the same
folder, then a rename), so a killed run leaves whole files and perhaps a temp file; resuming
removes the temp files. :func:`open_trained` opens a trained run once for every stage that
needs one.
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from neas.config import RunConfig, TrainConfig
from neas.cost import supernet_params_floor
from neas.data import Dataset
from neas.errors import ConfigError, RunDirError
from neas.layout import (  # noqa: F401  (the run's file names, re-exported)
    CHECKPOINT,
    CONFIG,
    ENSEMBLES,
    LATENCY_TABLE,
    MANIFEST,
    MARKER,
    PARETO,
    PARETO_PLOT,
    RANKING,
    RANKING_CSV,
    RANKING_PLOT,
    REPORT,
    SEARCH_DIR,
    SEARCH_LOCK,
    SEARCH_SCORES,
    SHRINK_HISTORY,
    SHRINK_PLOT,
    SPACE,
    TIME_RECORD,
    TRAIN_SUMMARY,
)
from neas.nn.supernet import Supernet
from neas.search_spaces import SearchSpace
from neas.torchfile import read_torch_file, tensor_elements, unknown_keys

CHECKPOINT_FORMAT = 1
#: What to do about a damaged run file that only training writes.
RETRAIN = "train the run again with `neas train --out RUN --force`"
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


#: What an ensemble id (or any name read from a run file and used as a file name) may be: one
#: plain path component, so nothing a run folder says can point outside it.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def safe_name(value: object, what: str) -> str:
    """``value`` if it is a plain file name (letters, digits, ``.``, ``_``, ``-``; at most 64;
    not starting with a dot), else a one-line ``RunDirError`` naming ``what``.

    >>> safe_name("e000", "id")
    'e000'
    >>> safe_name("../x", "pareto.csv id")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    neas.errors.RunDirError: pareto.csv id '../x' is not a plain name ...
    """
    if not isinstance(value, str) or not SAFE_NAME.match(value):
        raise RunDirError(
            f"{what} {value!r} is not a plain name (letters, digits, '.', '_', '-'); "
            "refusing to use it as a file name"
        )
    return value


def real_dir(path: Path) -> Path:
    """``path`` unless it is a symbolic link (to a folder or not): run folders are never
    written or read through one."""
    if path.is_symlink():
        raise RunDirError(f"{path} is a symbolic link; neas never writes or reads through one")
    if path.exists() and not path.is_dir():
        raise RunDirError(f"cannot write to {path}: it is not a folder")
    return path


def ensemble_dir(run_dir: str | os.PathLike[str], ensemble_id: object) -> Path:
    """``RUN/ensembles/<id>`` for a safe ``ensemble_id``, neither part a symbolic link."""
    root = real_dir(Path(run_dir) / ENSEMBLES)
    return real_dir(root / safe_name(ensemble_id, "ensemble id"))


def export_matches(folder: Path, arch_json: str) -> bool:
    """Whether ``folder`` holds a finished export (``manifest.json`` written last) of the
    architecture ``arch_json`` (a ``pareto.csv`` row's ``arch``)."""
    manifest = folder / MANIFEST
    if manifest.is_symlink() or not manifest.is_file():
        return False
    try:
        return read_json(manifest).get("arch") == json.loads(arch_json)
    except (ValueError, OSError, AttributeError):
        return False


def remove_stale_exports(run_dir: str | os.PathLike[str], front: dict[str, str]) -> list[str]:
    """Delete every ``RUN/ensembles/<id>`` whose id is not on ``front`` (id -> arch JSON, i.e.
    ``pareto.csv``) or whose finished export is of another architecture; returns the ids. An
    unfinished export of an id on the front (no ``manifest.json`` yet: never served) stays, so
    a killed final-training stage can resume from its checkpoint (which names its arch).

    A rewritten front reuses ids (``e000`` ...) for other architectures, so its old exports
    would otherwise be served under the new ids. Only real folders inside the run are touched.
    """
    root = Path(run_dir) / ENSEMBLES
    if root.is_symlink() or not root.is_dir():
        return []
    stale = []
    for folder in sorted(root.iterdir()):
        if folder.is_symlink() or not folder.is_dir():
            continue
        arch = front.get(folder.name)
        unfinished = not (folder / MANIFEST).exists()  # never served; resumable
        if arch is None or not (unfinished or export_matches(folder, arch)):
            shutil.rmtree(folder)
            stale.append(folder.name)
    return stale


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def atomic_torch_save(obj: Any, path: Path) -> None:
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
    if occupied and not (run / MARKER).is_file():
        raise RunDirError(
            f"{run} is not empty and is not a neas run folder (no {MARKER}); choose another "
            "output folder (neas never clears a folder it did not make)"
        )
    if occupied and not resume:
        if not force:
            raise RunDirError(
                f"{run} already holds a neas run; pass --resume (resume=True) to continue it "
                "or --force (force=True) to start over"
            )
        shutil.rmtree(run)
    writable_dir(run)
    if occupied:  # resuming: what a killed write left behind is of no use
        remove_temp_files(run)
    if not (run / MARKER).exists():
        write_json(run / MARKER, {"format": 1, "tool": "neas"})
    return run


def read_config(run_dir: str | os.PathLike[str]) -> RunConfig:
    """The run's ``RunConfig``; a one-line ``RunDirError`` when there is none or it is broken."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise RunDirError(f"{run_dir} has no {CONFIG}; not a neas run folder")
    try:
        return RunConfig.from_dict(read_json(path))
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise RunDirError(f"{path} is damaged ({type(exc).__name__}); {RETRAIN}") from None
    except ConfigError as exc:
        raise RunDirError(f"{path} is damaged: {exc}; {RETRAIN}") from None
    except OSError as exc:
        raise RunDirError(f"cannot read {path}: {exc.strerror or exc}") from None


def write_config(run_dir: Path, config: RunConfig) -> None:
    write_json(Path(run_dir) / CONFIG, config.to_dict())


def save_checkpoint(
    path: Path,
    *,
    supernet: Supernet,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    history: list[dict[str, float]],
    config: TrainConfig,
) -> None:
    """Write a supernet checkpoint atomically; it loads with ``torch.load(weights_only=True)``."""
    atomic_torch_save(
        {
            "format": CHECKPOINT_FORMAT,
            "model": supernet.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "history": history,
            "space": supernet.space.to_json(),
            "weights": supernet.weights,
            "config": asdict(config),
            "torch_rng": torch.get_rng_state(),
        },
        path,
    )


#: Every key a checkpoint may hold (``save_checkpoint`` writes them all).
CHECKPOINT_KEYS = (
    "format",
    "model",
    "optimizer",
    "epoch",
    "history",
    "space",
    "weights",
    "config",
    "torch_rng",
)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint safely (no pickled code, no compressed records, no unknown keys); a
    one-line ``RunDirError`` if it is damaged or not ours."""
    ckpt = read_torch_file(path, error=RunDirError, advice=RETRAIN)
    needed = {"model": dict, "epoch": int, "space": str, "weights": str, "format": int}
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in needed if k != "format"):
        raise RunDirError(f"{path} is not a neas supernet checkpoint ({RETRAIN})")
    wrong = [k for k, kind in needed.items() if k in ckpt and not isinstance(ckpt[k], kind)]
    if wrong:
        raise RunDirError(
            f"{path} is a damaged neas checkpoint ({', '.join(wrong)} of the wrong type; {RETRAIN})"
        )
    if ckpt.get("format", 0) > CHECKPOINT_FORMAT:
        raise RunDirError(f"{path} has checkpoint format {ckpt['format']}; upgrade neas")
    extra = unknown_keys(ckpt, CHECKPOINT_KEYS)
    if extra:
        raise RunDirError(
            f"{path} holds fields no neas checkpoint has ({', '.join(extra[:3])}); {RETRAIN}"
        )
    return ckpt


def supernet_from_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike[str]) -> Supernet:
    """Rebuild the supernet (current space, weight mode) of the checkpoint read from ``path``
    and load its weights; a one-line ``RunDirError`` when they do not fit.

    The space must not imply more weights than the checkpoint holds, so a small file cannot
    make neas allocate a huge network. torch's random stream is left as it was (the
    initialisation the loaded weights replace draws from it).
    """
    try:
        space = SearchSpace.from_json(ckpt["space"])
        held, floor = tensor_elements(ckpt["model"]), supernet_params_floor(space)
        if floor > held:
            raise ValueError(f"its space needs at least {floor:,} weights, it holds {held:,}")
        with torch.random.fork_rng(devices=[]):
            net = Supernet(space, weights=ckpt["weights"])
        net.load_state_dict(ckpt["model"])
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(":")
        raise RunDirError(f"{path} does not match its run ({RETRAIN}): {first}") from None
    return net


@dataclass(frozen=True)
class TrainedRun:
    """A trained run folder, opened: its configuration, supernet (current space) and data."""

    path: Path
    config: RunConfig
    supernet: Supernet
    dataset: Dataset
    epoch: int
    history: list[dict[str, float]]

    @property
    def space(self) -> SearchSpace:
        return self.supernet.space


def require_trained(run_dir: str | os.PathLike[str]) -> Path:
    """The checkpoint path of a run folder, or a one-line error saying there is none."""
    if Path(run_dir).exists() and not Path(run_dir).is_dir():
        raise RunDirError(f"{run_dir} is a file, not a run folder; give a folder `neas train` made")
    if not Path(run_dir).is_dir():
        raise RunDirError(f"run folder {run_dir} does not exist; make one with `neas train`")
    ckpt = Path(run_dir) / CHECKPOINT
    if not ckpt.exists():
        raise RunDirError(f"{run_dir} holds no trained supernet ({CHECKPOINT}); run `neas train`")
    return ckpt


def open_trained(
    run_dir: str | os.PathLike[str],
    *,
    device: torch.device | str = "cpu",
    dataset: Dataset | None = None,
) -> TrainedRun:
    """Open a trained run: config, supernet on ``device`` (over its current, possibly shrunk
    space) and dataset (loaded unless given).

    Example (not run as a doctest: it trains or needs a run folder)::

        run = open_trained("runs/digits")
        run.space.num_layers, run.dataset.num_classes
    """
    ckpt_path = require_trained(run_dir)
    config = read_config(run_dir)
    ckpt = load_checkpoint(ckpt_path)
    supernet = supernet_from_checkpoint(ckpt, ckpt_path)
    return TrainedRun(
        path=Path(run_dir),
        config=config,
        supernet=supernet.to(device),
        dataset=dataset if dataset is not None else config.data.load(),
        epoch=int(ckpt["epoch"]),
        history=list(ckpt.get("history", [])),
    )

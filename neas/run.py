"""The run folder: :class:`Run` (its files' typed reads and writes, its dataset, its stage
records), creating and opening one, and the checks on names a run file holds.

A run folder holds (each name is a constant in ``neas.layout``, used everywhere else):

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
    stages/<stage>.json       a stage's record: it finished, for inputs with this fingerprint

An existing non-empty folder is never overwritten unless the caller resumes it or forces a
fresh start. Every file is written atomically (``neas.files``: a temp file, then a rename), so
a killed run leaves whole files and perhaps a temp file; resuming removes the temp files.
:func:`open_trained` opens a trained run once for every stage that needs one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from neas.checkpoint import RETRAIN, load_checkpoint, supernet_from_checkpoint
from neas.config import RunConfig
from neas.data import Dataset, load_data
from neas.errors import ConfigError, RunDirError
from neas.files import read_json, remove_temp_files, write_json
from neas.job_space import build_space
from neas.layout import (
    CHECKPOINT,
    CONFIG,
    ENSEMBLES,
    MANIFEST,
    MARKER,
    PARETO,
    SPACE,
    STAGES_DIR,
    TRAIN_SUMMARY,
)
from neas.nn.supernet import Supernet
from neas.search_spaces import SearchSpace

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
            # another evolve worker of this run may have removed it first
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(folder)
            stale.append(folder.name)
    return stale


def writable_dir(path: Path) -> Path:
    """Create ``path`` and prove it is writable, or raise a one-line ``RunDirError``.

    The probe is a temp file of its own (nameless where the OS allows), so processes that
    share a run folder (``neas evolve`` workers) never remove each other's probe.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
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


def resumes(run_dir: str | os.PathLike[str], resume: bool) -> bool:
    """Whether a job asked to ``resume`` in ``run_dir`` goes on with a stored run (one with a
    ``config.json``), rather than starting one."""
    return resume and (Path(run_dir) / CONFIG).exists()


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


PARETO_COLUMNS = ("id", "arch", "members", "split", "val_accuracy", "test_accuracy", "macs")


def read_pareto(run_dir: str | Path) -> pd.DataFrame:
    """The run's search results; a one-line ``RunDirError`` when there are none or they are
    broken."""
    path = Path(run_dir) / PARETO
    if not Path(run_dir).is_dir():
        raise RunDirError(f"run folder {run_dir} does not exist")
    if not path.is_file():
        raise RunDirError(f"no search results in {run_dir} ({PARETO}); run `neas search` first")
    try:
        table = pd.read_csv(path, dtype={"id": str})
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError):
        raise RunDirError(f"{path} is empty or not a CSV table; run `neas search` again") from None
    missing = [c for c in PARETO_COLUMNS if c not in table.columns]
    if missing or table.empty:
        what = f"lacks columns {', '.join(missing)}" if missing else "is empty"
        raise RunDirError(f"{path} {what}; run `neas search` again")
    for value in table["id"]:  # ids become folder names: nothing may point outside the run
        safe_name(value, f"{path}: ensemble id")
    return table


def front_archs(table: pd.DataFrame) -> dict[str, str]:
    """id -> architecture JSON of a front (``read_pareto``), what each export must match."""
    return dict(zip(table["id"].astype(str), table["arch"].astype(str)))


@dataclass(frozen=True)
class TrainedRun:
    """A trained run: its folder, configuration, supernet (current, perhaps shrunk, space) and
    data, the epochs trained and their history. When the training stage hands it over: its
    summary (``train_summary.json``; empty when opened from the folder: ``Run.train_summary``
    reads it) and the torch thread count it trained with (``None``: torch's own count)."""

    path: Path
    config: RunConfig
    supernet: Supernet
    dataset: Dataset
    epoch: int
    history: list[dict[str, float]]
    summary: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None

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
        dataset=dataset if dataset is not None else load_data(config.data),
        epoch=int(ckpt["epoch"]),
        history=list(ckpt.get("history", [])),
    )


#: A stage's record (``stages/<name>.json``) says it finished, and for which inputs: a stage is
#: done exactly when its record's fingerprint is that of the inputs it would run with now.
def fingerprint(inputs: Any) -> str:
    """A short hash of ``inputs`` (anything JSON can write), the same on every machine.

    >>> fingerprint({"a": 1, "b": [2, 3]}) == fingerprint({"b": [2, 3], "a": 1})
    True
    """
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Run(os.PathLike):
    """One run folder as an object: where its files are, their typed reads and writes, the
    dataset it was made from (loaded once from its configuration, or given in memory), and a
    record of which stages are done, for which inputs.

    A ``Run`` is a path too (``os.fspath(run)``, ``run / PARETO``), so every function that
    takes a run folder takes one. It holds no state that the folder does not hold, except the
    cached configuration and dataset.

    >>> import tempfile; run = Run.create(Path(tempfile.mkdtemp()) / "r", resume=False, force=False)
    >>> run.is_done("train", {"epochs": 3})
    False
    >>> run.mark_done("train", {"epochs": 3}); run.is_done("train", {"epochs": 3})
    True
    >>> run.is_done("train", {"epochs": 4})
    False
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        config: RunConfig | None = None,
        dataset: Dataset | None = None,
    ) -> None:
        self.path = Path(path)
        self._config, self._dataset = config, dataset
        self._space: SearchSpace | None = None
        self._trained: TrainedRun | None = None

    @classmethod
    def for_job(
        cls,
        path: str | os.PathLike[str],
        *,
        config: RunConfig,
        resume: bool,
        dataset: Dataset | None = None,
    ) -> Run:
        """The run a job works on: resuming a folder that has a ``config.json``, its stored
        configuration (read when first needed); otherwise ``config``. Nothing is written."""
        return cls(path, config=None if resumes(path, resume) else config, dataset=dataset)

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        resume: bool,
        force: bool,
        config: RunConfig | None = None,
        dataset: Dataset | None = None,
    ) -> Run:
        """Create the folder, reopen it (``resume``) or clear it (``force``)."""
        return cls(
            prepare_run_dir(path, resume=resume, force=force), config=config, dataset=dataset
        )

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, dataset: Dataset | None = None) -> Run:
        """An existing run folder (one with a readable ``config.json``)."""
        run = cls(path, dataset=dataset)
        run.config  # noqa: B018  (a one-line RunDirError now, not at the first use)
        return run

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # -- typed reads and writes ----------------------------------------------------------

    @property
    def config(self) -> RunConfig:
        if self._config is None:
            self._config = read_config(self.path)
        return self._config

    def write_config(self, config: RunConfig) -> None:
        write_config(self.path, config)
        self._config = config

    def adopt_config(self, config: RunConfig) -> None:
        """Hold ``config`` as the run's without writing it (another process writes it)."""
        self._config = config

    @property
    def dataset(self) -> Dataset:
        """The run's data: given in memory, or loaded (once) from its configuration."""
        if self._dataset is None:
            self._dataset = load_data(self.config.data)
        return self._dataset

    def settle(self) -> None:
        """Fill in what the configuration leaves to the data (the training schedule:
        ``RunConfig.settled``), before it is written; a stored configuration is settled."""
        ds = self.dataset
        self._config = self.config.settled(rows=len(ds.y_train), table=ds.is_table)

    @property
    def search_space(self) -> SearchSpace:
        """The space the supernet starts from, built from the configuration and the data (a
        space too large to build fails here, before anything is written)."""
        if self._space is None:
            self._space = build_space(self.config.space, self.dataset)
        return self._space

    def trained(self, device: torch.device | str = "cpu") -> TrainedRun:
        """The trained supernet, its (possibly shrunk) space and data: the one the training
        stage handed over (``use_trained``), or opened from the folder once."""
        if self._trained is None:
            self.use_trained(open_trained(self.path, device=device, dataset=self._dataset))
        assert self._trained is not None
        return self._trained

    def use_trained(self, trained: TrainedRun) -> None:
        """Hand the run its trained state in memory (the training stage, just finished)."""
        self._trained, self._config, self._dataset = trained, trained.config, trained.dataset

    def write_space(self, space: SearchSpace) -> None:
        write_json(self.path / SPACE, space.to_dict())

    def train_summary(self) -> dict[str, Any] | None:
        """``train_summary.json``, or ``None`` before training has written it."""
        path = self.path / TRAIN_SUMMARY
        return read_json(path) if path.is_file() else None

    def write_train_summary(self, summary: dict[str, Any]) -> None:
        write_json(self.path / TRAIN_SUMMARY, summary)

    def front(self) -> pd.DataFrame:
        """``pareto.csv``: the front, checked (``read_pareto``)."""
        return read_pareto(self.path)

    def ensemble(self, ensemble_id: object) -> Path:
        """The folder of an exported ensemble (``ensemble_dir``)."""
        return ensemble_dir(self.path, ensemble_id)

    # -- stage records -------------------------------------------------------------------

    def _record_path(self, stage: str) -> Path:
        return self.path / STAGES_DIR / f"{safe_name(stage, 'stage')}.json"

    def record(self, stage: str) -> dict[str, Any] | None:
        """The record of ``stage``, or ``None`` when it never finished (or its record is
        damaged: the stage is then run again)."""
        path = self._record_path(stage)
        try:
            record = read_json(path) if path.is_file() else None
        except (ValueError, OSError):
            return None
        return record if isinstance(record, dict) else None

    def is_done(self, stage: str, inputs: Any) -> bool:
        """Whether ``stage`` finished with these ``inputs``: the rule every stage resumes by."""
        record = self.record(stage)
        return record is not None and record.get("fingerprint") == fingerprint(inputs)

    def mark_done(self, stage: str, inputs: Any, **facts: Any) -> None:
        """Record that ``stage`` finished with ``inputs`` (written last, after its files). The
        record's ``id`` is new each time the stage runs: a later stage takes it among its
        inputs, so that it is done only for this very result (a search run again, even with
        the same options, leaves the export to do again)."""
        path = self._record_path(stage)
        record = {"stage": stage, "fingerprint": fingerprint(inputs), "id": secrets.token_hex(8)}
        write_json(path, {**record, **facts})

    def made_by(self, stage: str) -> str | None:
        """The ``id`` of ``stage``'s record (``None`` without one): a later stage's input."""
        record = self.record(stage)
        return None if record is None else record.get("id")

    def forget(self, stage: str) -> None:
        """Drop ``stage``'s record (it is about to be run again)."""
        self._record_path(stage).unlink(missing_ok=True)

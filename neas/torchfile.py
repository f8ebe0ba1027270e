"""Reading torch files that a user (or an attacker) handed us: no code runs, no memory bombs.

``torch.save`` writes a zip archive whose records are *stored* (never compressed) and whose
first bytes are a zip local-file header. Before ``torch.load(weights_only=True)`` sees a file,
:func:`read_torch_file` checks exactly that: a file that does not start like a zip archive, that
holds a compressed record (a few megabytes can inflate to gigabytes) or more records than any
neas file has, is refused at the cost of reading its directory. What is then loaded is at most
the file's own size. Anything the loader raises on foreign bytes becomes one line, in the
caller's error class; a pickle that names a class or function (code) is reported as such.

The callers (``neas.checkpoint.load_checkpoint``,
``neas.deploy.model_file.read_ensemble_file``) then refuse unknown keys and check that the
declared space implies no more weights than the file holds before they build anything.

>>> import io, tempfile
>>> from pathlib import Path
>>> from neas.errors import ModelFileError
>>> path = Path(tempfile.mkdtemp()) / "m.pt"
>>> torch.save({"w": torch.ones(2)}, path)
>>> read_torch_file(path, error=ModelFileError, advice="make it again")["w"].tolist()
[1.0, 1.0]
>>> _ = path.write_text("hello world")
>>> read_torch_file(path, error=ModelFileError, advice="make it again")
Traceback (most recent call last):
...
neas.errors.ModelFileError: ... is not a torch file (or is damaged); make it again
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from neas.errors import NeasError

#: What every zip archive (and so every file ``torch.save`` writes) starts with.
ZIP_MAGIC = b"PK\x03\x04"
#: More records than any neas file holds (a supernet checkpoint with its optimizer state has a
#: few thousand tensors); a directory longer than this is refused before it is walked.
MAX_RECORDS = 100_000


def read_torch_file(path: str | Path, *, error: type[NeasError], advice: str) -> Any:
    """The object in a ``torch.save`` file, loaded with ``weights_only=True`` after the checks
    above; any failure raises ``error`` with one line ending in ``advice``."""
    path = Path(path)
    damaged = f"{path} is not a torch file (or is damaged); {advice}"
    try:
        with open(path, "rb") as f:
            if f.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
                raise error(damaged)
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
            if len(records) > MAX_RECORDS:
                raise error(f"{path} holds {len(records)} records, more than any neas file")
            packed = [r.filename for r in records if r.compress_type != zipfile.ZIP_STORED]
            if packed:
                raise error(
                    f"{path} holds compressed records ({packed[0]}), which torch never writes; "
                    f"refusing to inflate them ({advice})"
                )
    except NeasError:
        raise
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, KeyError, IndexError):
        raise error(damaged) from None
    try:
        with warnings.catch_warnings():  # torch warns on some foreign bytes before it fails
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found:  # weights_only refused to import a class or function: pickled code
            raise error(
                f"{path} carries pickled code ({found.group(1)}), which neas never writes; "
                f"refusing to load it ({advice})"
            ) from None
        raise error(damaged) from None
    except MemoryError:
        raise error(f"{path} declares more data than fits in memory; {advice}") from None
    except Exception:  # noqa: BLE001  (foreign bytes make the unpickler raise anything)
        raise error(damaged) from None


def unknown_keys(payload: dict[str, Any], known: tuple[str, ...]) -> list[str]:
    """Keys of ``payload`` that are not in ``known`` (as text, sorted).

    >>> unknown_keys({"a": 1, "zz": 2, 3: 4}, ("a",))
    ['3', 'zz']
    """
    return sorted(str(k) for k in payload if k not in known)


def tensor_elements(tree: Any) -> int:
    """How many tensor elements a loaded payload (dicts, lists of tensors) holds.

    >>> tensor_elements({"a": torch.zeros(2, 3), "b": [torch.zeros(4), "x"]})
    10
    """
    if isinstance(tree, torch.Tensor):
        return tree.numel()
    if isinstance(tree, dict):
        return sum(tensor_elements(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return sum(tensor_elements(v) for v in tree)
    return 0

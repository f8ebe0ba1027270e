"""The search checkpoint: every architecture scored so far, so a killed search is replayed.

``search/scores.json`` holds the validation metrics of every architecture the search has
scored, written atomically after each generation. A resumed search runs its strategy again
from the start with the same seed; every architecture found in the file is looked up instead
of evaluated, so the strategy sees the same numbers in the same order and the result
(history, generations, front) is the one an uninterrupted run gives.

A score depends only on the supernet (weights, space, weight mode), the validation split, the
BN-calibration images and the device, never on the strategy or the budget; the file carries a
fingerprint of exactly these, and scores under another fingerprint are discarded, never reused.

>>> import tempfile
>>> from neas.evaluate import EnsembleMetrics
>>> path = Path(tempfile.mkdtemp()) / "scores.json"
>>> scores = ScoreCheckpoint(path, fingerprint="abc", resume=True)
>>> score = scores.wrap(lambda key: EnsembleMetrics(0.9, 0.3, 0.01, 0.1, (0.8, 0.85)))
>>> score("arch-1").accuracy, scores.save()
(0.9, True)
>>> again = ScoreCheckpoint(path, fingerprint="abc", resume=True)
>>> again.reused, again.wrap(lambda key: None)("arch-1").member_accuracy
(1, (0.8, 0.85))
>>> ScoreCheckpoint(path, fingerprint="other", resume=True).discarded
'written for another supernet, data or device'
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import torch

from neas.evaluate import EnsembleMetrics
from neas.files import read_json, write_json
from neas.nn.supernet import Supernet

FORMAT = 2  # 2: a score may normalise by the scored images' own BN statistics
K = TypeVar("K")


def score_fingerprint(
    supernet: Supernet, *, tensors: Iterable[torch.Tensor], device: torch.device | str
) -> str:
    """A digest of what an architecture's score depends on: the supernet's space, weight mode
    and parameters (BN statistics are recalibrated for every score, so they are left out),
    the ``tensors`` (validation images, labels, calibration images) and the device."""
    digest = hashlib.sha256()
    digest.update(f"{FORMAT}|{supernet.space.to_json()}|{supernet.weights}|{device}".encode())
    named = sorted(supernet.named_parameters())
    for name, t in [*named, *((f"input{i}", t) for i, t in enumerate(tensors))]:
        flat = t.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"|{name}|{flat.dtype}|{tuple(t.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _metrics(entry: dict[str, Any]) -> EnsembleMetrics:
    return EnsembleMetrics(
        accuracy=float(entry["accuracy"]),
        nll=float(entry["nll"]),
        ece=float(entry["ece"]),
        disagreement=float(entry["disagreement"]),
        member_accuracy=tuple(float(a) for a in entry["member_accuracy"]),
    )


class ScoreCheckpoint:
    """Scores read from and saved to ``path``; ``wrap(score)`` looks up before it evaluates.

    Keys are architecture JSON strings (``EnsembleArch.to_json``). With ``resume=False``, or
    when the file is unreadable or carries another fingerprint, it starts empty (``discarded``
    says why) and the first ``save`` replaces the file. ``reused`` counts the scores read.
    """

    def __init__(self, path: Path, *, fingerprint: str, resume: bool) -> None:
        self.path, self.fingerprint = Path(path), fingerprint
        self.scores: dict[str, EnsembleMetrics] = {}
        self.discarded: str | None = None
        self._dirty = False
        if resume and self.path.exists():
            self._load()
        self.reused = len(self.scores)

    def _load(self) -> None:
        try:
            data = read_json(self.path)
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                self.discarded = "not a score checkpoint of this neas version"
            elif data.get("fingerprint") != self.fingerprint:
                self.discarded = "written for another supernet, data or device"
            else:
                self.scores = {str(k): _metrics(v) for k, v in data["scores"].items()}
        except (ValueError, OSError, KeyError, TypeError, AttributeError) as exc:
            self.scores = {}
            self.discarded = f"unreadable ({type(exc).__name__})"

    def wrap(self, score: Callable[[K], EnsembleMetrics], key: Callable[[K], str] = str):
        """``score`` that returns a stored result when there is one and stores new ones."""

        def cached(arch: K) -> EnsembleMetrics:
            k = key(arch)
            found = self.scores.get(k)
            if found is None:
                found = self.scores[k] = score(arch)
                self._dirty = True
            return found

        return cached

    def save(self) -> bool:
        """Write the file atomically if anything new was scored; returns whether it wrote."""
        if not self._dirty:
            return False
        write_json(
            self.path,
            {
                "format": FORMAT,
                "fingerprint": self.fingerprint,
                "scores": {k: m.to_dict() for k, m in self.scores.items()},
            },
        )
        self._dirty = False
        return True

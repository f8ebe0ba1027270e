"""The supernet checkpoint: its format, a safe reader, and the supernet it rebuilds.

``supernet.pt`` (``neas.layout.CHECKPOINT``) is written after every training epoch; it loads
with ``torch.load(weights_only=True)`` and holds only the keys in :data:`CHECKPOINT_KEYS`.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from neas.config import TrainConfig
from neas.cost import supernet_params_floor
from neas.errors import RunDirError
from neas.files import atomic_torch_save
from neas.nn.supernet import Supernet
from neas.search_spaces import SearchSpace
from neas.torchfile import read_torch_file, tensor_elements, unknown_keys

CHECKPOINT_FORMAT = 1
#: What to do about a damaged run file that only training writes.
RETRAIN = "train the run again with `neas train --out RUN --force`"


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

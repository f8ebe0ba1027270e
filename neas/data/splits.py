"""Deterministic stratified splits and the train split's per-channel normalisation."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from neas.errors import DataError


def split(
    y: np.ndarray,
    *,
    class_names: tuple[str, ...],
    has_test: bool,
    seed: int,
    val_fraction: float,
    test_fraction: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified ``(train, val, test)`` indices; ``test`` is empty when ``has_test``."""
    need = 2 if has_test else 3
    counts = np.bincount(y, minlength=len(class_names))
    present = np.flatnonzero(counts)
    smallest = present[np.argmin(counts[present])]
    if counts[smallest] < need:
        raise DataError(
            f"class {class_names[smallest]!r} has only {counts[smallest]} sample(s); a stratified "
            f"split needs at least {need} per class"
        )
    idx = np.arange(len(y))
    if has_test:
        train, val = stratified(idx, y, take=val_fraction, seed=seed, what="train/val")
        return train, val, idx[:0]
    rest, test = stratified(idx, y, take=test_fraction, seed=seed, what="test")
    train, val = stratified(
        rest, y, take=val_fraction / (1.0 - test_fraction), seed=seed, what="train/val"
    )
    return train, val, test


def stratified(
    idx: np.ndarray, y: np.ndarray, *, take: float | int, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``idx`` into ``(kept, taken)`` stratified by ``y[idx]``; sorted for stable order."""
    try:
        kept, taken = train_test_split(idx, test_size=take, stratify=y[idx], random_state=seed)
    except ValueError as exc:
        raise DataError(f"too few samples per class for a stratified {what} split: {exc}") from exc
    return np.sort(kept), np.sort(taken)


def normalise(
    x_train: np.ndarray, *others: np.ndarray
) -> tuple[tuple[float, ...], tuple[float, ...], list[np.ndarray]]:
    """Per-channel mean and std of ``x_train`` (a constant channel is only centred), and
    ``x_train`` and ``others`` normalised with them, as contiguous float32 arrays."""
    mean = x_train.mean(axis=(0, 2, 3), dtype=np.float64)
    std = x_train.std(axis=(0, 2, 3), dtype=np.float64)
    std = np.where(std > 1e-8, std, 1.0)  # constant channel: centre only
    m, s = (a.astype(np.float32)[None, :, None, None] for a in (mean, std))
    normed = [np.ascontiguousarray((x - m) / s, dtype=np.float32) for x in (x_train, *others)]
    return tuple(float(v) for v in mean), tuple(float(v) for v in std), normed

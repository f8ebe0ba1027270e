"""Ensemble architectures: a split point, the shared trunk's ops, and each member's ops.

Op ids index ``SearchSpace.ops``; ``SKIP`` (-1) skips a layer. Three encodings:

- JSON (``to_dict``/``from_dict``): op *names*, readable and stable under shrinking;
- an integer genome (``encode``/``decode``) for pymoo/optuna: ``[split] + K blocks of L genes``,
  each gene an index into that layer's current candidates; layers before the split take member
  0's genes (the others' genes there are ignored);
- the NEAS paper's published ``arch_list`` (``from_neas_arch_list``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neas.errors import InvalidArchError
from neas.search_spaces.spec import SKIP, SearchSpace


@dataclass(frozen=True)
class EnsembleArch:
    """``split`` shared layers with ops ``shared``; member m runs ``members[m]`` after that."""

    split: int
    shared: tuple[int, ...]
    members: tuple[tuple[int, ...], ...]

    @property
    def num_members(self) -> int:
        return len(self.members)

    def member_ops(self, member: int) -> tuple[int, ...]:
        """Every layer's op as seen by ``member`` (trunk ops, then its own)."""
        return self.shared + self.members[member]

    def to_dict(self, space: SearchSpace) -> dict[str, Any]:
        return {
            "split": self.split,
            "shared": [space.op_name(o) for o in self.shared],
            "members": [[space.op_name(o) for o in m] for m in self.members],
        }

    def to_json(self, space: SearchSpace) -> str:
        return json.dumps(self.to_dict(space))

    @classmethod
    def from_dict(cls, data: dict[str, Any], space: SearchSpace) -> EnsembleArch:
        if not isinstance(data, dict):
            raise InvalidArchError(
                f"architecture JSON must be an object with 'split', 'shared' and 'members', "
                f"not a {type(data).__name__}"
            )
        try:
            arch = cls(
                split=int(data["split"]),
                shared=tuple(space.op_id(n) for n in data["shared"]),
                members=tuple(tuple(space.op_id(n) for n in m) for m in data["members"]),
            )
        except (KeyError, TypeError) as exc:
            raise InvalidArchError(
                f"architecture JSON needs 'split', 'shared' and 'members': {exc}"
            ) from None
        except ValueError as exc:
            raise InvalidArchError(str(exc)) from None
        validate(arch, space)
        return arch

    @classmethod
    def from_json(cls, text: str, space: SearchSpace) -> EnsembleArch:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise InvalidArchError(f"architecture is not JSON ({exc})") from None
        return cls.from_dict(data, space)


def validate(arch: EnsembleArch, space: SearchSpace, *, check_candidates: bool = True) -> None:
    """Raise ``InvalidArchError`` naming the first problem, if ``arch`` is not in ``space``."""
    n = space.num_layers
    if not 0 <= arch.split <= n:
        raise InvalidArchError(f"split {arch.split} out of range 0..{n}")
    if len(arch.shared) != arch.split:
        raise InvalidArchError(
            f"wrong length: {len(arch.shared)} shared ops for split {arch.split}"
        )
    if arch.num_members < 1:
        raise InvalidArchError("an ensemble needs at least one member")
    for m, ops in enumerate(arch.members):
        if len(ops) != n - arch.split:
            raise InvalidArchError(
                f"wrong length: member {m} has {len(ops)} ops, expected {n - arch.split}"
            )
        for i, op in enumerate(arch.member_ops(m)):
            layer = space.layers[i]
            where = f"layer {i}" + ("" if i < arch.split else f" of member {m}")
            if op != SKIP and not 0 <= op < len(space.ops):
                raise InvalidArchError(
                    f"op index {op} out of range at {where}: "
                    f"use -1 (skip) or 0..{len(space.ops) - 1}"
                )
            if op == SKIP and layer.first_in_stage:
                raise InvalidArchError(f"skip at {where}, the first layer of stage {layer.stage}")
            if check_candidates and op not in layer.candidates:
                raise InvalidArchError(
                    f"op {space.op_name(op)} at {where} is not a candidate there "
                    f"({', '.join(space.op_name(c) for c in layer.candidates)})"
                )


def genome_bounds(space: SearchSpace) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive integer bounds of the genome for ``space``."""
    per_layer = [len(layer.candidates) - 1 for layer in space.layers]
    high = np.array([space.num_layers] + per_layer * space.num_members, dtype=np.int64)
    return np.zeros_like(high), high


def encode(arch: EnsembleArch, space: SearchSpace) -> np.ndarray:
    """Integer genome of ``arch`` (inverse of ``decode``)."""
    validate(arch, space)
    n = space.num_layers
    genes = [arch.split]
    for m in range(arch.num_members):
        # Trunk genes of members m > 0 are don't-cares; writing the trunk's keeps it canonical.
        ops = arch.member_ops(m)
        genes += [space.layers[i].candidates.index(ops[i]) for i in range(n)]
    return np.asarray(genes, dtype=np.int64)


def decode(genome: Sequence[int] | np.ndarray, space: SearchSpace) -> EnsembleArch:
    """The architecture a genome stands for; raises ``InvalidArchError`` on a bad genome."""
    genes = [int(g) for g in np.asarray(genome).ravel()]
    n, k = space.num_layers, space.num_members
    if len(genes) != 1 + n * k:
        raise InvalidArchError(f"wrong length: genome has {len(genes)} genes, expected {1 + n * k}")
    split = genes[0]
    if not 0 <= split <= n:
        raise InvalidArchError(f"split {split} out of range 0..{n}")
    ops = []
    for m in range(k):
        row = []
        for i, g in enumerate(genes[1 + m * n : 1 + (m + 1) * n]):
            cands = space.layers[i].candidates
            if not 0 <= g < len(cands):
                raise InvalidArchError(f"gene {g} out of range 0..{len(cands) - 1} at layer {i}")
            row.append(cands[g])
        ops.append(row)
    return EnsembleArch(
        split=split,
        shared=tuple(ops[0][:split]),
        members=tuple(tuple(row[split:]) for row in ops),
    )


def sample(space: SearchSpace, rng: np.random.Generator) -> EnsembleArch:
    """A uniformly random architecture: uniform split, uniform op per layer and member."""
    low, high = genome_bounds(space)
    return decode(rng.integers(low, high + 1), space)


def from_neas_arch_list(values: Sequence[int], space: SearchSpace) -> EnsembleArch:
    """Read the NEAS release's ``arch_list``: ``[split, K, 0, shared..., (member ops..., 0)*K]``.

    -1 is skip; the leading 0 is the fixed first block and each member's trailing 0 its head.
    """
    v = [int(x) for x in values]
    n = space.num_layers
    if len(v) < 3:
        raise InvalidArchError("NEAS arch_list needs at least [split, K, 0]")
    split, k = v[0], v[1]
    if not 0 <= split <= n:
        raise InvalidArchError(f"split {split} out of range 0..{n}")
    expected = 3 + split + k * (n - split + 1)
    if k < 1 or len(v) != expected:
        raise InvalidArchError(
            f"wrong length: NEAS arch_list with split {split} and K={k} needs {expected} "
            f"entries, got {len(v)}"
        )
    shared = tuple(v[3 : 3 + split])
    members, pos = [], 3 + split
    for _ in range(k):
        members.append(tuple(v[pos : pos + n - split]))
        pos += n - split + 1
    arch = EnsembleArch(split=split, shared=shared, members=tuple(members))
    validate(arch, space, check_candidates=False)
    return arch


NEAS_ARCH_LISTS: dict[str, tuple[int, ...]] = {
    "NEAS-S": (20, 2, 0, 0, -1, 0, 2, 0, 0, 2, -1, 0, -1, 0, 3, 2, 4, 0, 2, 5, 0, 4, 3, 0, 0),
    "NEAS-M": (
        16,
        2,
        0,
        3,
        2,
        0,
        2,
        5,
        0,
        -1,
        3,
        0,
        2,
        0,
        0,
        3,
        5,
        4,
        0,
        5,
        0,
        5,
        4,
        0,
        3,
        5,
        2,
        5,
        0,
    ),
    "NEAS-L": (
        16,
        2,
        0,
        5,
        5,
        1,
        3,
        5,
        1,
        3,
        4,
        1,
        2,
        5,
        4,
        1,
        3,
        3,
        1,
        3,
        1,
        5,
        1,
        0,
        5,
        4,
        4,
        3,
        0,
    ),
}

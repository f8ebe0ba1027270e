"""The ensemble search problem: genomes -> (val error, MACs, latency) with a MACs budget.

Genome: ``[split] + K blocks of L genes``, or ``[K] + [split] + K_max blocks of L genes`` when
the number of members is searched too (``search_members=True``: single networks compete on the
same front). Evaluations are cached by architecture, so genomes that decode to the
same ensemble are scored once; infeasible genomes (over budget) are not scored on data at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from neas.cost import CostTable
from neas.errors import ConfigError
from neas.evaluate import EnsembleMetrics
from neas.predictors.latency import LatencyTable
from neas.search_spaces.arch import EnsembleArch, decode, encode, genome_bounds
from neas.search_spaces.spec import SearchSpace

N_OBJECTIVES = 3  # validation error, MACs, predicted latency


@dataclass(frozen=True)
class Evaluation:
    """One scored architecture; ``generation`` is when it was first proposed."""

    arch: EnsembleArch
    val_error: float
    val_nll: float
    error_step: float
    macs: int
    params: int
    latency_ms: float
    feasible: bool
    disagreement: float
    member_accuracy: tuple[float, ...]
    generation: int

    @property
    def ranked_error(self) -> float:
        """Validation error with ties broken by NLL, never reordering distinct errors.

        Accuracy on a small validation split moves in steps of ``error_step`` (one image), so
        many ensembles tie; adding less than half a step of ``nll / (1 + nll)`` ranks the more
        confident-and-correct ensemble first among equals (a proper scoring rule).
        """
        confidence = self.val_nll / (1.0 + self.val_nll) if np.isfinite(self.val_nll) else 1.0
        return self.val_error + 0.5 * self.error_step * confidence

    @property
    def objectives(self) -> tuple[float, float, float]:
        return (self.ranked_error, float(self.macs), self.latency_ms)


def fewest_members(space: SearchSpace, *, search_members: bool, ensemble_size: int | None) -> int:
    """The fewest members a proposal can have: 1 when K is searched, else ``ensemble_size`` (a K
    fixed below the space's, checked against it) or the space's K."""
    if ensemble_size is not None and ensemble_size < 1:
        raise ConfigError(f"--ensemble-size must be at least 1, got {ensemble_size}")
    if ensemble_size is not None and ensemble_size > space.num_members:
        raise ConfigError(
            f"--ensemble-size {ensemble_size} is more than the supernet's "
            f"{space.num_members} members"
        )
    if search_members:
        return 1
    return ensemble_size or space.num_members


def cheapest_macs(space: SearchSpace, table: CostTable, *, min_members: int) -> int:
    """MACs of the cheapest ensemble: every layer shared, its cheapest op, fewest members."""
    layers = sum(
        min(table.layers[i][op].macs for op in lay.candidates) for i, lay in enumerate(space.layers)
    )
    return table.stem.macs + layers + min_members * table.head.macs


def check_budget(budget: int, space: SearchSpace, costs: CostTable, *, min_members: int) -> None:
    """A one-line ``ConfigError`` when ``budget`` is below the cheapest ensemble of at least
    ``min_members`` members in ``space``."""
    cheapest = cheapest_macs(space, costs, min_members=min_members)
    if budget < cheapest:
        raise ConfigError(
            f"budget {budget:,} MACs is below the cheapest ensemble in this space "
            f"({cheapest:,} MACs)"
        )


class SearchProblem:
    """Decodes genomes, scores them (cached), and keeps the history of every proposal.

    ``score(arch)`` returns the architecture's validation metrics; the problem never touches
    data itself, and strategies never see anything but genomes and objective values.
    """

    def __init__(
        self,
        *,
        space: SearchSpace,
        score: Callable[[EnsembleArch], EnsembleMetrics],
        costs: CostTable,
        latency: LatencyTable,
        budget: int,
        search_members: bool = False,
        ensemble_size: int | None = None,
        on_evaluation: Callable[[Evaluation], None] | None = None,
        error_step: float = 0.0,
    ) -> None:
        self.space, self.score, self.costs, self.latency = space, score, costs, latency
        self.budget, self.search_members = budget, search_members
        self.min_members = fewest_members(
            space, search_members=search_members, ensemble_size=ensemble_size
        )
        self.ensemble_size = ensemble_size  # K fixed below the space's K (None: the space's)
        self.on_evaluation = on_evaluation
        self.error_step = error_step  # 1 / validation size: ties in error broken by NLL
        low, high = genome_bounds(space)
        if search_members:
            low = np.concatenate([[1], low])
            high = np.concatenate([[space.num_members], high])
        self.xl, self.xu = low, high
        self.cache: dict[EnsembleArch, Evaluation] = {}
        self.history: list[Evaluation] = []  # one entry per proposal, duplicates included
        check_budget(budget, space, costs, min_members=self.min_members)

    @property
    def n_var(self) -> int:
        return len(self.xl)

    def decode(self, genome: np.ndarray) -> EnsembleArch:
        g = np.asarray(genome, dtype=np.int64).ravel()
        if not self.search_members:
            arch = decode(g, self.space)
            if self.ensemble_size is None:
                return arch
            return replace(arch, members=arch.members[: self.ensemble_size])
        arch = decode(g[1:], self.space)
        return replace(arch, members=arch.members[: int(g[0])])

    def encode(self, arch: EnsembleArch) -> np.ndarray:
        k = arch.num_members
        padded = replace(
            arch, members=arch.members + (arch.members[0],) * (self.space.num_members - k)
        )
        base = encode(padded, self.space)
        return np.concatenate([[k], base]) if self.search_members else base

    def macs(self, genome: np.ndarray) -> int:
        return self.costs.ensemble(self.decode(genome)).macs

    def evaluate(self, genomes: np.ndarray, *, generation: int) -> tuple[np.ndarray, np.ndarray]:
        """Objectives F (n, 3) and constraint G (n, 1) (MACs - budget, <= 0 feasible)."""
        f = np.empty((len(genomes), N_OBJECTIVES))
        g = np.empty((len(genomes), 1))
        for i, genome in enumerate(np.asarray(genomes).reshape(len(genomes), -1)):
            ev = self.evaluate_arch(self.decode(genome), generation=generation)
            f[i] = ev.objectives
            g[i, 0] = ev.macs - self.budget
        return f, g

    def remember(self, ev: Evaluation) -> None:
        """Cache an evaluation made elsewhere (another worker on a shared study, an earlier
        run), so that proposing its architecture never scores it here."""
        self.cache.setdefault(ev.arch, ev)

    def evaluate_arch(self, arch: EnsembleArch, *, generation: int) -> Evaluation:
        ev = self.cache.get(arch)
        if ev is None:
            cost = self.costs.ensemble(arch)
            feasible = cost.macs <= self.budget
            metrics = self.score(arch) if feasible else None
            ev = Evaluation(
                arch=arch,
                val_error=1.0 - metrics.accuracy if metrics else 1.0,
                val_nll=metrics.nll if metrics else float("inf"),
                error_step=self.error_step,
                macs=cost.macs,
                params=cost.params,
                latency_ms=self.latency.predict(arch),
                feasible=feasible,
                disagreement=metrics.disagreement if metrics else float("nan"),
                member_accuracy=metrics.member_accuracy if metrics else (),
                generation=generation,
            )
            self.cache[arch] = ev
        self.history.append(replace(ev, generation=generation))
        if self.on_evaluation is not None:
            self.on_evaluation(ev)
        return ev

    def sample_feasible(self, n: int, rng: np.random.Generator, *, tries: int = 200) -> np.ndarray:
        """``n`` random genomes within budget, spread evenly over the splits it allows.

        Each genome takes its split first, then draws its ops uniformly, redrawn up to
        ``tries`` times until they fit; then random genes become their layer's cheapest op until
        it fits. The splits are ``feasible_splits`` in shuffled rounds (each once before any
        twice): 16 independent uniform draws of 21 splits leave about 10 of them out (a
        Fashion-MNIST population had none of splits 8-15), 16 in rounds cover 16. Drawing ops
        and split together and rejecting would favour late splits (shared layers are paid
        once), so a budget that admits every split would still see almost no early-split
        proposal, the ensembles whose members can differ.
        """
        feasible = self.feasible_splits()
        rounds = -(-n // len(feasible))  # ceil
        splits = np.concatenate([rng.permutation(feasible) for _ in range(rounds)])[:n]
        at = 1 if self.search_members else 0
        out = []
        for split in splits.tolist():
            for _ in range(tries):
                genome = rng.integers(self.xl, self.xu + 1)
                genome[at] = split
                if self.macs(genome) <= self.budget:
                    break
            else:
                genome = self._cheapen(genome, rng)
            out.append(genome)
        return np.stack(out)

    def feasible_splits(self) -> np.ndarray:
        """The splits whose cheapest ensemble (fewest members, cheapest op per layer) fits."""
        cheapest = np.asarray(self._cheapest_genes() * self.space.num_members)
        head = [self.min_members] if self.search_members else []
        ok = [
            s
            for s in range(self.space.num_layers + 1)
            if self.macs(np.concatenate([head, [s], cheapest])) <= self.budget
        ]
        return np.asarray(ok, dtype=np.int64)

    def _cheapest_genes(self) -> list[int]:
        """Each layer's cheapest op, as a gene (an index into its candidates)."""
        return [
            int(np.argmin([self.costs.layers[i][op].macs for op in lay.candidates]))
            for i, lay in enumerate(self.space.layers)
        ]

    def _cheapen(self, genome: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Replace random genes by each layer's cheapest op until the genome fits the budget;
        then drop to the fewest members, then share one more layer at a time."""
        genome = genome.copy()
        offset = 1 if self.search_members else 0
        n = self.space.num_layers
        cheapest = self._cheapest_genes()
        order = rng.permutation(len(genome) - offset - 1) + offset + 1
        for pos in order:
            if self.macs(genome) <= self.budget:
                return genome
            genome[pos] = cheapest[(pos - offset - 1) % n]
        if self.search_members and self.macs(genome) > self.budget:
            genome[0] = 1
        while self.macs(genome) > self.budget and genome[offset] < n:
            genome[offset] += 1
        return genome


def front_mask(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``points`` (all objectives minimised)."""
    n = len(points)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        dominated = np.all(points <= points[i], axis=1) & np.any(points < points[i], axis=1)
        mask[i] = not dominated.any()
    return mask


def pareto_front(evaluations: list[Evaluation]) -> list[Evaluation]:
    """The feasible, non-dominated, distinct evaluations, sorted by MACs."""
    unique = {ev.arch: ev for ev in evaluations if ev.feasible}
    evs = list(unique.values())
    if not evs:
        return []
    mask = front_mask(np.array([ev.objectives for ev in evs]))
    return sorted((ev for ev, keep in zip(evs, mask) if keep), key=lambda e: (e.macs, e.val_error))

"""Genes of the pruning search: one integer per searchable group, an index into its ratio grid.

The encoding turns genes into ratios, kept-channel counts and plans, checks them against the budgets with the
analytic estimator (a few milliseconds, no model built), repairs infeasible candidates and seeds the first
population.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..graph import LayerGraph
from ..hardware.estimate import estimate
from ..hardware.profile import BUDGETS, Footprint, HardwareProfile
from ..plan import kept_count, select_channels

Genes = tuple[int, ...]


@dataclass(frozen=True)
class Usage:
    """The footprint of one candidate and how it stands against the budgets."""

    ram: int
    flash: int
    macs: int
    params: int
    fractions: tuple[float, ...]  # used / limit for each budget set, in BUDGETS order

    @property
    def feasible(self) -> bool:
        return all(f <= 1.0 for f in self.fractions)

    @property
    def violation(self) -> float:
        """Sum of the relative excess over every budget (0 when it fits)."""
        return float(sum(max(0.0, f - 1.0) for f in self.fractions))

    @property
    def worst(self) -> float:
        """The largest used / limit ratio."""
        return max(self.fractions)


class Encoding:
    """Genes ↔ ratios ↔ plans for the prunable groups of ``graph``.

    ``grids`` maps each prunable group to the ratios it may take (ascending); groups with a single choice get
    no gene. ``scores`` ranks each group's channels (higher kept first). ``offsets`` (``{"ram": bytes,
    "flash": bytes}``) are added to every estimate: the measured-minus-estimated difference of the unpruned
    model (:func:`calibration_offsets`), which stays nearly constant as channels are removed.
    """

    def __init__(
        self,
        graph: LayerGraph,
        grids: Mapping[str, Sequence[float]],
        scores: Mapping[str, np.ndarray],
        hardware: HardwareProfile,
        min_channels: int = 1,
        round_to: int = 1,
        offsets: Mapping[str, int] | None = None,
    ) -> None:
        self.graph = graph
        self.offsets = {"ram": 0, "flash": 0, **(offsets or {})}
        self.hardware = hardware
        self.budgets = tuple(b for b in BUDGETS if getattr(hardware, b) is not None)
        self.limits = tuple(float(getattr(hardware, b)) for b in self.budgets)
        self.scores = dict(scores)
        self.fixed = {name: float(grid[0]) for name, grid in grids.items() if len(grid) == 1}
        self.names = tuple(name for name, grid in grids.items() if len(grid) > 1)
        self.grids = {name: tuple(float(r) for r in grid) for name, grid in grids.items()}
        self.sizes = {name: graph.group(name).size for name in grids}
        self.counts = {
            name: tuple(kept_count(self.sizes[name], r, min_channels, round_to) for r in grid)
            for name, grid in self.grids.items()
        }
        self.upper = tuple(len(self.grids[name]) - 1 for name in self.names)
        self._usage: dict[tuple[int, ...], Usage] = {}

    # conversions ------------------------------------------------------------------------------
    def ratios(self, genes: Sequence[int]) -> dict[str, float]:
        """``{group name: ratio}`` of every prunable group (fixed groups included)."""
        result = dict(self.fixed)
        for name, gene in zip(self.names, genes, strict=True):
            result[name] = self.grids[name][int(gene)]
        return {name: result[name] for name in self.grids}

    def kept_counts(self, genes: Sequence[int]) -> dict[str, int]:
        """``{group name: channels kept}`` of every prunable group."""
        counts = {name: self.counts[name][0] for name in self.fixed}
        for name, gene in zip(self.names, genes, strict=True):
            counts[name] = self.counts[name][int(gene)]
        return counts

    def plan(self, genes: Sequence[int]) -> dict[str, np.ndarray]:
        """Kept channel indices of every group that loses channels."""
        plan = {}
        for name, count in self.kept_counts(genes).items():
            if count < self.sizes[name]:
                plan[name] = select_channels(self.scores[name], count)
        return plan

    def genes_for(self, ratios: Mapping[str, float]) -> Genes:
        """The genes whose ratios are the highest grid values not above ``ratios`` (absent groups: 0)."""
        genes = []
        for name in self.names:
            grid = self.grids[name]
            wanted = ratios.get(name, 0.0)
            genes.append(max((i for i, r in enumerate(grid) if r <= wanted + 1e-9), default=0))
        return tuple(genes)

    def clip(self, genes: Sequence[float]) -> Genes:
        """Genes rounded to integers within their bounds."""
        return tuple(int(min(max(round(float(g)), 0), u)) for g, u in zip(genes, self.upper, strict=True))

    # footprints -------------------------------------------------------------------------------
    def usage(self, genes: Sequence[int]) -> Usage:
        """Footprint of the candidate from the analytic estimator (cached by kept counts)."""
        counts = self.kept_counts(genes)
        key = tuple(counts[name] for name in self.grids)
        if key not in self._usage:
            fp = self._calibrated(estimate(self.graph, counts, layers=False))
            fractions = tuple(getattr(fp, b) / limit for b, limit in zip(self.budgets, self.limits, strict=True))
            self._usage[key] = Usage(fp.ram, fp.flash, fp.macs, fp.params, fractions)
        return self._usage[key]

    def footprint(self, plan: Mapping[str, np.ndarray]) -> Footprint:
        """The estimated footprint of ``plan`` (per-layer rows included), corrected by ``offsets``."""
        return self._calibrated(self.hardware.estimate(self.graph, plan))

    def _calibrated(self, fp: Footprint) -> Footprint:
        """``fp`` with ``offsets`` added to its RAM and Flash (noted in ``details["calibration"]``)."""
        fp.ram += self.offsets["ram"]
        fp.flash += self.offsets["flash"]
        fp.details["calibration"] = dict(self.offsets)
        return fp

    def smallest(self) -> Genes:
        """The genes that prune every group as far as its grid allows."""
        return tuple(self.upper)

    # repair and seeds -------------------------------------------------------------------------
    def repair(self, genes: Sequence[int]) -> Genes:
        """``genes`` pruned further, one grid step at a time, until the candidate fits (or nothing can grow).

        Each step takes the group whose next step lowers the total budget excess most for the least channel
        importance removed; it stops as soon as every budget is met.
        """
        genes = list(self.clip(genes))
        current = self.usage(genes)
        while not current.feasible:
            best = None
            for position, gene in enumerate(genes):
                if gene >= self.upper[position]:
                    continue
                trial = genes.copy()
                trial[position] += 1
                usage = self.usage(trial)
                gain = current.violation - usage.violation
                if gain <= 0:
                    continue
                cost = self._importance_lost(position, gene, gene + 1)
                rank = gain / (cost + 1e-12)
                if best is None or rank > best[0]:
                    best = (rank, trial, usage)
            if best is None:
                break
            _, genes, current = best
        return tuple(genes)

    def _importance_lost(self, position: int, before: int, after: int) -> float:
        """Share of a group's importance mass dropped by moving its gene from ``before`` to ``after``."""
        name = self.names[position]
        order = np.sort(np.abs(self.scores[name]))[::-1]
        total = float(order.sum()) or 1.0
        kept_before, kept_after = self.counts[name][before], self.counts[name][after]
        return float(order[kept_after:kept_before].sum()) / total

    def uniform(self, ratio: float) -> Genes:
        """Every group at ``ratio`` (or the highest grid value below it)."""
        return self.genes_for(dict.fromkeys(self.names, ratio))

    def importance_guided(self, fraction: float) -> Genes:
        """Ratios from one global threshold on channel scores normalised per group (a global ranking).

        Each group's scores are divided by their mean, so groups compare on their own scale; the ``fraction``
        of all channels with the lowest normalised scores is dropped, and each group's share snapped to its grid.
        """
        normalised = {}
        for name in self.names:
            scores = np.abs(np.asarray(self.scores[name], dtype=np.float64))
            normalised[name] = scores / (scores.mean() or 1.0)
        pooled = np.concatenate(list(normalised.values())) if normalised else np.zeros(0)
        if not len(pooled):
            return ()
        threshold = np.quantile(pooled, fraction)
        ratios = {name: float(np.mean(values < threshold)) for name, values in normalised.items()}
        return self.genes_for(ratios)

    def initial_population(self, size: int, uniform_ratios: Sequence[float], seed: int) -> list[Genes]:
        """``size`` distinct candidates: uniform ratios, importance-guided ones, then random ones, all repaired.

        The least-pruned uniform ratio that fits as it is (fixed mode's best answer) is always among them;
        candidates that fit come first, infeasible ones only fill up when too few fit.
        """
        rng = np.random.default_rng(seed)
        uniform = [self.uniform(r) for r in sorted(uniform_ratios)]
        anchor = next((g for g in uniform if self.usage(g).feasible), None)
        proposals = uniform + [self.importance_guided(f) for f in (0.2, 0.35, 0.5, 0.65, 0.8)]
        chosen = list(dict.fromkeys(g for g in map(self.repair, proposals) if self.usage(g).feasible))
        attempts = 0
        while len(chosen) < size and attempts < 20 * size:
            attempts += 1
            candidate = self.repair(self._random(rng))
            if candidate not in chosen and self.usage(candidate).feasible:
                chosen.append(candidate)
        extra = 0
        while len(chosen) < size and extra < 20 * size:
            extra += 1
            candidate = self._random(rng)
            if candidate not in chosen:
                chosen.append(candidate)
        if len(chosen) > size:
            rest = [g for g in chosen if g != anchor]
            chosen = ([anchor] if anchor is not None else []) + _spread(rest, size - (anchor is not None), self)
        return chosen[:size]

    def _random(self, rng) -> Genes:
        return tuple(int(rng.integers(0, u + 1)) for u in self.upper)


def _spread(candidates: list[Genes], count: int, encoding: Encoding) -> list[Genes]:
    """``count`` of ``candidates``, evenly spaced in order of footprint, so that small and large ones survive."""
    order = sorted(candidates, key=lambda g: (encoding.usage(g).worst, g), reverse=True)
    step = len(order) / count
    return [order[math.floor(i * step)] for i in range(count)]


def calibration_offsets(model, graph: LayerGraph, x: np.ndarray) -> dict[str, int]:
    """``{"ram", "flash"}``: what converting ``model`` (``x`` as representative data) measures minus the estimate.

    The estimator is exact for MACs and within a fraction of a percent for RAM; its Flash error comes mostly
    from the converter's fused tensor names, which do not change as channels are removed, so one conversion of
    the unpruned model corrects every candidate's estimate (to within tens of bytes on the reference zoo).
    """
    from ..hardware.measure import measure

    measured = measure(model, x)
    estimated = estimate(graph, {}, layers=False)
    return {"ram": measured.ram - estimated.ram, "flash": measured.flash - estimated.flash}

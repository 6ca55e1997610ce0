"""Channel importance criteria.

A criterion is any callable ``criterion(group, model, data) -> scores`` returning one score per
channel of ``group`` (higher = more important). Scores are only compared within a group, so their
scale does not matter. Built-ins, by name: ``"l1"`` (default), ``"l2"``, ``"bn_scale"``, ``"random"``.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable

import numpy as np

from .errors import ParameterError
from .graph import ChannelGroup, LayerGraph
from .rules import rule_for

Criterion = Callable[[ChannelGroup, object, object], np.ndarray]


def _producer_kernels(group: ChannelGroup) -> list[np.ndarray]:
    """Kernels of the group's producers, flattened to (fan-in, output channels)."""
    kernels = []
    for name in group.producers:
        layer = group.get_layer(name)
        kernel = rule_for(layer).output_kernel(layer)
        if kernel is not None:
            kernels.append(kernel.reshape(-1, kernel.shape[-1]))
    return kernels


class NormImportance:
    """Norm of each producer's kernel slice per output channel, summed over the group's producers.

    ``p=1`` is the L1 norm (sum of absolute weights), ``p=2`` the Euclidean norm.
    """

    def __init__(self, p: int = 1) -> None:
        self.p = p

    def __call__(self, group: ChannelGroup, model, data) -> np.ndarray:
        scores = np.zeros(group.size)
        for kernel in _producer_kernels(group):
            scores += np.linalg.norm(kernel, ord=self.p, axis=0)
        return scores

    def __repr__(self) -> str:
        return f"NormImportance(p={self.p})"


class BNScaleImportance:
    """|gamma| of the BatchNormalization layers that carry the group (network slimming).

    Summed over every such layer (the BNs of all producers of a residual group); after a
    concatenation the group's own slice of gamma is read.

    Groups without a BatchNormalization fall back to the L1 norm of their producers; their names
    are collected in ``fallbacks``.
    """

    def __init__(self) -> None:
        self.fallbacks: list[str] = []

    def __call__(self, group: ChannelGroup, model, data) -> np.ndarray:
        scores = np.zeros(group.size)
        found = False
        for name in group.layers:
            layer = group.get_layer(name)
            gamma = next((w for w in layer.weights if w.name == "gamma"), None)
            rows = group.channel_rows(name)
            if gamma is not None and rows is not None:
                scores += np.abs(gamma.numpy()[rows])
                found = True
        if not found:
            self.fallbacks.append(group.name)
            return NormImportance(1)(group, model, data)
        return scores

    def __repr__(self) -> str:
        return "BNScaleImportance()"


class RandomImportance:
    """Random scores, reproducible from ``seed`` and independent of the order groups are scored in."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def __call__(self, group: ChannelGroup, model, data) -> np.ndarray:
        rng = np.random.default_rng([self.seed, zlib.crc32(group.name.encode())])
        return rng.random(group.size)

    def __repr__(self) -> str:
        return f"RandomImportance(seed={self.seed})"


BUILTIN = {
    "l1": lambda: NormImportance(1),
    "l2": lambda: NormImportance(2),
    "bn_scale": BNScaleImportance,
    "random": RandomImportance,
}


def resolve(importance) -> Criterion:
    """The criterion named or given by ``importance``."""
    if isinstance(importance, str):
        try:
            return BUILTIN[importance]()
        except KeyError:
            raise ParameterError(
                f"importance={importance!r} is unknown; use one of {', '.join(map(repr, BUILTIN))} or a callable"
            ) from None
    if callable(importance):
        return importance
    raise ParameterError(
        f"importance must be a name or a callable(group, model, data), got {type(importance).__name__}"
    )


def group_scores(graph: LayerGraph, groups: list[ChannelGroup], importance, data=None) -> dict[str, np.ndarray]:
    """Scores per channel for each group, checked for shape and finiteness."""
    criterion = resolve(importance)
    scores = {}
    for group in groups:
        values = criterion(group, graph.model, data)
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.shape != (group.size,):
            raise ParameterError(
                f"importance returned {values.size} scores for group '{group.name}', which has {group.size} channels"
            )
        if not np.all(np.isfinite(values)):
            raise ParameterError(f"importance returned NaN or infinite scores for group '{group.name}'")
        scores[group.name] = values
    if isinstance(criterion, BNScaleImportance) and criterion.fallbacks:
        warnings.warn(
            f"bn_scale: {len(criterion.fallbacks)} groups have no BatchNormalization and are ranked by L1 norm: "
            + ", ".join(criterion.fallbacks),
            stacklevel=3,
        )
    return scores

"""From ratios to kept channels: how many channels each group keeps, and which ones."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np

from .errors import ParameterError, RatioError
from .graph import LayerGraph


def check_ratio(value, where: str) -> float:
    """``value`` as a float in [0, 1), or a :class:`RatioError` naming ``where`` it came from."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RatioError(f"{where} must be a number in [0, 1), got {value!r}")
    value = float(value)
    if math.isnan(value) or not 0.0 <= value < 1.0:
        raise RatioError(f"{where} is {value}; allowed: 0 <= ratio < 1")
    return value


def check_positive_int(value, name: str) -> int:
    """``value`` as an int >= 1, or a :class:`ParameterError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ParameterError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def kept_count(size: int, ratio: float, min_channels: int = 1, round_to: int = 1) -> int:
    """Channels a group of ``size`` keeps at ``ratio``.

    ``size − round(ratio·size)`` (halves round up), at least ``min_channels``, then rounded up to
    a multiple of ``round_to``; never more than ``size``.
    """
    removed = math.floor(ratio * size + 0.5 + 1e-9)
    kept = max(size - removed, min_channels)
    if round_to > 1:
        kept = math.ceil(kept / round_to) * round_to
    return min(kept, size)


def select_channels(scores: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` highest scores (ties: lower index first), in ascending order."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return np.sort(order[:count]).astype(np.int64)


def make_plan(
    graph: LayerGraph,
    ratios: Mapping[str, float],
    scores: Mapping[str, np.ndarray],
    min_channels: int = 1,
    round_to: int = 1,
) -> dict[str, np.ndarray]:
    """Kept channel indices per group name, for every group named in ``ratios``."""
    plan = {}
    for name, ratio in ratios.items():
        group = graph.group(name)
        count = kept_count(group.size, ratio, min_channels, round_to)
        plan[group.name] = select_channels(scores[group.name], count)
    return plan


def plan_by_index(graph: LayerGraph, plan: Mapping[str, np.ndarray]) -> dict[int, np.ndarray]:
    """The plan keyed by internal group index, as layouts expect it."""
    return {graph.group(name).index: kept for name, kept in plan.items()}

"""From ratios to kept channels: how many channels each group keeps, and which ones."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np

from .errors import ParameterError, RatioError
from .graph import ChannelGroup, LayerGraph


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


def prunable_group(graph: LayerGraph, key, parameter: str) -> ChannelGroup:
    """The prunable group that ``key`` (a group or layer name) names in ``parameter``, or a :class:`RatioError`."""
    if not isinstance(key, str):
        raise RatioError(f"{parameter} keys must be group or layer names, got {key!r}")
    several = graph.output_groups(key)
    if len(several) > 1:
        raise RatioError(
            f"{parameter} names layer '{key}', whose output holds the channels of several groups "
            f"({', '.join(g.name for g in several)}); name one of them"
        )
    try:
        group = graph.group(key)
    except KeyError:
        names = ", ".join(g.name for g in graph.prunable) or "none"
        raise RatioError(
            f"{parameter} names '{key}', which is no group or layer of model '{graph.model.name}'; "
            f"prunable groups: {names}"
        ) from None
    if not group.prunable:
        raise RatioError(f"{parameter} names '{key}' (group '{group.name}'), which cannot be pruned: {group.reason}")
    return group


def ratios_by_group(graph: LayerGraph, values: Mapping, parameter: str, label: str, noun: str) -> dict[str, float]:
    """``{group name: ratio}`` from ``values`` keyed by group or layer names, each checked to lie in [0, 1).

    Two keys naming the same group must agree; otherwise a :class:`RatioError` names both. Errors call one value
    ``"<label> for '<key>'"`` and two of them ``noun`` (e.g. "different ratios", "caps").
    """
    result: dict[str, float] = {}
    source: dict[str, str] = {}
    for key, value in values.items():
        group = prunable_group(graph, key, parameter)
        ratio = check_ratio(value, f"{label} for '{key}'")
        if group.name in result and result[group.name] != ratio:
            raise RatioError(
                f"{parameter} gives group '{group.name}' two {noun}: {result[group.name]} (as "
                f"'{source[group.name]}') and {ratio} (as '{key}')"
            )
        result[group.name] = ratio
        source[group.name] = str(key)
    return result


def group_caps(graph: LayerGraph, max_ratio) -> dict[str, float]:
    """``{group name: highest allowed ratio}`` for the prunable groups ``max_ratio`` caps.

    ``max_ratio`` is None (no cap: an empty dict), one number in [0, 1) for every prunable group,
    or a dict ``{group or layer name: cap}`` (groups left out are not capped).
    """
    if max_ratio is None:
        return {}
    if isinstance(max_ratio, Mapping):
        return ratios_by_group(graph, max_ratio, "max_ratio", "max_ratio", "caps")
    if isinstance(max_ratio, bool) or not isinstance(max_ratio, numbers.Real):
        raise ParameterError(
            f"max_ratio must be None, a number in [0, 1) or a dict {{group or layer name: cap}}, got {max_ratio!r}"
        )
    cap = check_ratio(max_ratio, "max_ratio")
    return {group.name: cap for group in graph.prunable}


def cap_ratios(graph: LayerGraph, ratios: Mapping[str, float], max_ratio) -> dict[str, float]:
    """``ratios`` ({group name: ratio}) with each ratio lowered to its group's cap under ``max_ratio``.

    See :func:`group_caps` for the forms ``max_ratio`` takes; it is validated here.
    """
    caps = group_caps(graph, max_ratio)
    capped = {}
    for name, ratio in ratios.items():
        cap = caps.get(graph.group(name).name)
        capped[name] = ratio if cap is None else min(ratio, cap)
    return capped

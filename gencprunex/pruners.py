"""Fixed and Dynamic pruning modes as scikit-learn style estimators."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .data import resolve_data
from .errors import ModelError, ParameterError, RatioError
from .graph import LayerGraph
from .importance import group_scores, resolve
from .plan import cap_ratios, check_positive_int, check_ratio, make_plan, ratios_by_group
from .surgery import kept_outputs, prune_model


class ChannelPruner(BaseEstimator, ABC):
    """Shared machinery: analyse the model, score channels, plan, and cut.

    Subclasses say which ratio each prunable group gets (``_group_ratios``).

    Fitted attributes: ``graph_`` (:class:`LayerGraph`), ``ratios_`` ({group name: ratio}, after
    ``max_ratio`` caps),
    ``plan_`` ({group name: kept channel indices}), ``keep_`` ({layer name: kept output channel
    indices} for every layer whose output shrinks), ``channels_`` ({group name: (before, after)}).
    """

    @abstractmethod
    def _group_ratios(self, graph: LayerGraph) -> dict[str, float]:
        """The requested ratio of every prunable group, validated."""

    def fit(self, model, data=None):
        """Analyse ``model`` and decide which channels each prunable group keeps.

        ``data`` — ``(x, y)`` arrays, a ``tf.data.Dataset`` or a path to an ``.npz`` file — is only
        used by data-driven importance criteria (a callable ``importance``).
        """
        min_channels = check_positive_int(self.min_channels, "min_channels")
        round_to = check_positive_int(self.round_to, "round_to")
        criterion = resolve(self.importance)
        graph = LayerGraph(model, ignore=_names(self.ignore, "ignore"))
        graph.check_supported()
        ratios = cap_ratios(graph, self._group_ratios(graph), self.max_ratio)
        to_cut = {name: r for name, r in ratios.items() if r > 0}
        scores = group_scores(graph, [graph.group(n) for n in to_cut], criterion, resolve_data(data))
        plan = make_plan(graph, to_cut, scores, min_channels=min_channels, round_to=round_to)
        self.model_ = model
        self.graph_ = graph
        self.ratios_ = ratios
        self.plan_ = plan
        self.keep_ = kept_outputs(graph, plan)
        self.channels_ = {g.name: (g.size, len(plan.get(g.name, range(g.size)))) for g in graph.prunable}
        return self

    def transform(self, model=None):
        """A new, pruned copy of the fitted model (or of ``model``, which must have the same groups)."""
        check_is_fitted(self, "plan_")
        if model is None or model is self.model_:
            return prune_model(self.model_, self.graph_, self.plan_)
        graph = LayerGraph(model, ignore=_names(self.ignore, "ignore"))
        expected = [(g.name, g.size) for g in self.graph_.groups]
        found = [(g.name, g.size) for g in graph.groups]
        if found != expected:
            raise ModelError(
                f"model '{model.name}' does not have the channel groups of the fitted model "
                f"'{self.model_.name}'; fit the pruner on it instead"
            )
        return prune_model(model, graph, self.plan_)

    def fit_transform(self, model, data=None):
        """``fit(model, data)`` then ``transform()``."""
        return self.fit(model, data).transform()


class FixedPruner(ChannelPruner):
    """Fixed mode: one pruning ratio for every prunable channel group.

    Parameters
    ----------
    ratio:
        Fraction of channels removed from each prunable group, in [0, 1).
    importance:
        ``"l1"`` (default), ``"l2"``, ``"bn_scale"``, ``"random"`` or a callable
        ``(group, model, data) -> scores``.
    round_to:
        Keep a multiple of this many channels per group (SIMD-friendly widths).
    min_channels:
        Never keep fewer channels than this in a group.
    ignore:
        Layer names whose output channels stay whole (also the way past an unsupported layer).
        Naming one layer of a residual group (channels joined by ``Add``) keeps the whole group.
    max_ratio:
        Highest ratio any group may get: None (no cap), a number in [0, 1) for every group, or a dict
        ``{group or layer name: cap}``. Ratios above the cap are lowered to it.

    Examples
    --------
    >>> pruned = FixedPruner(ratio=0.5).fit(model).transform()  # doctest: +SKIP
    """

    def __init__(self, ratio=0.5, importance="l1", round_to=1, min_channels=1, ignore=(), max_ratio=None):
        self.ratio = ratio
        self.importance = importance
        self.round_to = round_to
        self.min_channels = min_channels
        self.ignore = ignore
        self.max_ratio = max_ratio

    def _group_ratios(self, graph):
        ratio = check_ratio(self.ratio, "ratio")
        return {g.name: ratio for g in graph.prunable}


class DynamicPruner(ChannelPruner):
    """Dynamic mode: a pruning ratio per channel group.

    Parameters
    ----------
    ratios:
        A list with one ratio per prunable group, in the order of ``LayerGraph(model).prunable``,
        or a dict ``{group name or layer name: ratio}``; groups left out keep all channels.
    importance, round_to, min_channels, ignore, max_ratio:
        As for :class:`FixedPruner`.
    """

    def __init__(self, ratios, importance="l1", round_to=1, min_channels=1, ignore=(), max_ratio=None):
        self.ratios = ratios
        self.importance = importance
        self.round_to = round_to
        self.min_channels = min_channels
        self.ignore = ignore
        self.max_ratio = max_ratio

    def _group_ratios(self, graph):
        names = [g.name for g in graph.prunable]
        result = dict.fromkeys(names, 0.0)
        if isinstance(self.ratios, Mapping):
            result.update(ratios_by_group(graph, self.ratios, "ratios", "ratio", "different ratios"))
            return result
        if isinstance(self.ratios, str) or not isinstance(self.ratios, Sequence | np.ndarray):
            raise RatioError(
                f"ratios must be a list (one per prunable group) or a dict {{group: ratio}}, "
                f"got {type(self.ratios).__name__}"
            )
        values = list(self.ratios)
        if len(values) != len(names):
            raise RatioError(
                f"got {len(values)} ratios but model '{graph.model.name}' has {len(names)} prunable groups; "
                f"expected {len(names)} ratios, in this order: {', '.join(names)}"
            )
        for index, (name, value) in enumerate(zip(names, values, strict=True)):
            result[name] = check_ratio(value, f"ratios[{index}] (group '{name}')")
        return result


def _names(value, parameter: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    try:
        names = tuple(value)
    except TypeError:
        raise ParameterError(f"{parameter} must be a list of layer names, got {value!r}") from None
    if not all(isinstance(n, str) for n in names):
        raise ParameterError(f"{parameter} must be a list of layer names, got {value!r}")
    return names

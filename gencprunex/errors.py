"""Exceptions raised for bad input.

Every message is one line that names the problem: which layer, which value, what is allowed.
All of them derive from :class:`GencPruneXError`, itself a :class:`ValueError`, so callers
can catch the whole family at once.
"""

from __future__ import annotations


class GencPruneXError(ValueError):
    """Base class of every error gencprunex raises for bad input."""


class ModelError(GencPruneXError):
    """The model cannot be analysed (not built, no layers, subclassed, ...)."""


class UnsupportedLayerError(GencPruneXError):
    """A layer we cannot map sits in the channel path of a group that could otherwise be pruned."""


class RatioError(GencPruneXError):
    """A pruning ratio, or a list or dict of them, is invalid."""


class ParameterError(GencPruneXError):
    """An estimator parameter is invalid."""


class DataError(GencPruneXError):
    """Data given to a pruner cannot be read or does not fit the model."""


class InfeasibleBudgetError(GencPruneXError):
    """No pruning the search may choose brings the model within the hardware budgets."""


class CheckpointError(GencPruneXError):
    """A search checkpoint cannot be read, or belongs to a different search."""

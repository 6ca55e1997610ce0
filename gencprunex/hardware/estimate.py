"""``estimate``: RAM, Flash and MACs from the Keras graph alone, no conversion.

The converter's output is predicted once per (graph, I/O types) as a
:class:`~gencprunex.hardware.convert_plan.ConversionTemplate` and cached; each pruning plan then only
resolves channel widths, plans the arena and sums the Flash terms. That is what the genetic search
calls for every candidate.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping

import numpy as np

from ..errors import ParameterError
from ..export import INFERENCE_TYPES
from ..graph import LayerGraph
from ..walk import as_functional
from .convert_plan import ConversionTemplate, conversion_template
from .flash import flash_bytes
from .footprint import footprint_of
from .profile import Footprint

_TEMPLATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def template_for(graph: LayerGraph, input_type: str, output_type: str, strict: bool) -> ConversionTemplate:
    """The cached conversion template of ``graph``."""
    per_graph = _TEMPLATES.setdefault(graph, {})
    key = (input_type, output_type, strict)
    if key not in per_graph:
        per_graph[key] = conversion_template(graph, input_type, output_type, strict)
    return per_graph[key]


def kept_sizes(graph: LayerGraph, plan: Mapping | None) -> dict[int, int]:
    """``{group index: channels kept}`` from a plan of kept indices (or kept counts) by group name."""
    if not plan:
        return {}
    sizes = {}
    for name, kept in plan.items():
        group = graph.group(name)
        count = int(kept) if np.ndim(kept) == 0 else len(kept)
        if not 1 <= count <= group.size:
            raise ParameterError(f"plan keeps {count} channels of group '{group.name}', which has {group.size}")
        sizes[group.index] = count
    return sizes


def estimate(
    model_or_graph,
    plan: Mapping | None = None,
    input_type: str = "int8",
    output_type: str = "int8",
    strict: bool = True,
    layers: bool = True,
) -> Footprint:
    """Predict the footprint of a Keras model, or of ``graph`` pruned by ``plan``, without converting it.

    ``plan`` maps group names to kept channel indices (a pruner's ``plan_``) or kept counts.
    ``strict=False`` skips layers the estimator cannot convert (named in ``details["skipped"]``) instead of
    raising. ``layers=False`` leaves out the per-op rows (faster, for searches).
    """
    for argument, value in (("input_type", input_type), ("output_type", output_type)):
        if value not in INFERENCE_TYPES:
            raise ParameterError(f"{argument} must be one of {', '.join(INFERENCE_TYPES)}, got {value!r}")
    if isinstance(model_or_graph, LayerGraph):
        graph = model_or_graph
    else:
        as_functional(model_or_graph)
        graph = LayerGraph(model_or_graph)
    template = template_for(graph, input_type, output_type, strict)
    op_graph = template.op_graph(kept_sizes(graph, plan))
    footprint = footprint_of(op_graph, flash_bytes(op_graph), "estimate", rows=layers)
    if template.skipped:
        footprint.details["skipped"] = list(template.skipped)
    return footprint

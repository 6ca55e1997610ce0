"""Multiply-accumulates of the operators of an :class:`OpGraph`, counted as :mod:`gencprunex.macs` counts Keras layers.

Only convolutions and fully connected layers count; bias, activations, pooling, element-wise ops and softmax are 0:

- ``CONV_2D``: ``prod(output) · Kh · Kw · Cin_per_group``, the filter being ``(Cout, Kh, Kw, Cin_per_group)``;
- ``DEPTHWISE_CONV_2D``: ``prod(output) · Kh · Kw``, the filter being ``(1, Kh, Kw, Cin · multiplier)``;
- ``FULLY_CONNECTED``: ``prod(output) · in_features``, the weights being ``(units, in_features)``;
- ``TRANSPOSE_CONV``: ``prod(input) · Kh · Kw · Cout`` (every input value is scattered over ``Kh · Kw · Cout``
  outputs), the filter being ``(Cout, Kh, Kw, Cin)`` and the data input the op's third input.
"""

from __future__ import annotations

import math

from .opgraph import Op, OpGraph

#: Op types with a nonzero MAC count.
MAC_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"})


def op_macs(graph: OpGraph, op: Op) -> int:
    """MACs of one execution of ``op`` (batch as in the graph's shapes)."""
    if op.type not in MAC_OPS:
        return 0
    inputs = graph.input_tensors(op)
    if len(inputs) < 2 or inputs[1] is None or not op.outputs:
        return 0
    weights = inputs[1].shape
    out_elements = graph.tensors[op.outputs[0]].elements
    if op.type == "CONV_2D":
        return out_elements * math.prod(weights[1:])
    if op.type == "DEPTHWISE_CONV_2D":
        return out_elements * math.prod(weights[1:3])
    if op.type == "FULLY_CONNECTED":
        return out_elements * weights[-1]
    data = inputs[2] if len(inputs) > 2 else None  # TRANSPOSE_CONV: (output_shape, weights, input[, bias])
    if data is None:
        return 0
    return data.elements * math.prod(weights[:3])


def graph_macs(graph: OpGraph) -> int:
    """Total MACs of one inference of ``graph``."""
    return sum(op_macs(graph, op) for op in graph.ops)

"""Multiply-accumulate counts of a Keras model, per layer, as TensorFlow Lite Micro executes it.

Only convolutions, depthwise convolutions and fully connected layers count; bias, folded
BatchNorm, activations, pooling, element-wise ops and softmax count 0. Batch size is 1.
"""

from __future__ import annotations

import math

import keras

from .graph import LayerGraph

_L = keras.layers


def call_macs(layer, in_shape: tuple, out_shape: tuple) -> int:
    """MACs of one layer call for a single sample, from its input and output shapes."""
    cin = in_shape[-1]
    spatial = math.prod(out_shape[1:-1])
    if isinstance(layer, _L.SeparableConv1D | _L.SeparableConv2D):
        multiplier = layer.depth_multiplier
        taps = math.prod(layer.kernel_size)
        return spatial * cin * multiplier * taps + spatial * cin * multiplier * out_shape[-1]
    if isinstance(layer, _L.DepthwiseConv1D | _L.DepthwiseConv2D):
        return spatial * cin * layer.depth_multiplier * math.prod(layer.kernel_size)
    if isinstance(layer, _L.Conv1D | _L.Conv2D):
        return spatial * out_shape[-1] * math.prod(layer.kernel_size) * (cin // layer.groups)
    if isinstance(layer, _L.Dense):
        return math.prod(out_shape[1:]) * cin
    return 0


def count_macs(model_or_graph) -> dict[str, int]:
    """``{layer name: MACs}`` for every layer call that multiplies, in execution order."""
    graph = model_or_graph if isinstance(model_or_graph, LayerGraph) else LayerGraph(model_or_graph)
    tensors = graph.flat.tensors
    result: dict[str, int] = {}
    for call in graph.nodes:
        if not call.inputs or not call.outputs:
            continue
        macs = call_macs(call.layer, tensors[call.inputs[0]].shape, tensors[call.outputs[0]].shape)
        if macs:
            result[call.name] = result.get(call.name, 0) + macs
    return result


def total_macs(model_or_graph) -> int:
    """Total MACs of one inference."""
    return sum(count_macs(model_or_graph).values())

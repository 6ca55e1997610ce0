"""Channel surgery: build a new, smaller Keras model from a model and a plan of kept channels.

The new model has the same structure (nested sub-models stay nested), the same layer names and
configurations except for channel counts, and weights sliced by the rules in :mod:`gencprunex.rules`.
The input model is only read, never modified.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping

import keras
import numpy as np

from .graph import LayerGraph
from .plan import plan_by_index
from .walk import as_functional, is_graph_model


def prune_model(model, graph: LayerGraph, plan: Mapping[str, np.ndarray]) -> keras.Model:
    """A new model in which every group named in ``plan`` keeps only the channels listed there."""
    surgeon = _Surgeon(graph, plan_by_index(graph, plan))
    new_model = surgeon.rebuild(model)
    surgeon.copy_weights()
    _copy_compile_config(model, new_model)
    return new_model


def kept_outputs(graph: LayerGraph, plan: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{layer name: kept output positions}`` for every layer whose output shrinks under ``plan``."""
    kept = plan_by_index(graph, plan)
    result = {}
    for call in graph.nodes:
        if len(call.outputs) != 1:
            continue
        layout = graph.layout(call.outputs[0])
        rows = layout.kept_rows(kept)
        if len(rows) < layout.width:
            result.setdefault(call.name, rows)
    return result


class _Surgeon:
    def __init__(self, graph: LayerGraph, kept: dict[int, np.ndarray]) -> None:
        self.graph = graph
        self.kept = kept
        self.first_call = {}
        for call in graph.nodes:
            self.first_call.setdefault(id(call.layer), call)
        self.new_ops: dict[int, object] = {}
        self.old_layers: dict[int, object] = {}
        self._rows: dict[int, np.ndarray] = {}

    def rows(self, key: int) -> np.ndarray:
        if key not in self._rows:
            self._rows[key] = self.graph.kept_rows(key, self.kept)
        return self._rows[key]

    def shrinks(self, key: int | None) -> bool:
        return key is not None and len(self.rows(key)) < self.graph.layout(key).width

    def kept_io(self, call) -> tuple[np.ndarray | None, np.ndarray | None] | None:
        """Kept rows of the call's first input and output, or None when neither shrinks."""
        in_key = call.inputs[0] if call.inputs else None
        out_key = call.outputs[0] if call.outputs else None
        if not (self.shrinks(in_key) or self.shrinks(out_key)):
            return None
        in_rows = self.rows(in_key) if in_key is not None else None
        out_rows = self.rows(out_key) if out_key is not None else None
        return in_rows, out_rows

    # structure ----------------------------------------------------------------------------
    def rebuild(self, model) -> keras.Model:
        functional = as_functional(model)
        keys = self.graph.flat.submodel_inputs[id(model)]
        if isinstance(model, keras.Sequential):
            (tensor,), (key,) = functional.inputs, keys
            input_layer = keras.layers.InputLayer(
                batch_shape=self._new_shape(tensor, key), dtype=tensor.dtype, name=_input_name(tensor)
            )
            layers = [self.new_op(layer) for layer in model.layers]
            new = keras.Sequential([input_layer, *layers], name=model.name)
        else:
            inputs = [
                keras.Input(batch_shape=self._new_shape(t, k), dtype=t.dtype, name=_input_name(t))
                for t, k in zip(functional.inputs, keys, strict=True)
            ]
            outputs = functional._run_through_graph(inputs, operation_fn=self.new_op)
            structure = keras.tree.pack_sequence_as(functional._inputs_struct, inputs)
            new = keras.Model(inputs=structure, outputs=outputs, name=model.name)
        new.trainable = model.trainable
        return new

    def _new_shape(self, tensor, key: int) -> tuple:
        shape = list(tensor.shape)
        shape[-1] = len(self.rows(key))
        return tuple(shape)

    def new_op(self, op):
        """The replacement of ``op`` (a layer, a nested model or a Keras operation), made once."""
        if id(op) in self.new_ops:
            return self.new_ops[id(op)]
        if is_graph_model(op):
            new = self.rebuild(op)
        elif isinstance(op, keras.layers.Layer):
            new = self._new_layer(op)
            self.old_layers[id(op)] = op
        else:
            new = op  # a stateless Keras operation; its channels are never pruned
        self.new_ops[id(op)] = new
        return new

    def _new_layer(self, layer) -> keras.layers.Layer:
        call = self.first_call[id(layer)]
        config = layer.get_config()
        kept = self.kept_io(call)
        if kept is not None:
            in_rows, out_rows = kept
            in_width = len(in_rows) if in_rows is not None else 0
            out_width = len(out_rows) if out_rows is not None else 0
            config = call.rule.new_config(layer, config, in_width, out_width)
        from_config = type(layer).from_config
        if "safe_mode" in inspect.signature(from_config).parameters:
            # Lambda layers: the function comes from the user's own in-memory model, not a file.
            return from_config(config, safe_mode=False)
        return from_config(config)

    # weights ------------------------------------------------------------------------------
    def copy_weights(self) -> None:
        for layer_id, old in self.old_layers.items():
            if not old.weights:
                continue
            new = self.new_ops[layer_id]
            call = self.first_call[layer_id]
            kept = self.kept_io(call)
            slices = call.rule.weight_slices(old, *kept) if kept is not None else {}
            values = []
            for weight in old.weights:
                value = weight.numpy()
                for axis, rows in slices.get(weight.name, []):
                    value = np.take(value, rows, axis=axis)
                values.append(value)
            new.set_weights(values)


def _input_name(tensor) -> str:
    return tensor._keras_history.operation.name


def _copy_compile_config(model, new_model) -> None:
    """Compile the pruned model like the original (optimizer type, loss, metrics), when it was compiled."""
    config = model.get_compile_config() if getattr(model, "compiled", False) else None
    if not config:
        return
    try:
        new_model.compile_from_config(config)
    except Exception as error:
        warnings.warn(
            f"the pruned model is not compiled: its compile config could not be reused ({error})", stacklevel=3
        )

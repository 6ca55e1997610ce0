"""Flatten a built Keras 3 model into a topologically ordered list of layer calls.

Nested Functional and Sequential sub-models (``keras.applications`` backbones, a ``Sequential``
head) are inlined: their inputs are identified with the tensors the outer model feeds them.
This is the only module that reads Keras' graph internals (``_nodes_by_depth``, ``Node``), so a
Keras upgrade that moves them has one place to mend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras

from .errors import ModelError


@dataclass(eq=False)
class LayerCall:
    """One call of a layer (or Keras operation) in the flattened graph.

    ``rule`` (set by :class:`~gencprunex.graph.LayerGraph`) is the channel rule of the layer.
    """

    layer: object
    scope: tuple[str, ...]
    inputs: list[int]
    outputs: list[int]
    name: str = ""
    rule: object = None

    @property
    def class_name(self) -> str:
        return type(self.layer).__name__


@dataclass
class TensorInfo:
    """Static shape (batch dimension included) and dtype of one tensor of the flattened graph."""

    shape: tuple
    dtype: str


@dataclass
class FlatModel:
    """A model's layer calls in execution order, with the tensors that connect them."""

    calls: list[LayerCall]
    tensors: dict[int, TensorInfo]
    inputs: list[int]
    input_names: list[str]
    outputs: list[int]
    submodel_inputs: dict[int, list[int]] = field(default_factory=dict)


def as_functional(model: object, what: str = "model"):
    """The Functional graph behind ``model``, or a :class:`ModelError` saying why there is none."""
    if not isinstance(model, keras.Model):
        raise ModelError(f"{what} must be a keras.Model, got {type(model).__name__}")
    if isinstance(model, keras.Sequential):
        if not model.layers:
            raise ModelError(f"{what} '{model.name}' has no layers")
        functional = getattr(model, "_functional", None)
        if functional is None:
            raise ModelError(
                f"{what} '{model.name}' is not built: give it an Input shape "
                "(keras.Input(shape=...)) or call model.build(input_shape) first"
            )
        return functional
    if hasattr(model, "_nodes_by_depth") and hasattr(model, "_run_through_graph"):
        if not [op for op in model.operations if not _is_input_layer(op)]:
            raise ModelError(f"{what} '{model.name}' has no layers")
        return model
    raise ModelError(
        f"{what} '{model.name}' ({type(model).__name__}) is a subclassed model whose graph cannot be "
        "read; build it with the Functional or Sequential API"
    )


def is_graph_model(obj: object) -> bool:
    """True for a Functional or Sequential model, which the walker inlines."""
    if isinstance(obj, keras.Sequential):
        return True
    return isinstance(obj, keras.Model) and hasattr(obj, "_nodes_by_depth")


def _is_input_layer(op: object) -> bool:
    return isinstance(op, keras.layers.InputLayer)


def ordered_nodes(functional) -> list:
    """The non-input nodes of a Functional graph, in an order where producers come first."""
    nodes = []
    for depth in sorted(functional._nodes_by_depth, reverse=True):
        for node in functional._nodes_by_depth[depth]:
            if node.operation is None or node.is_input or _is_input_layer(node.operation):
                continue
            nodes.append(node)
    return nodes


class _Walker:
    def __init__(self) -> None:
        self.calls: list[LayerCall] = []
        self.tensors: dict[int, TensorInfo] = {}
        self.submodel_inputs: dict[int, list[int]] = {}
        self._key_of: dict[int, int] = {}
        self._keep_alive: list[object] = []

    def new_key(self, tensor) -> int:
        key = len(self.tensors)
        self._key_of[id(tensor)] = key
        self._keep_alive.append(tensor)
        self.tensors[key] = TensorInfo(tuple(tensor.shape), str(tensor.dtype))
        return key

    def alias(self, tensor, key: int) -> None:
        self._key_of[id(tensor)] = key
        self._keep_alive.append(tensor)

    def key(self, tensor) -> int:
        try:
            return self._key_of[id(tensor)]
        except KeyError:  # pragma: no cover - Keras guarantees producers come first
            raise ModelError(f"tensor {tensor} is used before it is computed") from None

    def walk(self, functional, scope: tuple[str, ...]) -> None:
        for node in ordered_nodes(functional):
            op = node.operation
            in_keys = [self.key(t) for t in node.input_tensors]
            if is_graph_model(op):
                inner = as_functional(op, what="nested model")
                if len(inner.inputs) != len(in_keys):
                    raise ModelError(
                        f"nested model '{op.name}' is called with {len(in_keys)} tensors "
                        f"but has {len(inner.inputs)} inputs"
                    )
                self.submodel_inputs.setdefault(id(op), in_keys)
                for tensor, key in zip(inner.inputs, in_keys, strict=True):
                    self.alias(tensor, key)
                self.walk(inner, (*scope, op.name))
                for outer, inner_out in zip(node.outputs, inner.outputs, strict=True):
                    self.alias(outer, self.key(inner_out))
            else:
                out_keys = [self.new_key(t) for t in node.outputs]
                self.calls.append(LayerCall(op, scope, in_keys, out_keys))


def flatten_model(model: object) -> FlatModel:
    """Walk ``model`` (nested sub-models inlined) into a :class:`FlatModel`."""
    functional = as_functional(model)
    walker = _Walker()
    inputs = [walker.new_key(t) for t in functional.inputs]
    input_names = [t._keras_history.operation.name for t in functional.inputs]
    walker.submodel_inputs[id(model)] = inputs
    walker.walk(functional, ())
    outputs = [walker.key(t) for t in functional.outputs]
    _assign_names(walker.calls)
    return FlatModel(walker.calls, walker.tensors, inputs, input_names, outputs, walker.submodel_inputs)


def _assign_names(calls: list[LayerCall]) -> None:
    """Give every call its layer's name, qualified by its sub-model path where names collide."""
    owners: dict[str, set[int]] = {}
    for call in calls:
        owners.setdefault(call.layer.name, set()).add(id(call.layer))
    clashing = {name for name, ids in owners.items() if len(ids) > 1}
    for call in calls:
        name = call.layer.name
        call.name = "/".join((*call.scope, name)) if name in clashing else name
    seen: dict[str, int] = {}
    for call in calls:
        if seen.setdefault(call.name, id(call.layer)) != id(call.layer):
            raise ModelError(f"two different layers are both named '{call.name}'")


def run_graph(model, inputs, operation_fn):
    """Execute ``model``'s graph on ``inputs``, calling ``operation_fn(op)(*args, **kwargs)`` for every operation.

    Nested Functional/Sequential sub-models are entered, so ``operation_fn`` sees the same layer objects
    as :func:`flatten_model` lists. ``inputs`` is a tensor or a list of tensors, one per model input.
    """
    functional = as_functional(model)

    def enter(op):
        if not is_graph_model(op):
            return operation_fn(op)

        def call(*args, **kwargs):
            return run_graph(op, args[0], operation_fn)

        return call

    outputs = functional._run_through_graph(inputs, operation_fn=enter)
    return outputs[0] if isinstance(outputs, list | tuple) and len(outputs) == 1 else outputs

"""Test helpers: random weights, and the reference a pruned model must match."""

from __future__ import annotations

import keras
import numpy as np

from gencprunex.graph import LayerGraph
from gencprunex.plan import plan_by_index
from gencprunex.pruners import DynamicPruner, FixedPruner
from gencprunex.rules import expand_rows
from gencprunex.zoo import with_trained_statistics


def randomize(model: keras.Model, seed: int = 0) -> keras.Model:
    """Give every bias, BatchNorm parameter/statistic and PReLU alpha random non-trivial values (in place)."""
    return with_trained_statistics(model, seed)


def assert_ratio_zero_is_identity(model: keras.Model) -> None:
    """Ratio 0 keeps every layer name and weight, and the function."""
    pruned = FixedPruner(ratio=0.0).fit_transform(model)
    assert [layer.name for layer in pruned.layers] == [layer.name for layer in model.layers]
    for old, new in zip(model.weights, pruned.weights, strict=True):
        np.testing.assert_array_equal(old.numpy(), new.numpy())
    x = random_input(model)
    np.testing.assert_allclose(pruned(x), model(x), rtol=0, atol=1e-6)


def assert_input_model_untouched(model: keras.Model) -> None:
    """Pruning leaves the input model's weights and configs as they were, and shares no variable with it."""
    before = [w.numpy().copy() for w in model.weights]
    configs = [layer.get_config() for layer in model.layers]
    pruned = DynamicPruner({g.name: 0.6 for g in LayerGraph(model).prunable}).fit_transform(model)
    pruned.weights[0].assign(np.zeros(pruned.weights[0].shape))  # the copy shares no variable
    for old, new in zip(before, model.weights, strict=True):
        np.testing.assert_array_equal(old, new.numpy())
    assert [layer.get_config() for layer in model.layers] == configs


def _all_layers(model):
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)]


def find_layer(model: keras.Model, name: str):
    short = name.split("/")[-1]
    for layer in _all_layers(model):
        if layer.name == short:
            return layer
    raise KeyError(name)


def masked_reference(model: keras.Model, graph: LayerGraph, plan: dict) -> keras.Model:
    """A copy of ``model`` whose consumers ignore the dropped channels (their input rows zeroed).

    Between a producer and its consumers channels only pass through per-channel layers, merges
    (channel i of the output from channel i of each input) and concatenations (rows found through
    the tensor's layout), so a dropped channel reaches nothing but zeroed rows: this copy computes
    exactly what the pruned model computes.
    """
    reference = keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    kept = plan_by_index(graph, plan)
    for call in graph.nodes:
        if call.rule.kind != "producer":
            continue
        layout = graph.layout(call.inputs[0])
        rows = layout.kept_rows(kept)
        if len(rows) == layout.width:
            continue
        dropped = np.setdiff1d(np.arange(layout.width), rows)
        layer = find_layer(reference, call.name)
        if isinstance(layer, (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)):
            name, dropped = "pointwise_kernel", expand_rows(dropped, layer.depth_multiplier)
        else:
            name = "kernel"
        weight = next(w for w in layer.weights if w.name == name)
        value = weight.numpy()
        index = [slice(None)] * value.ndim
        index[-2] = dropped
        value[tuple(index)] = 0.0
        weight.assign(value)
    return reference


def random_input(model: keras.Model, batch: int = 4, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (batch, *tuple(model.inputs[0].shape[1:]))
    return rng.normal(0.0, 1.0, shape).astype("float32")


def max_abs_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def tiny_cnn(input_shape=(16, 16, 1), num_classes: int = 4, name: str = "tiny_cnn") -> keras.Model:
    """A conv → BN → pool → conv → BN → pool → dense classifier small enough to train and search in seconds."""
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(shape=input_shape, name="image"),
            layers.Conv2D(12, 3, padding="same", use_bias=False, name="conv1"),
            layers.BatchNormalization(momentum=0.8, name="bn1"),
            layers.ReLU(name="relu1"),
            layers.MaxPooling2D(name="pool1"),
            layers.Conv2D(16, 3, padding="same", name="conv2"),
            layers.BatchNormalization(momentum=0.8, name="bn2"),
            layers.ReLU(name="relu2"),
            layers.MaxPooling2D(name="pool2"),
            layers.Flatten(name="flatten"),
            layers.Dense(16, activation="relu", name="fc"),
            layers.Dense(num_classes, activation="softmax", name="classes"),
        ],
        name=name,
    )


def model_state(model: keras.Model) -> tuple[list[np.ndarray], list[dict]]:
    """Copies of every weight (BatchNorm moving statistics included) and every layer config of ``model``."""
    return [w.numpy().copy() for w in model.weights], [layer.get_config() for layer in model.layers]


def assert_model_state(model: keras.Model, state: tuple[list[np.ndarray], list[dict]]) -> None:
    """``model`` still has the weights and layer configs recorded by :func:`model_state`."""
    weights, configs = state
    assert len(weights) == len(model.weights)
    for old, new in zip(weights, model.weights, strict=True):
        np.testing.assert_array_equal(old, new.numpy(), err_msg=new.path)
    assert [layer.get_config() for layer in model.layers] == configs

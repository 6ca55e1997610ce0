"""LayerGraph: layer calls in topological order, channel groups, and why a group is not prunable."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from gencprunex import FixedPruner, LayerGraph, ModelError, UnsupportedLayerError

from .helpers import masked_reference, max_abs_diff, random_input, randomize

L = keras.layers


def test_seed_mobilenet_groups(mobilenet):
    graph = LayerGraph(mobilenet)
    names = [g.name for g in graph.prunable]
    assert names == ["conv1"] + [f"conv_pw_{i}" for i in range(1, 14)] + ["fc_64", "fc_32"]
    group = graph.group("conv_pw_3")
    assert group.size == 32
    assert group.producers == ["conv_pw_3"]
    assert group.consumers == ["conv_pw_4"]
    assert "conv_dw_4" in group.layers and "conv_pw_3_bn" in group.layers
    output = graph.group("classes")
    assert not output.prunable and "model output" in output.reason
    assert graph.group("image").reason == "model input"


def test_nodes_are_in_topological_order(mobilenet):
    graph = LayerGraph(mobilenet)
    computed = set(graph.flat.inputs)
    for node in graph.nodes:
        assert all(key in computed for key in node.inputs), node.name
        computed.update(node.outputs)
    assert len(graph.nodes) == len(mobilenet.layers) - 1  # every layer but the InputLayer


def test_group_lookup_by_layer_name(mobilenet):
    graph = LayerGraph(mobilenet)
    assert graph.group("conv_pw_2_relu").name == "conv_pw_2"
    assert graph.group("conv_dw_3").name == "conv_pw_2"  # the depthwise conv carries its input group
    with pytest.raises(KeyError, match="conv_pw_22"):
        graph.group("conv_pw_22")


def test_summary_lists_groups_sizes_and_reasons(mobilenet):
    text = LayerGraph(mobilenet).summary()
    assert "16 prunable" in text
    line = next(row for row in text.splitlines() if row.startswith("conv_pw_12 "))
    assert "256" in line and "yes" in line
    assert "model output" in text


def _two_branch_model(merge):
    inputs = keras.Input((8, 8, 3))
    trunk = L.Conv2D(8, 3, padding="same", name="trunk")(inputs)
    left = L.Conv2D(8, 1, name="left")(trunk)
    right = L.Conv2D(8, 1, name="right")(trunk)
    joined = merge(name="join")([left, right])
    x = L.Conv2D(6, 1, name="after")(joined)
    x = L.GlobalAveragePooling2D()(x)
    return randomize(keras.Model(inputs, L.Dense(2, name="out")(x)))


@pytest.mark.parametrize("merge", [L.Add, L.Multiply, L.Subtract, L.Maximum, L.Minimum, L.Average, L.Concatenate])
def test_merges_are_pruned_across(merge):
    model = _two_branch_model(merge)
    graph = LayerGraph(model)
    if merge is L.Concatenate:  # each input keeps its own group; the consumer reads them with offsets
        assert [g.name for g in graph.prunable] == ["trunk", "left", "right", "after"]
        assert graph.group("left").consumers == graph.group("right").consumers == ["after"]
    else:
        assert [g.name for g in graph.prunable] == ["trunk", "left", "after"]
        assert graph.group("right") is graph.group("left")  # one group across the merge
        assert graph.group("left").producers == ["left", "right"]
        assert graph.group("join").name == "left"
    pruner = FixedPruner(0.5).fit(model)
    pruned = pruner.transform()
    x = random_input(model)
    assert max_abs_diff(pruned(x), masked_reference(model, pruner.graph_, pruner.plan_)(x)) <= 1e-5
    assert pruned.get_layer("left").filters == pruned.get_layer("right").filters == 4
    assert pruned.get_layer("after").filters == 3
    assert pruned.get_layer("after").get_weights()[0].shape[-2] == (8 if merge is L.Concatenate else 4)


def test_broadcast_multiply_joins_gate_and_features():
    """A squeeze-and-excitation gate: (1, 1, C) times (H, W, C)."""
    inputs = keras.Input((8, 8, 3))
    features = L.Conv2D(8, 3, padding="same", name="features")(inputs)
    gate = L.GlobalAveragePooling2D(keepdims=True)(features)
    gate = L.Conv2D(8, 1, activation="sigmoid", name="gate")(gate)
    x = L.Multiply(name="excite")([features, gate])
    x = L.Conv2D(4, 1, name="after")(x)
    model = keras.Model(inputs, L.GlobalAveragePooling2D()(x))
    graph = LayerGraph(model)
    assert graph.group("gate") is graph.group("features")
    assert graph.group("features").producers == ["features", "gate"]
    assert graph.group("features").consumers == ["gate", "after"]
    assert [g.name for g in graph.prunable] == ["features"]  # 'after' reaches the output


def test_single_channel_map_broadcasts_across_channels():
    """A spatial attention map: (H, W, 1) times (H, W, C) keeps the C channels' group."""
    inputs = keras.Input((8, 8, 3))
    features = L.Conv2D(8, 3, padding="same", name="features")(inputs)
    attention = L.Conv2D(1, 1, activation="sigmoid", name="attention")(features)
    x = L.Multiply(name="attend")([attention, features])
    x = L.Conv2D(4, 1, name="after")(x)
    model = randomize(keras.Model(inputs, L.Dense(2)(L.GlobalAveragePooling2D()(x))))
    graph = LayerGraph(model)
    assert [g.name for g in graph.prunable] == ["features", "after"]
    assert graph.group("attend") is graph.group("features")
    pruner = FixedPruner(0.5).fit(model)
    x = random_input(model)
    assert max_abs_diff(pruner.transform()(x), masked_reference(model, pruner.graph_, pruner.plan_)(x)) <= 1e-5


def test_merge_of_differently_grouped_inputs_is_frozen():
    inputs = keras.Input((8, 8, 3))
    a = L.Conv2D(4, 1, name="a")(inputs)
    b = L.Conv2D(4, 1, name="b")(inputs)
    wide = L.Conv2D(8, 1, name="wide")(inputs)
    x = L.Add(name="join")([L.Concatenate(name="cat")([a, b]), wide])
    model = keras.Model(inputs, L.Dense(2)(L.GlobalAveragePooling2D()(L.Conv2D(4, 1, name="after")(x))))
    graph = LayerGraph(model)
    assert [g.name for g in graph.prunable] == ["after"]
    assert "joined by Add 'join', whose inputs group their channels differently" in graph.group("wide").reason
    assert "joined by Add 'join'" in graph.group("a").reason


def test_merge_with_a_frozen_path_freezes_the_group():
    inputs = keras.Input((8, 8, 4), name="image")
    x = L.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = L.Add(name="skip")([inputs, x])
    model = keras.Model(inputs, L.Dense(2)(L.GlobalAveragePooling2D()(L.Conv2D(4, 1, name="after")(x))))
    group = LayerGraph(model).group("conv")
    assert group.name == "image" and group.producers == ["conv"]
    assert group.reason == "joined by Add 'skip' to 'image', which is not prunable: model input"


def test_residual_group_reaching_an_output_is_frozen():
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, padding="same", name="a")(inputs)
    y = L.Conv2D(4, 3, padding="same", name="b")(x)
    model = keras.Model(inputs, L.Add(name="out")([x, y]))
    graph = LayerGraph(model)
    assert graph.prunable == []
    assert graph.group("b").reason == "reaches a model output 'out'"


def test_unsupported_layer_blocks_and_explains():
    inputs = keras.Input((16, 4))
    x = L.Conv1D(8, 3, name="conv")(inputs)
    x = L.LSTM(6, return_sequences=True, name="lstm")(x)
    x = L.Conv1D(8, 3, name="conv2")(x)
    x = L.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, L.Dense(2, name="out")(x))
    graph = LayerGraph(model)
    assert not graph.group("conv").prunable
    assert "unsupported layer 'lstm' (LSTM)" in graph.group("conv").reason
    with pytest.raises(UnsupportedLayerError, match=r"'lstm' \(LSTM\).*ignore=\['lstm'\].*file an issue"):
        FixedPruner(0.5).fit(model)
    pruner = FixedPruner(0.5, ignore=["lstm"]).fit(model)
    assert list(pruner.ratios_) == ["conv2"]
    pruned = pruner.transform()
    assert pruned.get_layer("conv2").filters == 4 and pruned.get_layer("conv").filters == 8


def test_ignore_keeps_a_layers_outputs_whole(mobilenet):
    pruner = FixedPruner(0.5, ignore=("conv_pw_3", "fc_32")).fit(mobilenet)
    assert "conv_pw_3" not in pruner.ratios_ and "fc_32" not in pruner.ratios_
    assert "ignore=" in pruner.graph_.group("conv_pw_3").reason
    with pytest.raises(ModelError, match=r"conv_pw_33.*did you mean conv_pw_3"):
        LayerGraph(mobilenet, ignore=["conv_pw_33"])


def test_softmax_in_the_middle_freezes_its_input():
    model = keras.Sequential(
        [keras.Input((10,)), L.Dense(8, name="a"), L.Softmax(name="norm"), L.Dense(8, name="b"), L.Dense(2)]
    )
    graph = LayerGraph(model)
    assert not graph.group("a").prunable and "normalised across channels" in graph.group("a").reason
    assert [g.name for g in graph.prunable] == ["b"]


def test_shared_layer_is_never_pruned():
    shared = L.Dense(8, name="shared")
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    x = L.Concatenate()([shared(a), shared(b)])
    model = keras.Model([a, b], L.Dense(2)(L.Dense(6, name="hidden")(x)))
    graph = LayerGraph(model)
    assert "shared (called 2 times)" in graph.group("shared").reason
    assert [g.name for g in graph.prunable] == ["hidden"]


def test_depthwise_multiplier_expands_channels():
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 1, name="pw")(inputs)
    x = L.DepthwiseConv2D(3, depth_multiplier=3, padding="same", name="dw")(x)
    x = L.Conv2D(5, 1, name="proj")(x)
    model = randomize(keras.Model(inputs, L.GlobalAveragePooling2D()(L.Conv2D(2, 1)(x))))
    pruner = FixedPruner(0.5, importance=lambda g, m, d: np.arange(g.size, dtype=float)).fit(model)
    np.testing.assert_array_equal(pruner.keep_["dw"], [6, 7, 8, 9, 10, 11])  # channels 2, 3 → rows c·3 + j
    pruned = pruner.transform()
    x = random_input(model)
    assert max_abs_diff(pruned(x), masked_reference(model, pruner.graph_, pruner.plan_)(x)) <= 1e-5


def test_channels_first_layer_is_unsupported():
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 1, name="conv")(inputs)
    x = L.MaxPooling2D(data_format="channels_first", name="cf_pool")(x)
    model = keras.Model(inputs, L.Dense(2)(L.Flatten()(x)))
    assert "channels_first" in LayerGraph(model).group("conv").reason


def test_separable_and_prelu_shared_axes():
    inputs = keras.Input((12, 12, 3))
    x = L.SeparableConv2D(8, 3, depth_multiplier=2, name="sep")(inputs)
    x = L.PReLU(shared_axes=[1, 2], name="prelu")(x)
    x = L.SeparableConv2D(6, 3, name="sep2")(x)
    x = L.PReLU(shared_axes=[1, 2, 3], name="prelu_one")(x)
    x = L.ZeroPadding2D(1)(x)
    x = L.AveragePooling2D(2)(x)
    x = L.Flatten()(x)
    model = randomize(keras.Model(inputs, L.Dense(3)(x)))
    pruner = FixedPruner(0.5).fit(model)
    pruned = pruner.transform()
    assert pruned.get_layer("prelu").get_weights()[0].shape == (1, 1, 4)
    assert pruned.get_layer("prelu_one").get_weights()[0].shape == (1, 1, 1)
    x = random_input(model)
    assert max_abs_diff(pruned(x), masked_reference(model, pruner.graph_, pruner.plan_)(x)) <= 1e-5

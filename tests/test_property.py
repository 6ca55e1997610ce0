"""Property: for any chain or merge graph and any ratios, the pruned model equals the masked original."""

from __future__ import annotations

import keras
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gencprunex import DynamicPruner, LayerGraph

from .helpers import masked_reference, max_abs_diff, random_input, randomize

L = keras.layers


@st.composite
def chain_specs(draw):
    """A chain model as (layer class, args, kwargs) triples; built in the test, outside the strategy."""
    rank = draw(st.sampled_from([0, 1, 2]))  # 0: dense only; 1: Conv1D family; 2: Conv2D family
    if rank == 0:
        layers = [(keras.Input, ((draw(st.integers(3, 12)),),), {})]
        spatial = 0
    else:
        spatial = 8
        layers = [(keras.Input, ((8,) * rank + (draw(st.integers(1, 4)),),), {})]
    conv, depthwise, separable = {
        1: (L.Conv1D, L.DepthwiseConv1D, L.SeparableConv1D),
        2: (L.Conv2D, L.DepthwiseConv2D, L.SeparableConv2D),
    }.get(rank, (None, None, None))
    pool, pad, gap = {
        1: (L.MaxPooling1D, L.ZeroPadding1D, L.GlobalAveragePooling1D),
        2: (L.AveragePooling2D, L.ZeroPadding2D, L.GlobalMaxPooling2D),
    }.get(rank, (None, None, None))
    width = st.integers(2, 10)
    for _ in range(draw(st.integers(1, 6))):
        kinds = ["dense_block"] if rank == 0 else ["conv", "depthwise", "separable", "pad"]
        kinds += ["bn", "relu", "relu6", "leaky", "prelu", "dropout", "activation"]
        if rank and spatial >= 4:
            kinds.append("pool")
        kind = draw(st.sampled_from(kinds))
        if kind == "dense_block":
            layers.append(spec(L.Dense, draw(width), activation=draw(st.sampled_from(["relu", "tanh", None]))))
        elif kind == "conv":
            layers.append(spec(conv, draw(width), draw(st.sampled_from([1, 3])), padding="same"))
        elif kind == "depthwise":
            layers.append(spec(depthwise, 3, depth_multiplier=draw(st.sampled_from([1, 2])), padding="same"))
        elif kind == "separable":
            layers.append(
                spec(separable, draw(width), 3, depth_multiplier=draw(st.sampled_from([1, 2])), padding="same")
            )
        elif kind == "pad":
            layers.append(spec(pad, 1))
            spatial += 2
        elif kind == "pool":
            layers.append(spec(pool, 2))
            spatial //= 2
        elif kind == "bn":
            layers.append(spec(L.BatchNormalization))
        elif kind == "relu":
            layers.append(spec(L.ReLU))
        elif kind == "relu6":
            layers.append(spec(L.ReLU, max_value=6.0))
        elif kind == "leaky":
            layers.append(spec(L.LeakyReLU, negative_slope=0.2))
        elif kind == "prelu":
            layers.append(spec(L.PReLU, shared_axes=list(range(1, rank + 1)) if draw(st.booleans()) else None))
        elif kind == "dropout":
            layers.append(spec(L.Dropout, 0.3))
        else:
            layers.append(spec(L.Activation, draw(st.sampled_from(["sigmoid", "swish", "elu"]))))
    if rank:
        layers.append(spec(L.Flatten) if draw(st.booleans()) else spec(gap))
    layers.append(spec(L.Dense, draw(width), activation="relu"))
    layers.append(spec(L.Dense, 3))
    return layers, draw(st.integers(0, 1000))


def spec(cls, *args, **kwargs):
    return (cls, args, kwargs)


def build(specs):
    layers, seed = specs
    return randomize(keras.Sequential([cls(*args, **kwargs) for cls, args, kwargs in layers]), seed=seed)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=chain_specs(), data=st.data())
def test_any_chain_prunes_to_the_masked_original(specs, data):
    model = build(specs)
    groups = LayerGraph(model).prunable
    ratios = data.draw(
        st.lists(st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.7, 0.9]), min_size=len(groups), max_size=len(groups))
    )
    round_to = data.draw(st.sampled_from([1, 1, 2, 4]))
    pruner = DynamicPruner(ratios, round_to=round_to).fit(model)
    pruned = pruner.transform()
    x = random_input(model, batch=2)
    reference = masked_reference(model, pruner.graph_, pruner.plan_)
    assert max_abs_diff(pruned(x), reference(x)) <= 1e-5
    for name, (before, after) in pruner.channels_.items():
        assert 1 <= after <= before
        assert after % round_to == 0 or after == before, name


BLOCKS = ["conv", "residual", "projection", "concat", "concat_self", "se", "depthwise", "spatial"]
MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]


@st.composite
def graph_specs(draw):
    """A small 2-D CNN of residual, concatenation, squeeze-and-excitation and plain blocks, as plain data."""
    blocks = [
        (draw(st.sampled_from(BLOCKS)), draw(st.integers(2, 8)), draw(st.sampled_from(MERGES)), draw(st.booleans()))
        for _ in range(draw(st.integers(1, 4)))
    ]
    return draw(st.integers(2, 6)), blocks, draw(st.sampled_from(["gap", "flatten"])), draw(st.integers(0, 1000))


def _block(x, kind: str, width: int, merge: str, flag: bool):
    channels = int(x.shape[-1])
    if kind == "conv":
        x = L.Conv2D(width, 3 if flag else 1, padding="same", activation="relu")(x)
        return L.BatchNormalization()(x) if flag else x
    if kind in ("residual", "projection"):
        out = channels if kind == "residual" else width
        y = L.ReLU()(L.BatchNormalization()(L.Conv2D(out, 3, padding="same")(x)))
        y = L.Conv2D(out, 1)(y)
        shortcut = x if kind == "residual" else L.Conv2D(out, 1)(x)
        return getattr(L, merge)()([shortcut, y] if flag else [y, shortcut])
    if kind == "concat":
        branch = L.Conv2D(width, 1, activation="relu")(x)
        return L.Concatenate()([branch, x] if flag else [x, branch])
    if kind == "concat_self":
        x = L.Concatenate()([x, x])
        return L.BatchNormalization()(x) if flag else x
    if kind == "se":
        gate = L.GlobalAveragePooling2D(keepdims=True)(x)
        gate = L.Conv2D(max(1, channels // 2), 1, activation="relu")(gate)
        gate = L.Conv2D(channels, 1, activation="sigmoid")(gate)
        return L.Multiply()([x, gate])
    if kind == "depthwise":
        return L.DepthwiseConv2D(3, padding="same", depth_multiplier=2 if flag else 1)(x)
    attention = L.Conv2D(1, 1, activation="sigmoid")(x)  # "spatial": a (H, W, 1) map broadcast over channels
    return L.Multiply()([attention, x])


def build_graph(specs):
    stem, blocks, head, seed = specs
    inputs = keras.Input((6, 6, 3))
    x = L.Conv2D(stem, 3, padding="same")(inputs)
    for block in blocks:
        x = _block(x, *block)
    x = L.GlobalAveragePooling2D()(x) if head == "gap" else L.Flatten()(x)
    x = L.Dense(4, activation="relu")(x)
    return randomize(keras.Model(inputs, L.Dense(3)(x)), seed=seed)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=graph_specs(), data=st.data())
def test_any_merge_graph_prunes_to_the_masked_original(specs, data):
    model = build_graph(specs)
    groups = LayerGraph(model).prunable
    ratios = data.draw(st.lists(st.sampled_from([0.0, 0.3, 0.5, 0.7]), min_size=len(groups), max_size=len(groups)))
    round_to = data.draw(st.sampled_from([1, 1, 2]))
    pruner = DynamicPruner(ratios, round_to=round_to).fit(model)
    pruned = pruner.transform()
    x = random_input(model, batch=2)
    reference = masked_reference(model, pruner.graph_, pruner.plan_)
    assert max_abs_diff(pruned(x), reference(x)) <= 1e-5
    for name, kept in pruner.plan_.items():
        for producer in pruner.graph_.group(name).producers if len(kept) < pruner.graph_.group(name).size else ():
            assert list(pruner.keep_[producer]) == list(kept), producer

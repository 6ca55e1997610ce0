"""Per-layer-type channel rules, in one registry.

A rule tells three things about a layer type:

* how channels flow through it (``propagate``): which groups it creates, carries, consumes,
  joins or freezes, and the channel layout of its outputs;
* how its config changes when channels go (``new_config``);
* which axes of which weights are sliced (``weight_slices``).

Rules are looked up by exact class: a subclass may change what ``call`` does, so it is
treated as unsupported until it is registered with :func:`register_rule`.
"""

from __future__ import annotations

import math
from typing import Protocol

import keras
import numpy as np

from .layout import Layout, channel_width

#: Activations that act on each element independently (channel removal commutes with them).
ELEMENTWISE_ACTIVATIONS = frozenset(
    {
        "linear",
        "relu",
        "relu6",
        "sigmoid",
        "hard_sigmoid",
        "tanh",
        "elu",
        "selu",
        "gelu",
        "silu",
        "swish",
        "hard_silu",
        "hard_swish",
        "softplus",
        "softsign",
        "exponential",
        "leaky_relu",
        "mish",
        "celu",
        "log_sigmoid",
        "hard_tanh",
        "hard_shrink",
        "soft_shrink",
        "sparse_plus",
        "sparse_sigmoid",
        "squareplus",
        "tanh_shrink",
        "threshold",
    }
)
#: Activations that normalise across the channel axis: removing a channel changes the others.
COUPLING_ACTIVATIONS = frozenset({"softmax", "log_softmax", "sparsemax", "glu"})

WeightSlices = dict[str, list[tuple[int, np.ndarray]]]


class Builder(Protocol):
    """What a rule may ask of the graph under construction (implemented in ``graph.py``)."""

    def new_group(self, call, output_index: int, size: int) -> int: ...
    def carry(self, call, groups: list[int]) -> None: ...
    def consume(self, call, groups: list[int]) -> None: ...
    def freeze(self, groups: list[int], reason: str) -> None: ...
    def block(self, call, groups: list[int], why: str) -> None: ...
    def union(self, groups: list[int], via: str | None = None) -> int: ...
    def shape(self, key: int) -> tuple: ...


class Rule:
    """Base rule: a layer that leaves channels as they are and has no channel-dependent weights."""

    kind = "per-channel"

    def propagate(self, builder: Builder, call, layouts: list[Layout]) -> list[Layout]:
        layout = layouts[0]
        builder.carry(call, layout.groups)
        return [layout] * len(call.outputs)

    def new_config(self, layer, config: dict, in_width: int, out_width: int) -> dict:
        return config

    def weight_slices(self, layer, in_rows: np.ndarray, out_rows: np.ndarray) -> WeightSlices:
        return {}

    def output_kernel(self, layer) -> np.ndarray | None:
        """The weight whose last axis indexes this layer's output channels (producers only)."""
        return None


class Unsupported(Rule):
    """A layer we cannot map: its input groups are blocked, its outputs start opaque groups."""

    kind = "unsupported"

    def __init__(self, why: str) -> None:
        self.why = why

    def propagate(self, builder, call, layouts):
        groups = [g for layout in layouts for g in layout.groups]
        builder.block(call, groups, self.why)
        outs = []
        for index, key in enumerate(call.outputs):
            size = channel_width(builder.shape(key))
            group = builder.new_group(call, index, size)
            builder.freeze([group], f"produced by unsupported layer '{call.name}' ({call.class_name}): {self.why}")
            outs.append(Layout.single(group, size))
        return outs


class Coupling(Rule):
    """A layer that mixes all channels of its input (softmax, layer norm): its groups stay whole."""

    kind = "coupling"

    def __init__(self, what: str) -> None:
        self.what = what

    def propagate(self, builder, call, layouts):
        outs = super().propagate(builder, call, layouts)
        builder.freeze(layouts[0].groups, f"{self.what} by '{call.name}' ({call.class_name})")
        return outs


class Producer(Rule):
    """Conv1D/2D, Dense, SeparableConv1D/2D: new output channels from all input channels."""

    kind = "producer"

    def __init__(self, size_key: str, kernel: str, depthwise_kernel: str | None = None) -> None:
        self.size_key = size_key
        self.kernel = kernel
        self.depthwise_kernel = depthwise_kernel

    def propagate(self, builder, call, layouts):
        builder.consume(call, layouts[0].groups)
        size = builder.shape(call.outputs[0])[-1]
        group = builder.new_group(call, 0, size)
        activation = _activation_name(call.layer.get_config().get("activation", "linear"))
        if activation in COUPLING_ACTIVATIONS:
            builder.freeze([group], f"normalised across channels by the {activation} activation of '{call.name}'")
        elif activation not in ELEMENTWISE_ACTIVATIONS:
            builder.block(call, [group], f"its activation {activation!r} is not known to act channel by channel")
        return [Layout.single(group, size)]

    def new_config(self, layer, config, in_width, out_width):
        return {**config, self.size_key: int(out_width)}

    def weight_slices(self, layer, in_rows, out_rows):
        slices: WeightSlices = {"bias": [(0, out_rows)]}
        if self.depthwise_kernel is None:
            slices[self.kernel] = [(-2, in_rows), (-1, out_rows)]
        else:
            multiplier = int(layer.depth_multiplier)
            slices[self.depthwise_kernel] = [(-2, in_rows)]
            slices[self.kernel] = [(-2, expand_rows(in_rows, multiplier)), (-1, out_rows)]
        return slices

    def output_kernel(self, layer):
        return np.asarray(_weight(layer, self.kernel))


class Depthwise(Rule):
    """DepthwiseConv1D/2D: each input channel gives ``depth_multiplier`` output channels."""

    def propagate(self, builder, call, layouts):
        builder.carry(call, layouts[0].groups)
        return [layouts[0].expanded(int(call.layer.depth_multiplier))]

    def weight_slices(self, layer, in_rows, out_rows):
        return {"kernel": [(-2, in_rows)], "bias": [(0, out_rows)]}


class BatchNorm(Rule):
    """BatchNormalization on the channel axis: every weight is one value per channel."""

    def propagate(self, builder, call, layouts):
        rank = len(builder.shape(call.inputs[0]))
        if call.layer.axis not in (-1, rank - 1):
            why = f"normalises axis {call.layer.axis}, not the channel axis"
            return Unsupported(why).propagate(builder, call, layouts)
        return super().propagate(builder, call, layouts)

    def weight_slices(self, layer, in_rows, out_rows):
        return {w.name: [(0, in_rows)] for w in layer.weights}


class PReLU(Rule):
    """PReLU: its alpha has one value per channel unless the channel axis is shared."""

    def weight_slices(self, layer, in_rows, out_rows):
        alpha = _weight(layer, "alpha")
        return {"alpha": [(-1, in_rows)]} if alpha.shape[-1] != 1 else {}


class Flatten(Rule):
    """Flatten, channels-last: row = position·C + c."""

    kind = "reshape"

    def propagate(self, builder, call, layouts):
        builder.carry(call, layouts[0].groups)
        spatial = builder.shape(call.inputs[0])[1:-1]
        return [layouts[0].repeated(math.prod(spatial))]


class Reshape(Rule):
    """Reshape that keeps the channel axis last, or merges trailing axes into it."""

    kind = "reshape"

    def propagate(self, builder, call, layouts):
        in_shape = builder.shape(call.inputs[0])[1:]
        out_last = builder.shape(call.outputs[0])[-1]
        times = merged_trailing_positions(in_shape, out_last)
        if times is None:
            return Unsupported(f"target shape {tuple(call.layer.target_shape)} splits the channel axis").propagate(
                builder, call, layouts
            )
        builder.carry(call, layouts[0].groups)
        return [layouts[0].repeated(times)]

    def new_config(self, layer, config, in_width, out_width):
        target = list(config["target_shape"])
        if target[-1] != -1:
            target[-1] = int(out_width)
        return {**config, "target_shape": tuple(target)}


class Merge(Rule):
    """Add, Subtract, Multiply, Average, Maximum, Minimum: all inputs share one channel group.

    Channel ``i`` of the output depends on channel ``i`` of every input only, so the groups at the
    same position of every input are joined: they keep the same channels. An input with a single
    channel broadcast across the others (a spatial attention map) is read whole. Inputs whose
    channels are split into groups differently (a concatenation added to one layer's output) cannot
    be aligned: their groups are kept whole.
    """

    kind = "merge"

    def propagate(self, builder, call, layouts):
        label = f"{call.class_name} '{call.name}'"
        widths = [layout.width for layout in layouts]
        wide = [layout for layout in layouts if layout.width != 1] or layouts
        if 0 in widths or len({layout.width for layout in wide}) > 1:
            why = f"its inputs have {', '.join(map(str, widths))} channels, which cannot be matched"
            return Unsupported(why).propagate(builder, call, layouts)
        narrow = [g for layout in layouts if not any(layout is w for w in wide) for g in layout.groups]
        builder.consume(call, narrow)
        if any(_layout_shape(lo) != _layout_shape(wide[0]) for lo in wide[1:]):
            groups = [g for layout in wide for g in layout.groups]
            builder.carry(call, groups)
            builder.freeze(
                groups, f"joined by {label}, whose inputs group their channels differently (e.g. a concatenation)"
            )
            return [wide[0]]
        for positions in zip(*(_segments(lo) for lo in wide), strict=True):
            builder.union([seg.group for seg in positions], via=label)
        out = wide[0].renamed(builder.find)
        builder.carry(call, out.groups)
        return [out]


class Concatenate(Rule):
    """Concatenate on the channel axis: the output's channels are its inputs' groups, with offsets.

    Each input group keeps its own channels; the consumers' input rows follow the offsets. The same
    group may appear several times (a tensor concatenated with itself). On another axis every
    input has the same channels, so the inputs are joined as by :class:`Merge`.
    """

    kind = "concat"

    def propagate(self, builder, call, layouts):
        rank = len(builder.shape(call.outputs[0]))
        axis = call.layer.axis
        if axis not in (-1, rank - 1):
            return Merge().propagate(builder, call, layouts)
        out = layouts[0]
        for layout in layouts[1:]:
            out = out.concatenated(layout)
        builder.carry(call, out.groups)
        return [out]


def expand_rows(rows: np.ndarray, multiplier: int) -> np.ndarray:
    """Rows of a depthwise output (channel c → rows c·m … c·m+m−1) for kept input rows."""
    rows = np.asarray(rows, dtype=np.int64)
    return (rows[:, None] * multiplier + np.arange(multiplier)).ravel()


def merged_trailing_positions(in_shape: tuple, out_last: int | None) -> int | None:
    """How many trailing positions a reshape folds into the channel axis, or None if it splits it."""
    if out_last is None or any(d is None for d in in_shape):
        return None
    product = 1
    for dim in reversed(in_shape):
        product *= dim
        if product == out_last:
            return product // in_shape[-1]
        if product > out_last:
            return None
    return None


def _segments(layout: Layout):
    return [seg for block in layout.blocks for seg in block.segments]


def _layout_shape(layout: Layout):
    return tuple((b.repeat, tuple((s.size, s.expand) for s in b.segments)) for b in layout.blocks)


def _weight(layer, name: str):
    for w in layer.weights:
        if w.name == name:
            return w.numpy()
    raise KeyError(f"layer '{layer.name}' has no weight named {name!r}")


def _activation_name(activation) -> str:
    if isinstance(activation, str):
        return activation
    if isinstance(activation, dict):
        return str(activation.get("config", activation.get("class_name", "custom")))
    return getattr(activation, "__name__", repr(activation))


_L = keras.layers
_PER_CHANNEL = (
    _L.ReLU,
    _L.LeakyReLU,
    _L.ELU,
    _L.Dropout,
    _L.SpatialDropout1D,
    _L.SpatialDropout2D,
    _L.GaussianNoise,
    _L.GaussianDropout,
    _L.AlphaDropout,
    _L.ActivityRegularization,
    _L.Identity,
    _L.MaxPooling1D,
    _L.MaxPooling2D,
    _L.AveragePooling1D,
    _L.AveragePooling2D,
    _L.GlobalMaxPooling1D,
    _L.GlobalMaxPooling2D,
    _L.GlobalAveragePooling1D,
    _L.GlobalAveragePooling2D,
    _L.ZeroPadding1D,
    _L.ZeroPadding2D,
    _L.Cropping1D,
    _L.Cropping2D,
    _L.UpSampling1D,
    _L.UpSampling2D,
    _L.RandomFlip,
    _L.RandomRotation,
    _L.RandomZoom,
    _L.RandomTranslation,
    _L.RandomContrast,
    _L.RandomBrightness,
    _L.RandomCrop,
)
_REGISTRY: dict[type, Rule] = {cls: Rule() for cls in _PER_CHANNEL}
_REGISTRY.update(
    {
        _L.Conv1D: Producer("filters", "kernel"),
        _L.Conv2D: Producer("filters", "kernel"),
        _L.Dense: Producer("units", "kernel"),
        _L.SeparableConv1D: Producer("filters", "pointwise_kernel", depthwise_kernel="depthwise_kernel"),
        _L.SeparableConv2D: Producer("filters", "pointwise_kernel", depthwise_kernel="depthwise_kernel"),
        _L.DepthwiseConv1D: Depthwise(),
        _L.DepthwiseConv2D: Depthwise(),
        _L.BatchNormalization: BatchNorm(),
        _L.PReLU: PReLU(),
        _L.Flatten: Flatten(),
        _L.Reshape: Reshape(),
        _L.Softmax: Coupling("normalised across channels"),
        _L.LayerNormalization: Coupling("normalised across channels"),
        _L.UnitNormalization: Coupling("normalised across channels"),
        _L.GroupNormalization: Coupling("normalised across channel groups"),
        _L.Add: Merge(),
        _L.Subtract: Merge(),
        _L.Multiply: Merge(),
        _L.Average: Merge(),
        _L.Maximum: Merge(),
        _L.Minimum: Merge(),
        _L.Concatenate: Concatenate(),
    }
)


def register_rule(layer_class: type, rule: Rule) -> None:
    """Teach gencprunex how channels flow through ``layer_class`` (e.g. a custom layer)."""
    _REGISTRY[layer_class] = rule


def rule_for(layer) -> Rule:
    """The rule for this layer instance, taking its configuration into account."""
    if type(layer) is keras.layers.Activation:
        return _activation_rule(layer)
    rule = _REGISTRY.get(type(layer))
    if rule is None:
        if isinstance(layer, keras.layers.Layer):
            return Unsupported("no channel rule for this layer type")
        return Unsupported("a Keras operation used directly in the graph")
    config = layer.get_config()
    if config.get("data_format", "channels_last") != "channels_last":
        return Unsupported(f"data_format={config['data_format']!r}; only channels_last is supported")
    if config.get("groups", 1) != 1:
        return Unsupported(f"grouped convolution (groups={config['groups']})")
    return rule


def _activation_rule(layer) -> Rule:
    name = _activation_name(layer.get_config().get("activation"))
    if name in ELEMENTWISE_ACTIVATIONS:
        return Rule()
    if name in COUPLING_ACTIVATIONS:
        return Coupling(f"normalised across channels ({name})")
    return Unsupported(f"activation {name!r} is not known to act channel by channel")

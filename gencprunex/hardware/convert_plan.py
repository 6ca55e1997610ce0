"""Predict the TFLite operator graph the converter makes of a Keras graph, without converting.

The prediction mirrors what ``tf.lite.TFLiteConverter`` does to a full-integer model (checked against
TensorFlow 2.21 on the reference models):

* Conv/DepthwiseConv/Dense absorb a following BatchNormalization (folded into weights and bias) and a
  following ReLU/ReLU6 (fused activation) when nothing else reads the intermediate tensors;
* Dropout, SpatialDropout, GaussianNoise and other inference no-ops vanish;
* ZeroPadding before a VALID convolution is folded into it when it equals SAME padding, else a PAD op;
* Conv1D and 1-D pooling run as 2-D ops on a ``(1, 1, steps, channels)`` view, with a RESHAPE in and out;
  SeparableConv becomes DEPTHWISE_CONV_2D + CONV_2D; a lone BatchNormalization becomes MUL + ADD;
  swish becomes LOGISTIC + MUL; Flatten/Reshape become RESHAPE; global pooling MEAN / REDUCE_MAX;
* float or uint8 model I/O adds QUANTIZE / DEQUANTIZE ops;
* a bias that is zero everywhere is dropped (untrained models).

The result is a :class:`ConversionTemplate`: tensors whose channel dimension is a channel
:class:`~gencprunex.layout.Layout`, so that one template gives the operator graph of the model under
any pruning plan (:meth:`ConversionTemplate.op_graph`) in microseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import keras
import numpy as np

from ..errors import UnsupportedLayerError
from ..layout import Layout
from .opgraph import Op, OpGraph, OpTensor

_L = keras.layers

#: Layers that the converter removes at inference time.
NO_OPS = (
    _L.Dropout,
    _L.SpatialDropout1D,
    _L.SpatialDropout2D,
    _L.SpatialDropout3D,
    _L.GaussianNoise,
    _L.GaussianDropout,
    _L.AlphaDropout,
    _L.ActivityRegularization,
    _L.Identity,
    _L.InputLayer,
)

#: Fused activations a TFLite conv / fully-connected op carries for free.
FUSABLE = frozenset({"relu", "relu6"})

#: Stand-alone activation → TFLite ops.
ACTIVATION_OPS = {
    "linear": (),
    "relu": ("RELU",),
    "relu6": ("RELU6",),
    "sigmoid": ("LOGISTIC",),
    "tanh": ("TANH",),
    "softmax": ("SOFTMAX",),
    "log_softmax": ("LOG_SOFTMAX",),
    "swish": ("LOGISTIC", "MUL"),
    "silu": ("LOGISTIC", "MUL"),
    "hard_swish": ("HARD_SWISH",),
    "hard_silu": ("HARD_SWISH",),
    "leaky_relu": ("LEAKY_RELU",),
    "elu": ("ELU",),
    "gelu": ("GELU",),
    "hard_sigmoid": ("HARD_SIGMOID",),
}

MERGE_OPS = {
    "Add": "ADD",
    "Subtract": "SUB",
    "Multiply": "MUL",
    "Maximum": "MAXIMUM",
    "Minimum": "MINIMUM",
    "Average": "ADD",
}

Dim = int | Layout


@dataclass
class TemplateTensor:
    """A tensor whose dimensions may be channel layouts (resolved per pruning plan)."""

    dims: tuple[Dim, ...]
    dtype: str
    constant: bool = False
    quant: Dim = 0
    name: str = ""


@dataclass
class TemplateOp:
    type: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    label: str


@dataclass
class ConversionTemplate:
    """The predicted TFLite graph of one Keras graph, with channel widths left symbolic."""

    tensors: list[TemplateTensor]
    ops: list[TemplateOp]
    inputs: list[int]
    outputs: list[int]
    skipped: list[str] = field(default_factory=list)

    def op_graph(self, kept_sizes: dict[int, int] | None = None) -> OpGraph:
        """The operator graph when channel group ``g`` keeps ``kept_sizes[g]`` channels (others all)."""
        sizes = kept_sizes or {}
        widths: dict[int, int] = {}

        def resolve(dim: Dim) -> int:
            if isinstance(dim, int):
                return dim
            key = id(dim)
            if key not in widths:
                widths[key] = dim.kept_width(sizes)
            return widths[key]

        tensors = [
            OpTensor(
                shape=tuple(resolve(d) for d in t.dims),
                dtype=t.dtype,
                constant=t.constant,
                name=t.name,
                quant_channels=resolve(t.quant),
            )
            for t in self.tensors
        ]
        ops = [Op(o.type, o.inputs, o.outputs, o.label) for o in self.ops]
        return OpGraph(tensors, ops, list(self.inputs), list(self.outputs))


class _Emitter:
    """Builds a :class:`ConversionTemplate` from a LayerGraph, one Keras layer call at a time."""

    def __init__(self, graph, input_type: str, output_type: str, strict: bool) -> None:
        self.graph = graph
        self.flat = graph.flat
        self.input_type = input_type
        self.output_type = output_type
        self.strict = strict
        self.prefix = f"{graph.model.name}_1/"
        self.tensors: list[TemplateTensor] = []
        self.ops: list[TemplateOp] = []
        self.value: dict[int, int] = {}  # Keras tensor key -> template tensor index
        self.as_4d: set[int] = set()  # template tensors holding a 1-D feature map as (1, 1, steps, C)
        self.absorbed: set[int] = set()  # id() of layer calls folded into an earlier op
        self.consumers = _consumers(self.flat)
        self.outputs = set(self.flat.outputs)
        self.skipped: list[str] = []
        self.shared_axes: dict[tuple, int] = {}  # reduction axes constant, by shape
        self.deferred_reshape: dict[str, str] = {}  # Dense name -> Reshape moved after it
        self.folded_pad: dict[str, str] = {}  # conv layer name -> name of the ZeroPadding folded into it

    # tensors -------------------------------------------------------------------------------
    def tensor(self, dims, dtype="int8", constant=False, quant: Dim = 1, name="") -> int:
        self.tensors.append(TemplateTensor(tuple(dims), dtype, constant, quant, name))
        return len(self.tensors) - 1

    def const(self, dims, dtype="int32", name="arith.constant") -> int:
        return self.tensor(dims, dtype, constant=True, quant=0, name=name)

    def dims_of(self, key: int) -> tuple[Dim, ...]:
        shape = tuple(1 if d is None else int(d) for d in self.flat.tensors[key].shape)
        layout = self.graph.layout(key)
        return (*shape[:-1], layout) if len(shape) > 1 else shape

    def activation(self, key: int, name: str) -> int:
        return self.tensor(self.dims_of(key), name=name)

    def op(self, type_: str, inputs, outputs, label: str) -> None:
        self.ops.append(TemplateOp(type_, tuple(inputs), tuple(outputs), label))

    def name(self, layer_name: str, op: str) -> str:
        return f"{self.prefix}{layer_name}_1/{op}"

    # layout helpers ------------------------------------------------------------------------
    def read(self, key: int, label: str, need_4d: bool = False) -> int:
        """The template tensor holding Keras tensor ``key``, reshaped to/from the 1-D-as-2-D view."""
        index = self.value[key]
        dims = self.tensors[index].dims
        if need_4d and len(self.dims_of(key)) == 3 and index not in self.as_4d:
            steps, channels = dims[1], dims[2]
            if self.ops and self.ops[-1].type == "RESHAPE" and self.ops[-1].outputs == (index,):
                # Two reshapes in a row collapse into one: reshape straight to the 2-D view.
                self.tensors[index].dims = (1, 1, steps, channels)
                self.tensors[self.ops[-1].inputs[1]].dims = (4,)
                self.as_4d.add(index)
                return index
            out = self.tensor((1, 1, steps, channels), name=self.name(label, "convolution/ExpandDims1"))
            self.op("RESHAPE", [index, self.const((4,), name=self.name(label, "convolution/ExpandDims"))], [out], label)
            self.as_4d.add(out)
            return out
        if not need_4d and index in self.as_4d:
            keras_dims = self.dims_of(key)
            out = self.tensor(keras_dims, name=self.name(label, "Squeeze1"))
            self.op("RESHAPE", [index, self.const((3,), name=self.name(label, "Squeeze"))], [out], label)
            self.value[key] = out
            return out
        return index

    def single_consumer(self, key: int):
        calls = self.consumers.get(key, [])
        if key in self.outputs or len(calls) != 1:
            return None
        return calls[0]

    # emission --------------------------------------------------------------------------------
    def run(self) -> ConversionTemplate:
        inputs = []
        for key, name in zip(self.flat.inputs, self.flat.input_names, strict=True):
            dims = self.dims_of(key)
            if self.input_type == "int8":
                index = self.tensor(dims, "int8", name=name)
                self.value[key] = index
            else:
                index = self.tensor(dims, self.input_type, quant=1 if self.input_type == "uint8" else 0, name=name)
                quantized = self.tensor(dims, name="tfl.quantize")
                self.op("QUANTIZE", [index], [quantized], "input")
                self.value[key] = quantized
            inputs.append(index)
        for call in self.flat.calls:
            if id(call) in self.absorbed:
                continue
            self.emit(call)
        outputs = [self.finish_output(key) for key in self.flat.outputs]
        return ConversionTemplate(self.tensors, self.ops, inputs, outputs, self.skipped)

    def finish_output(self, key: int) -> int:
        index = self.read(key, "output")
        self.tensors[index].name = "Identity" if self.output_type == "int8" else "Identity1"
        if self.output_type == "int8":
            return index
        dims = self.tensors[index].dims
        out = self.tensor(dims, self.output_type, quant=1 if self.output_type == "uint8" else 0, name="Identity")
        self.op("DEQUANTIZE" if self.output_type == "float32" else "QUANTIZE", [index], [out], "output")
        return out

    def emit(self, call) -> None:
        layer = call.layer
        if isinstance(layer, NO_OPS):
            self.value[call.outputs[0]] = self.value[call.inputs[0]]
            return
        handler = _HANDLERS.get(type(layer).__name__)
        if handler is None:
            self.unsupported(call, f"{type(layer).__name__} has no known TFLite conversion")
            return
        handler(self, call)

    def unsupported(self, call, why: str) -> None:
        if self.strict:
            raise UnsupportedLayerError(
                f"cannot estimate layer '{call.name}' ({call.class_name}): {why}; "
                "pass strict=False to skip it, or use measure() on the converted model"
            )
        self.skipped.append(call.name)
        for key in call.outputs:
            self.value[key] = self.activation(key, self.name(call.name, "unknown"))

    # layer kinds -------------------------------------------------------------------------------
    def producer(self, call) -> None:
        layer = call.layer
        one_d = len(self.flat.tensors[call.inputs[0]].shape) == 3 and not isinstance(layer, _L.Dense)
        source = self.read(call.inputs[0], call.name, need_4d=one_d)
        in_layout = self.graph.layout(call.inputs[0])
        out_key = call.outputs[0]
        kernel = tuple(int(k) for k in getattr(layer, "kernel_size", ()))
        if one_d:
            kernel = (1, *kernel)
        activation = _activation_of(layer)
        chain = [call]
        bias_values = [_bias(layer)]
        # Fold a following BatchNormalization, then a fusable activation.
        nxt = self.single_consumer(out_key) if activation == "linear" else None
        if nxt is not None and isinstance(nxt.layer, _L.BatchNormalization) and _bn_on_last_axis(nxt.layer):
            chain.append(nxt)
            bias_values.append(_bn_shift(nxt.layer))
            out_key = nxt.outputs[0]
            nxt = self.single_consumer(out_key)
        if activation == "linear" and nxt is not None and _standalone_activation(nxt.layer) in FUSABLE:
            chain.append(nxt)
            activation = _standalone_activation(nxt.layer)
            out_key = nxt.outputs[0]
        for absorbed in chain[1:]:
            self.absorbed.add(id(absorbed))
        # Convolutions always get a bias tensor; a fully connected layer keeps one only if it is nonzero.
        has_bias = not isinstance(layer, _L.Dense) or any(b is not None and np.any(b != 0) for b in bias_values)
        bn = next((c for c in chain if isinstance(c.layer, _L.BatchNormalization)), None)
        act = next((c for c in chain[1:] if not isinstance(c.layer, _L.BatchNormalization)), None)
        filter_name, bias_name, out_name = self.producer_names(call, bn, act, activation)
        out_dims = self.dims_of(out_key)
        if one_d:
            out_dims = (1, 1, *out_dims[1:])
        deferred = self.deferred_reshape.pop(call.name, None)
        if deferred is not None:
            out_dims = (1, out_dims[-1])
        if isinstance(layer, _L.SeparableConv1D | _L.SeparableConv2D):
            multiplier = int(layer.depth_multiplier)
            mid_layout = in_layout.expanded(multiplier)
            mid_dims = (*out_dims[:-1], mid_layout)
            dw_filter = self.tensor((1, *kernel, mid_layout), constant=True, quant=mid_layout, name=filter_name)
            mid = self.tensor(mid_dims, name=self.name(call.name, "separable_conv2d/depthwise"))
            dw_bias = self.tensor((mid_layout,), "int32", constant=True, quant=mid_layout, name=filter_name)
            self.op("DEPTHWISE_CONV_2D", [source, dw_filter, dw_bias], [mid], call.name)
            source, in_layout, kernel = mid, mid_layout, (1, 1)
        out_layout = out_dims[-1]
        if isinstance(layer, _L.DepthwiseConv1D | _L.DepthwiseConv2D):
            type_ = "DEPTHWISE_CONV_2D"
            weights = (1, *kernel, out_layout)
        elif isinstance(layer, _L.Dense):
            type_ = "FULLY_CONNECTED"
            weights = (out_layout, in_layout)
        else:
            type_ = "CONV_2D"
            weights = (out_layout, *kernel, in_layout)
        w = self.tensor(weights, constant=True, quant=out_layout, name=filter_name)
        b = self.tensor((out_layout,), "int32", constant=True, quant=out_layout, name=bias_name) if has_bias else -1
        out = self.tensor(out_dims, name=out_name)
        self.op(type_, [source, w, b], [out], call.name)
        if one_d:
            self.as_4d.add(out)
        if deferred is not None:
            keras_dims = self.dims_of(out_key)
            reshaped = self.tensor(keras_dims, name=self.name(deferred, "Reshape"))
            self.op("RESHAPE", [out, self.const((len(keras_dims),))], [reshaped], deferred)
            out, out_dims = reshaped, keras_dims
        out = self.apply_activation(activation, out, out_dims, call.name)
        self.value[out_key] = out

    def producer_names(self, call, bn, act, activation: str) -> tuple[str, str, str]:
        """Tensor names the converter gives a fused op's filter, bias and output (they count in Flash)."""
        layer = call.layer
        act_op = "Relu6" if activation == "relu6" else "Relu"
        act_part = [self.name(act.name if act else call.name, act_op)] if activation in FUSABLE else []
        pad = self.folded_pad.pop(call.name, None)
        pad_part = [self.name(pad, "Pad")] if pad else []
        if isinstance(layer, _L.Dense):
            bias = [*act_part, self.name(call.name, "BiasAdd")]
            return self.name(call.name, "MatMul"), ";".join(bias), ";".join([self.name(call.name, "MatMul"), *bias])
        depthwise = isinstance(layer, _L.DepthwiseConv1D | _L.DepthwiseConv2D)
        core = self.name(call.name, "depthwise" if depthwise else "convolution")
        # Only the lengths of these names matter (they are stored in the flatbuffer), not their order.
        own_bias = (
            [self.name(call.name, "BiasAdd"), self.name(call.name, "Squeeze")] if _bias(layer) is not None else []
        )
        one_d = [self.name(call.name, "convolution/Squeeze")] if len(getattr(layer, "kernel_size", ())) == 1 else []
        if bn is not None:
            scale = [self.name(bn.name, "batchnorm/mul_1"), core, self.name(bn.name, "batchnorm/mul")]
            folded_scale = scale if depthwise or own_bias or one_d else [core]
            bias = [*act_part, self.name(bn.name, "batchnorm/add_1"), *folded_scale, *own_bias, *one_d, *pad_part]
            bias.append(self.name(bn.name, "batchnorm/sub"))
            filter_name = ";".join(scale if depthwise or one_d else [core, *one_d, *own_bias])
        else:
            bias = [
                *act_part,
                self.name(call.name, "BiasAdd"),
                core,
                *pad_part,
                self.name(call.name, "Squeeze"),
                *one_d,
            ]
            filter_name = core
        bias_name = ";".join(bias)
        return filter_name, bias_name, bias_name + "1"

    def apply_activation(self, activation: str, index: int, dims, label: str) -> int:
        if activation in FUSABLE or activation == "linear":
            return index
        ops = ACTIVATION_OPS.get(activation)
        if ops is None:
            raise UnsupportedLayerError(f"cannot estimate activation {activation!r} of layer '{label}'")
        if activation == "elu":  # no int8 ELU kernel: the converter runs it in float
            as_float = self.tensor(dims, "float32", quant=0, name=self.name(label, "Elu/dequantize"))
            self.op("DEQUANTIZE", [index], [as_float], label)
            elu = self.tensor(dims, "float32", quant=0, name=self.name(label, "Elu"))
            self.op("ELU", [as_float], [elu], label)
            out = self.tensor(dims, name=self.name(label, "Elu1"))
            self.op("QUANTIZE", [elu], [out], label)
            return out
        if ops == ("LOGISTIC", "MUL"):
            gate = self.tensor(dims, name=self.name(label, "Sigmoid"))
            self.op("LOGISTIC", [index], [gate], label)
            out = self.tensor(dims, name=self.name(label, "mul_1"))
            self.op("MUL", [index, gate], [out], label)
            return out
        for type_ in ops:
            out = self.tensor(dims, name=self.name(label, type_.title()))
            self.op(type_, [index], [out], label)
            index = out
        return index

    def standalone_activation(self, call) -> None:
        layer = call.layer
        source = self.read(call.inputs[0], call.name)
        dims = self.tensors[source].dims
        if isinstance(layer, _L.PReLU):
            alpha_dims = (*dims[1:-1], dims[-1]) if len(dims) > 1 else dims
            alpha = self.tensor(alpha_dims, constant=True, quant=1, name=self.name(call.name, "alpha"))
            parts = ("add", "Relu", "Neg_1", "Relu_1", "mul")
            out = self.tensor(dims, name=";".join(self.name(call.name, part) for part in parts))
            self.op("PRELU", [source, alpha], [out], call.name)
        else:
            kind = _standalone_activation(layer)
            if kind is None:
                self.unsupported(call, "its activation has no TFLite op")
                return
            out = self.apply_activation(kind, source, dims, call.name)
        self.value[call.outputs[0]] = out

    def batchnorm(self, call) -> None:
        source = self.read(call.inputs[0], call.name)
        dims = self.tensors[source].dims
        layout = dims[-1]
        scale = self.tensor((layout,), constant=True, quant=1, name=self.name(call.name, "batchnorm/mul"))
        mid = self.tensor(dims, name=self.name(call.name, "batchnorm/mul_1"))
        self.op("MUL", [source, scale], [mid], call.name)
        shift = self.tensor((layout,), constant=True, quant=1, name=self.name(call.name, "batchnorm/sub"))
        out = self.tensor(dims, name=self.name(call.name, "batchnorm/add_1"))
        self.op("ADD", [mid, shift], [out], call.name)
        self.value[call.outputs[0]] = out

    def zero_padding(self, call) -> None:
        nxt = self.single_consumer(call.outputs[0])
        if nxt is not None and _padding_folds(call, nxt, self.flat):
            self.value[call.outputs[0]] = self.value[call.inputs[0]]
            self.folded_pad[nxt.name] = call.name
            return
        source = self.read(call.inputs[0], call.name)
        rank = len(self.flat.tensors[call.inputs[0]].shape)
        paddings = self.const((rank, 2), name=self.name(call.name, "Const"))
        out = self.tensor(self.dims_of(call.outputs[0]), name=self.name(call.name, "Pad"))
        self.op("PAD", [source, paddings], [out], call.name)
        self.value[call.outputs[0]] = out

    def pooling(self, call) -> None:
        layer = call.layer
        one_d = len(self.flat.tensors[call.inputs[0]].shape) == 3
        source = self.read(call.inputs[0], call.name, need_4d=one_d)
        type_ = "MAX_POOL_2D" if "Max" in type(layer).__name__ else "AVERAGE_POOL_2D"
        dims = self.dims_of(call.outputs[0])
        if one_d:
            dims = (1, 1, *dims[1:])
        out = self.tensor(dims, name=self.name(call.name, "MaxPool1d" if one_d else "MaxPool2d"))
        self.op(type_, [source], [out], call.name)
        if one_d:
            self.as_4d.add(out)
        self.value[call.outputs[0]] = out

    def global_pooling(self, call) -> None:
        layer = call.layer
        source = self.read(call.inputs[0], call.name)
        rank = len(self.flat.tensors[call.inputs[0]].shape)
        axes_dims = () if rank == 3 else (rank - 2,)
        if axes_dims not in self.shared_axes:  # the converter keeps one copy of identical constants
            self.shared_axes[axes_dims] = self.const(axes_dims, name=self.name(call.name, "Mean/reduction_indices"))
        axes = self.shared_axes[axes_dims]
        type_ = "REDUCE_MAX" if "Max" in type(layer).__name__ else "MEAN"
        out = self.tensor(self.dims_of(call.outputs[0]), name=self.name(call.name, "Mean"))
        self.op(type_, [source, axes], [out], call.name)
        self.value[call.outputs[0]] = out

    def reshape(self, call) -> None:
        nxt = self.single_consumer(call.outputs[0])
        in_shape = self.flat.tensors[call.inputs[0]].shape
        out_shape = self.flat.tensors[call.outputs[0]].shape
        if (
            nxt is not None
            and isinstance(nxt.layer, _L.Dense)
            and len(out_shape) == 2
            and all(int(d) == 1 for d in in_shape[1:-1])
            and out_shape[-1] == in_shape[-1]
        ):
            self.value[call.outputs[0]] = self.read(call.inputs[0], call.name)
            return
        if (
            nxt is not None
            and isinstance(nxt.layer, _L.Dense)
            and len(in_shape) == 2
            and all(int(d) == 1 for d in out_shape[1:-1])
            and out_shape[-1] == in_shape[-1]
        ):
            # Inserting unit axes before a Dense: the converter moves the RESHAPE after the Dense.
            self.value[call.outputs[0]] = self.read(call.inputs[0], call.name)
            self.deferred_reshape[nxt.name] = call.name
            return
        source = self.read(call.inputs[0], call.name)
        dims = self.dims_of(call.outputs[0])
        shape = self.const((len(dims),))
        out = self.tensor(dims, name=self.name(call.name, "Reshape"))
        self.op("RESHAPE", [source, shape], [out], call.name)
        self.value[call.outputs[0]] = out

    def merge(self, call) -> None:
        sources = [self.read(key, call.name) for key in call.inputs]
        type_ = MERGE_OPS[type(call.layer).__name__]
        dims = self.dims_of(call.outputs[0])
        if len(sources) == 1:
            self.value[call.outputs[0]] = sources[0]
            return
        current = sources[0]
        for other in sources[1:]:
            out = self.tensor(dims, name=self.name(call.name, type_.title()))
            self.op(type_, [current, other], [out], call.name)
            current = out
        if isinstance(call.layer, _L.Average):
            scale = self.tensor((), constant=True, quant=1, name=self.name(call.name, "truediv/y"))
            out = self.tensor(dims, name=self.name(call.name, "truediv"))
            self.op("MUL", [current, scale], [out], call.name)
            current = out
        self.value[call.outputs[0]] = current

    def concatenate(self, call) -> None:
        sources = [self.read(key, call.name) for key in call.inputs]
        out = self.tensor(self.dims_of(call.outputs[0]), name=self.name(call.name, "concat"))
        self.op("CONCATENATION", sources, [out], call.name)
        self.value[call.outputs[0]] = out

    def softmax(self, call) -> None:
        source = self.read(call.inputs[0], call.name)
        out = self.tensor(self.dims_of(call.outputs[0]), name=self.name(call.name, "Softmax"))
        self.op("SOFTMAX", [source], [out], call.name)
        self.value[call.outputs[0]] = out

    def cropping(self, call) -> None:
        source = self.read(call.inputs[0], call.name)
        rank = len(self.flat.tensors[call.inputs[0]].shape)
        consts = [self.const((rank,), name=self.name(call.name, f"strided_slice/stack{i}")) for i in range(3)]
        out = self.tensor(self.dims_of(call.outputs[0]), name=self.name(call.name, "strided_slice"))
        self.op("STRIDED_SLICE", [source, *consts], [out], call.name)
        self.value[call.outputs[0]] = out

    def upsampling(self, call) -> None:
        source = self.read(call.inputs[0], call.name)
        rank = len(self.flat.tensors[call.inputs[0]].shape)
        if rank == 3:
            in_dims = self.dims_of(call.inputs[0])
            mid = self.tensor((*in_dims[:2], 1, in_dims[2]), name=self.name(call.name, "ExpandDims"))
            self.op("RESHAPE", [source, self.const((4,))], [mid], call.name)
            tiled = self.tensor((*in_dims[:2], int(call.layer.size), in_dims[2]), name=self.name(call.name, "Tile"))
            self.op("TILE", [mid, self.const((4,))], [tiled], call.name)
            out = self.tensor(self.dims_of(call.outputs[0]), name=self.name(call.name, "Reshape"))
            self.op("RESHAPE", [tiled, self.const((3,))], [out], call.name)
        else:
            out = self.tensor(self.dims_of(call.outputs[0]), name=self.name(call.name, "resize"))
            self.op("RESIZE_NEAREST_NEIGHBOR", [source, self.const((2,))], [out], call.name)
        self.value[call.outputs[0]] = out


def _consumers(flat) -> dict[int, list]:
    consumers: dict[int, list] = {}
    for call in flat.calls:
        for key in call.inputs:
            consumers.setdefault(key, []).append(call)
    return consumers


def _activation_of(layer) -> str:
    activation = getattr(layer, "activation", None)
    if activation is None:
        return "linear"
    return getattr(activation, "__name__", str(activation)).lower()


def _standalone_activation(layer) -> str | None:
    if isinstance(layer, _L.ReLU):
        negative_slope = float(layer.negative_slope)
        threshold = float(layer.threshold)
        max_value = layer.max_value
        if threshold != 0.0:
            return None
        if negative_slope != 0.0:
            return "leaky_relu" if max_value is None else None
        if max_value is None:
            return "relu"
        return "relu6" if float(max_value) == 6.0 else None
    if isinstance(layer, _L.LeakyReLU):
        return "leaky_relu"
    if isinstance(layer, _L.ELU):
        return "elu"
    if isinstance(layer, _L.Softmax):
        return "softmax"
    if isinstance(layer, _L.Activation):
        return _activation_of(layer)
    return None


def _bias(layer):
    if not getattr(layer, "use_bias", False):
        return None
    bias = getattr(layer, "bias", None)
    return None if bias is None else np.asarray(keras.ops.convert_to_numpy(bias))


def _bn_shift(layer) -> np.ndarray:
    """The additive term a folded BatchNorm leaves in the bias: beta − mean·gamma/sqrt(var+eps)."""
    get = {w.name: np.asarray(keras.ops.convert_to_numpy(w)) for w in layer.weights}
    mean = get.get("moving_mean", 0.0)
    var = get.get("moving_variance", 1.0)
    gamma = get.get("gamma", 1.0)
    beta = get.get("beta", 0.0)
    return np.atleast_1d(beta - mean * gamma / np.sqrt(var + layer.epsilon))


def _bn_on_last_axis(layer) -> bool:
    axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0] if len(layer.axis) == 1 else None
    return axis == -1 or (axis is not None and axis == len(layer.input.shape) - 1)


def _padding_folds(pad_call, conv_call, flat) -> bool:
    """True when ZeroPadding + a VALID conv equals the conv with SAME padding (the converter folds it)."""
    layer = conv_call.layer
    if not isinstance(pad_call.layer, _L.ZeroPadding2D) or not isinstance(layer, _L.Conv2D | _L.DepthwiseConv2D):
        return False
    if isinstance(layer, _L.SeparableConv2D) or layer.padding != "valid":
        return False
    if any(int(d) != 1 for d in layer.dilation_rate):
        return False
    padding = pad_call.layer.padding
    pads = padding
    in_shape = flat.tensors[pad_call.inputs[0]].shape[1:-1]
    for size, (before, after), kernel, stride in zip(in_shape, pads, layer.kernel_size, layer.strides, strict=False):
        out = math.ceil(int(size) / int(stride))
        total = max((out - 1) * int(stride) + int(kernel) - int(size), 0)
        if (before, after) != (total // 2, total - total // 2):
            return False
    return True


_HANDLERS = {
    "Conv1D": _Emitter.producer,
    "Conv2D": _Emitter.producer,
    "DepthwiseConv1D": _Emitter.producer,
    "DepthwiseConv2D": _Emitter.producer,
    "SeparableConv1D": _Emitter.producer,
    "SeparableConv2D": _Emitter.producer,
    "Dense": _Emitter.producer,
    "BatchNormalization": _Emitter.batchnorm,
    "ReLU": _Emitter.standalone_activation,
    "LeakyReLU": _Emitter.standalone_activation,
    "ELU": _Emitter.standalone_activation,
    "PReLU": _Emitter.standalone_activation,
    "Activation": _Emitter.standalone_activation,
    "Softmax": _Emitter.softmax,
    "ZeroPadding1D": _Emitter.zero_padding,
    "ZeroPadding2D": _Emitter.zero_padding,
    "MaxPooling1D": _Emitter.pooling,
    "MaxPooling2D": _Emitter.pooling,
    "AveragePooling1D": _Emitter.pooling,
    "AveragePooling2D": _Emitter.pooling,
    "GlobalAveragePooling1D": _Emitter.global_pooling,
    "GlobalAveragePooling2D": _Emitter.global_pooling,
    "GlobalMaxPooling1D": _Emitter.global_pooling,
    "GlobalMaxPooling2D": _Emitter.global_pooling,
    "Flatten": _Emitter.reshape,
    "Reshape": _Emitter.reshape,
    "Add": _Emitter.merge,
    "Subtract": _Emitter.merge,
    "Multiply": _Emitter.merge,
    "Maximum": _Emitter.merge,
    "Minimum": _Emitter.merge,
    "Average": _Emitter.merge,
    "Concatenate": _Emitter.concatenate,
    "Cropping1D": _Emitter.cropping,
    "Cropping2D": _Emitter.cropping,
    "UpSampling1D": _Emitter.upsampling,
    "UpSampling2D": _Emitter.upsampling,
}


def conversion_template(graph, input_type: str = "int8", output_type: str = "int8", strict: bool = True):
    """Predict the converted operator graph of ``graph`` (a :class:`~gencprunex.graph.LayerGraph`)."""
    return _Emitter(graph, input_type, output_type, strict).run()

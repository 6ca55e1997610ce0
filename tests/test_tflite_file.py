"""Reading .tflite flatbuffers into an OpGraph, and the MACs counted on it."""

from __future__ import annotations

import functools

import flatbuffers
import keras
import numpy as np
import pytest

import gencprunex
from gencprunex import zoo
from gencprunex.errors import ModelError
from gencprunex.export import to_tflite
from gencprunex.hardware.op_macs import graph_macs, op_macs
from gencprunex.hardware.opgraph import Op, OpGraph, OpTensor
from gencprunex.hardware.tflite_file import read_tflite, schema
from gencprunex.macs import total_macs

from .helpers import randomize

BUILDERS = {
    "small_cnn": zoo.small_cnn,
    "seed_mobilenet": zoo.seed_mobilenet,
    "ds_cnn_kws": zoo.ds_cnn_kws,
    "vgg_small": zoo.vgg_small,
    "dense_autoencoder": zoo.dense_autoencoder,
}

#: (model, input type, output type, pruned) of every export the tests use; each is converted once per session.
EXPORTS = {
    "small_cnn": ("small_cnn", "int8", "int8", False),
    "seed_mobilenet_u8_f32": ("seed_mobilenet", "uint8", "float32", False),
    "seed_mobilenet_pruned": ("seed_mobilenet", "int8", "int8", True),
    "ds_cnn_kws": ("ds_cnn_kws", "int8", "int8", False),
    "vgg_small_f32": ("vgg_small", "float32", "float32", False),
    "dense_autoencoder": ("dense_autoencoder", "int8", "int8", False),
}


@functools.cache
def keras_model(name: str, pruned: bool = False) -> keras.Model:
    """A zoo model with random biases and BatchNorm statistics (TFLM aborts on all-zero biases), maybe pruned."""
    keras.utils.set_random_seed(7)
    model = randomize(BUILDERS[name](), seed=3)
    if pruned:
        model = gencprunex.FixedPruner(0.5).fit(model).transform()
    return model


@functools.cache
def exported(key: str) -> bytes:
    """The flatbuffer of one of :data:`EXPORTS`."""
    name, input_type, output_type, pruned = EXPORTS[key]
    model = keras_model(name, pruned)
    samples = np.random.default_rng(0).normal(size=(16, *model.inputs[0].shape[1:])).astype("float32")
    return to_tflite(model, samples, input_type=input_type, output_type=output_type)


def test_small_cnn_ops_shapes_and_options():
    graph = read_tflite(exported("small_cnn"))
    assert graph.op_types() == [
        "CONV_2D",
        "MAX_POOL_2D",
        "CONV_2D",
        "MAX_POOL_2D",
        "RESHAPE",
        "FULLY_CONNECTED",
        "FULLY_CONNECTED",
        "SOFTMAX",
    ]
    [source] = graph.inputs
    [sink] = graph.outputs
    assert graph.tensors[source].shape == (1, 28, 28, 1)
    assert graph.tensors[source].dtype == "int8"
    assert graph.tensors[sink].shape == (1, 10)
    conv = graph.ops[0]
    data, weights, bias = graph.input_tensors(conv)
    assert data is graph.tensors[source]
    assert weights.shape == (8, 3, 3, 1) and weights.constant and weights.quant_channels == 8
    assert weights.quant_axis == 0
    assert bias.dtype == "int32" and bias.constant
    assert not data.constant and data.quant_channels == 1
    assert graph.output_tensors(conv)[0].shape == (1, 26, 26, 8)
    assert conv.options["stride_w"] == conv.options["stride_h"] == 1
    assert conv.options["padding"] == "VALID"
    assert conv.options["dilation_w_factor"] == 1
    assert conv.options["fused_activation_function"] == "RELU"
    pool = graph.ops[1].options
    assert (pool["filter_width"], pool["filter_height"], pool["stride_w"], pool["padding"]) == (2, 2, 2, "VALID")
    assert graph.ops[5].options["keep_num_dims"] is False
    assert all(op.inputs and op.outputs for op in graph.ops)


def test_depthwise_and_mean_options():
    graph = read_tflite(exported("seed_mobilenet_u8_f32"))
    assert graph.ops[0].type == "QUANTIZE" and graph.ops[-1].type == "DEQUANTIZE"
    assert graph.tensors[graph.inputs[0]].dtype == "uint8"
    assert graph.tensors[graph.outputs[0]].dtype == "float32"
    depthwise = next(op for op in graph.ops if op.type == "DEPTHWISE_CONV_2D")
    assert depthwise.options["depth_multiplier"] == 1
    assert depthwise.options["padding"] == "SAME"
    mean = next(op for op in graph.ops if op.type == "MEAN")
    assert mean.options == {"keep_dims": False}


@pytest.mark.parametrize("key", ["seed_mobilenet_u8_f32", "ds_cnn_kws", "vgg_small_f32", "dense_autoencoder"])
def test_macs_of_exported_models_match_keras_count(key):
    name, *_ = EXPORTS[key]
    assert graph_macs(read_tflite(exported(key))) == total_macs(keras_model(name))


def test_seed_mobilenet_macs_exact():
    assert graph_macs(read_tflite(exported("seed_mobilenet_u8_f32"))) == 7_507_648


def test_pruned_model_has_fewer_macs():
    full = graph_macs(read_tflite(exported("seed_mobilenet_u8_f32")))
    pruned = graph_macs(read_tflite(exported("seed_mobilenet_pruned")))
    assert pruned == total_macs(keras_model("seed_mobilenet", pruned=True)) < full


def _graph(*ops: Op, tensors: list[OpTensor]) -> OpGraph:
    return OpGraph(tensors=tensors, ops=list(ops), inputs=[0], outputs=[len(tensors) - 1])


def test_op_macs_by_hand():
    act = OpTensor((1, 5, 5, 6), "int8")
    tensors = [
        act,
        OpTensor((4, 3, 3, 6), "int8", constant=True),  # conv filter
        OpTensor((1, 3, 3, 4), "int8"),
        OpTensor((1, 3, 3, 4), "int8", constant=True),  # depthwise filter
        OpTensor((1, 3, 3, 4), "int8"),
        OpTensor((10, 36), "int8", constant=True),  # dense weights
        OpTensor((1, 10), "int8"),
        OpTensor((4,), "int32", constant=True),  # transpose conv output shape
        OpTensor((2, 3, 3, 4), "int8", constant=True),  # transpose conv filter
        OpTensor((1, 7, 7, 2), "int8"),
    ]
    conv = Op("CONV_2D", (0, 1, -1), (2,))
    depthwise = Op("DEPTHWISE_CONV_2D", (2, 3, -1), (4,))
    dense = Op("FULLY_CONNECTED", (4, 5, -1), (6,))
    transpose = Op("TRANSPOSE_CONV", (7, 8, 4), (9,))
    softmax = Op("SOFTMAX", (6,), (9,))
    graph = _graph(conv, depthwise, dense, transpose, softmax, tensors=tensors)
    assert op_macs(graph, conv) == 36 * 9 * 6
    assert op_macs(graph, depthwise) == 36 * 9
    assert op_macs(graph, dense) == 10 * 36
    assert op_macs(graph, transpose) == 36 * 9 * 2
    assert op_macs(graph, softmax) == 0


def test_not_a_tflite_model():
    with pytest.raises(ModelError, match="not a TFLite model"):
        read_tflite(b"\x00" * 64)
    with pytest.raises(ModelError, match="not a TFLite model"):
        read_tflite(b"")


def _packed_model(n_subgraphs: int) -> bytes:
    fb = schema()
    model = fb.ModelT()
    model.version = 3
    model.subgraphs = [fb.SubGraphT() for _ in range(n_subgraphs)]
    model.buffers = [fb.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_several_subgraphs_rejected():
    with pytest.raises(ModelError, match="2 subgraphs"):
        read_tflite(_packed_model(2))


def test_empty_subgraph_reads():
    graph = read_tflite(_packed_model(1))
    assert graph.tensors == [] and graph.ops == [] and graph.inputs == [] and graph.outputs == []

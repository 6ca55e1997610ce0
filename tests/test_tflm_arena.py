"""TFLM's arena for an OpGraph: scratch buffers, head, tail, and agreement with the real interpreter."""

from __future__ import annotations

import flatbuffers
import numpy as np
import pytest

from gencprunex.errors import ModelError
from gencprunex.hardware import tflm_arena, tflm_backend
from gencprunex.hardware.opgraph import Op, OpGraph, OpTensor
from gencprunex.hardware.tflite_file import read_tflite, schema
from gencprunex.hardware.tflm_arena import (
    MCU_32BIT,
    PYTHON_WHEEL,
    Target,
    head_bytes,
    scratch_buffers,
    struct_sizes,
    tail_breakdown,
    tail_bytes,
    unmodelled_ops,
)
from gencprunex.hardware.tflm_backend import TflmUnavailableError, run_tflm

from .test_tflite_file import EXPORTS, exported


def _dense_graph() -> OpGraph:
    """One int8 FULLY_CONNECTED, 8 → 4, weights quantized per channel: input, weights, bias, output."""
    tensors = [
        OpTensor((1, 8), "int8", quant_channels=1),
        OpTensor((4, 8), "int8", constant=True, quant_channels=4),
        OpTensor((4,), "int32", constant=True, quant_channels=4),
        OpTensor((1, 4), "int8", quant_channels=1),
    ]
    return OpGraph(tensors, [Op("FULLY_CONNECTED", (0, 1, 2), (3,))], inputs=[0], outputs=[3])


def test_struct_layouts():
    mcu, host = struct_sizes(4), struct_sizes(8, compression=True)
    expected = {  # name: (32-bit MCU, 64-bit wheel)
        "TfLiteEvalTensor": (12, 24),
        "NodeAndRegistration": (32, 64),
        "TfLiteTensor": (40, 64),
        "TfLiteAffineQuantization": (12, 24),
        "SubgraphAllocations": (8, 24),
        "OpDataConv": (56, 80),
        "SoftmaxParams": (56, 80),
        "TfLitePoolParams": (40, 40),
        "OpDataReduce": (44, 44),
    }
    assert {name: (mcu[name], host[name]) for name in expected} == expected


def test_tail_of_one_dense_op_by_hand_32bit():
    # Each allocation: tail = round_up(tail + size, alignment), from a 16-aligned arena end.
    # allocator objects: SingleArenaBufferAllocator 36, GreedyMemoryPlanner 44, MicroAllocator 36 → 116
    # MicroBuiltinDataAllocator 8 → 124; SubgraphAllocations 8 → 132; 4 TfLiteEvalTensor × 12 → 180
    # NodeAndRegistration 32 → 212; TfLiteFullyConnectedParams 24 → 236
    # OpDataFullyConnected 48 at 16-byte alignment → 288; per-channel multiplier, shift 16 + 16 → 320
    # input: TfLiteTensor* array 4 → 336, TfLiteTensor 40 → 376, TfLiteAffineQuantization 12 → 388, zero points 8 → 396
    # output: array 4 → 400, TfLiteTensor 40 → 440, quantization 12 → 452, zero points 8 → 460
    assert tail_bytes(_dense_graph(), pointer_size=4) == 460


def test_tail_of_one_dense_op_by_hand_host():
    # RecordingSingleArenaBufferAllocator 104, GreedyMemoryPlanner 72, RecordingMicroAllocator 272 → 448
    # MicroBuiltinDataAllocator 16 → 464; SubgraphAllocations 24 → 488; 4 × TfLiteEvalTensor 24 → 584
    # NodeAndRegistration 64 → 648; TfLiteFullyConnectedParams 32 → 680; OpDataFullyConnected 72 → 752
    # multiplier, shift 16 + 16 → 784; input array 8 → 800, tensor 64 → 864, quantization 24 + 8 → 896
    # output array 8 → 912, tensor 64 → 976, quantization 24 + 8 → 1008
    graph = _dense_graph()
    assert tail_bytes(graph, pointer_size=8) == 1008
    breakdown = tail_breakdown(graph, 8)
    assert breakdown["TfLiteEvalTensor data"] == 96
    assert breakdown["NodeAndRegistration struct"] == 64
    assert breakdown["Persistent TfLiteTensor data"] == 128
    assert breakdown["Persistent TfLiteTensor quantization data"] == 64
    assert breakdown["Persistent buffer data"] == 72 + 32 + 16 + 16
    assert breakdown["Allocator objects"] == 488
    assert sum(breakdown.values()) == 1008


def test_targets():
    assert tail_bytes(_dense_graph(), target=PYTHON_WHEEL) == tail_bytes(_dense_graph(), 8)
    assert tail_bytes(_dense_graph(), target=MCU_32BIT) == tail_bytes(_dense_graph())
    # without the recording allocator nor compression, the 64-bit tail shrinks
    assert tail_bytes(_dense_graph(), target=Target(8)) < tail_bytes(_dense_graph(), 8)
    with pytest.raises(ValueError, match="pointer_size"):
        Target(pointer_size=2)
    with pytest.raises(ValueError, match="pointer_size"):
        tail_bytes(_dense_graph(), pointer_size=16)


def test_head_of_one_dense_op():
    assert head_bytes(_dense_graph()) == 16 + 16  # 8 and 4 bytes, both live while the op runs


def _mean_graph(dtype: str) -> OpGraph:
    tensors = [
        OpTensor((1, 4, 4, 8), dtype),
        OpTensor((2,), "int32", constant=True),
        OpTensor((1, 8), dtype),
    ]
    return OpGraph(tensors, [Op("MEAN", (0, 1), (2,))], inputs=[0], outputs=[2])


def test_mean_scratch_buffers():
    graph = _mean_graph("int8")
    assert scratch_buffers(graph, graph.ops[0]) == [4 * 8, 4 * 4, 4 * 2]
    graph = _mean_graph("float32")
    assert scratch_buffers(graph, graph.ops[0]) == [4 * 4, 4 * 2]


def test_mean_head_includes_scratch():
    # input 128, output 8 → 16, scratch 32, 16, 8 → 16: all live while MEAN runs
    assert head_bytes(_mean_graph("int8")) == 128 + 16 + 32 + 16 + 16
    # three handles in the tail; 32-bit pointers
    assert tail_breakdown(_mean_graph("int8"))["Scratch buffer handles"] == 12


def test_other_scratch_buffers():
    tensors = [
        OpTensor((4,), "int32", constant=True),
        OpTensor((3, 2, 2, 5), "int8", constant=True),
        OpTensor((1, 4, 4, 5), "int8"),
        OpTensor((1, 8, 8, 3), "int8"),
    ]
    graph = OpGraph(tensors, [Op("TRANSPOSE_CONV", (0, 1, 2), (3,))], inputs=[2], outputs=[3])
    assert scratch_buffers(graph, graph.ops[0]) == [4 * 8 * 8 * 3]
    assert scratch_buffers(_dense_graph(), _dense_graph().ops[0]) == []


def test_variables_and_unmodelled_ops():
    graph = _dense_graph()
    graph.tensors.append(OpTensor((10,), "int8", variable=True))
    assert tail_breakdown(graph)["TfLiteTensor variable buffer data"] == 16
    graph.ops.append(Op("TILE", (3,), (3,)))
    assert unmodelled_ops(graph) == ["TILE"]
    assert unmodelled_ops(_dense_graph()) == []


def test_backend_without_tflite_micro(monkeypatch):
    monkeypatch.setattr(tflm_backend, "tflm_available", lambda: False)
    with pytest.raises(TflmUnavailableError, match="pip install --pre tflite-micro"):
        run_tflm(b"")


# -- against the real interpreter --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tflm():
    pytest.importorskip("tflite_micro")
    return run_tflm


@pytest.mark.parametrize("key", sorted(EXPORTS))
def test_head_and_tail_equal_tflm(tflm, key):
    data = exported(key)
    graph = read_tflite(data)
    measured = tflm(data)
    assert head_bytes(graph, 8) == measured["head"]
    assert tail_bytes(graph, 8) == measured["tail_host"]
    ours = tail_breakdown(graph, 8)
    assert {name: ours[name] for name in measured["categories"]} == measured["categories"]
    assert measured["tail_32bit"] == tail_bytes(graph, 4)
    assert measured["ram_32bit"] == head_bytes(graph) + tail_bytes(graph)


def test_minimal_arena(tflm):
    measured = tflm(exported("small_cnn"), minimal_arena=True)
    assert measured["arena_min_host"] == measured["head"] + measured["tail_host"]


def _packed_tile_model() -> bytes:
    """A one-op TILE model (TFLM has no TILE kernel), written with the schema's object API."""
    fb = schema()
    model = fb.ModelT()
    model.version = 3
    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.TILE
    model.operatorCodes = [code]
    empty, multiples = fb.BufferT(), fb.BufferT()
    multiples.data = np.array([1, 2], dtype="<i4").view(np.uint8)
    model.buffers = [empty, multiples]
    tensors = []
    for shape, kind, buffer in (((1, 4), fb.TensorType.FLOAT32, 0), ((2,), fb.TensorType.INT32, 1)):
        tensors.append(fb.TensorT())
        tensors[-1].shape, tensors[-1].type, tensors[-1].buffer = list(shape), kind, buffer
    tensors.append(fb.TensorT())
    tensors[-1].shape, tensors[-1].type, tensors[-1].buffer = [1, 8], fb.TensorType.FLOAT32, 0
    op = fb.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1], [2]
    subgraph = fb.SubGraphT()
    subgraph.tensors, subgraph.operators, subgraph.inputs, subgraph.outputs = tensors, [op], [0], [2]
    model.subgraphs = [subgraph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_tile_model_parses():
    graph = read_tflite(_packed_tile_model())
    assert graph.op_types() == ["TILE"]
    assert graph.tensors[1].constant and not graph.tensors[0].constant


def test_tflm_rejection_is_passed_on(tflm):
    with pytest.raises(ModelError, match="Didn't find op for builtin opcode 'TILE'"):
        tflm(_packed_tile_model())


def test_mcu_tail_is_smaller():
    for key in ("small_cnn", "dense_autoencoder"):
        graph = read_tflite(exported(key))
        assert tail_bytes(graph, 4) < tail_bytes(graph, 8)
        assert tflm_arena.arena_bytes(graph) == head_bytes(graph) + tail_bytes(graph)

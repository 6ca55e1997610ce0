"""From an operator graph to a :class:`~gencprunex.hardware.profile.Footprint`.

RAM is the TensorFlow Lite Micro arena of a 32-bit microcontroller with the reference kernels: the head
laid out by TFLM's greedy planner (activations and kernel scratch buffers) plus the persistent tail
(TFLM's per-tensor and per-operator structures, kernels' op data, per-channel quantization arrays).
MACs and parameters come from the operators and their constant tensors.
"""

from __future__ import annotations

from .op_macs import op_macs
from .opgraph import OpGraph
from .profile import Footprint
from .tflm_arena import head_bytes, tail_bytes

#: Pointer size of the microcontrollers the RAM figure is for (Cortex-M, RISC-V 32, Xtensa).
MCU_POINTER_SIZE = 4


def params_of(graph: OpGraph) -> int:
    """Weights and biases: elements of the quantized constant tensors (shape/axis constants excluded)."""
    return sum(t.elements for t in graph.tensors if t.constant and t.quant_channels)


def op_rows(graph: OpGraph) -> list[dict]:
    """One row per operator: type, Keras layer, output shape, MACs, weight bytes, activation bytes."""
    rows = []
    for op in graph.ops:
        inputs = [graph.tensors[i] for i in op.inputs if i >= 0]
        outputs = [graph.tensors[i] for i in op.outputs]
        rows.append(
            {
                "op": op.type,
                "layer": op.label,
                "output_shape": list(outputs[0].shape) if outputs else [],
                "macs": op_macs(graph, op),
                "weight_bytes": sum(t.nbytes for t in inputs if t.constant),
                "activation_bytes": sum(t.nbytes for t in outputs),
            }
        )
    return rows


def footprint_of(graph: OpGraph, flash: int, method: str, rows: bool = True) -> Footprint:
    """The footprint of ``graph`` whose flatbuffer takes ``flash`` bytes."""
    head = head_bytes(graph, MCU_POINTER_SIZE)
    tail = tail_bytes(graph, MCU_POINTER_SIZE)
    layers = op_rows(graph) if rows else []
    macs = sum(r["macs"] for r in layers) if rows else sum(op_macs(graph, op) for op in graph.ops)
    return Footprint(
        ram=head + tail,
        flash=flash,
        macs=macs,
        params=params_of(graph),
        layers=layers,
        details={"arena_head": head, "arena_tail": tail, "method": method, "pointer_size": MCU_POINTER_SIZE},
    )

"""Flash: the size of the ``.tflite`` flatbuffer, predicted from an operator graph.

``measure`` reads the real size of the converted file; ``estimate`` predicts it as the bytes of the
constant tensors (int8 weights, int32 biases and shapes), plus the tensor names, plus 12 bytes per
quantization channel (a float32 scale and an int64 zero point), plus the flatbuffer's own structure.
The structure term is linear in counts the operator graph gives (tensors, operators, operator kinds,
shape dimensions); its coefficients were fitted with non-negative least squares on 48 models converted
by TensorFlow 2.21 (the reference zoo at three pruning ratios, int8 and uint8/float I/O), where it
predicts the file size within 0.4 %. ``benchmarks/footprint_fidelity.py`` re-checks it.
"""

from __future__ import annotations

from .opgraph import OpGraph

#: Bytes per quantization channel: a float32 scale and an int64 zero point.
QUANT_BYTES_PER_CHANNEL = 12

#: Flatbuffer structure, bytes: fixed part (model table, metadata, signature), per constant tensor (its
#: buffer table, size prefix and alignment), per operator (table, input/output vectors, options), per
#: shape dimension, per quantized tensor (quantization table and vector headers), per operator kind
#: (operator-code table).
STRUCTURE_FIXED = 405
STRUCTURE_PER_CONSTANT = 38
STRUCTURE_PER_OP = 46
STRUCTURE_PER_DIM = 4
STRUCTURE_PER_QUANTIZED_TENSOR = 61
STRUCTURE_PER_OP_KIND = 73


def flash_bytes(graph: OpGraph) -> int:
    """Predicted size in bytes of the flatbuffer that holds ``graph``."""
    data = names = channels = constants = dims = quantized = 0
    for tensor in graph.tensors:
        names += len(tensor.name)
        dims += len(tensor.shape)
        if tensor.constant:
            data += tensor.nbytes
            constants += 1
        if tensor.quant_channels:
            channels += tensor.quant_channels
            quantized += 1
    structure = (
        STRUCTURE_FIXED
        + STRUCTURE_PER_CONSTANT * constants
        + STRUCTURE_PER_OP * len(graph.ops)
        + STRUCTURE_PER_DIM * dims
        + STRUCTURE_PER_QUANTIZED_TENSOR * quantized
        + STRUCTURE_PER_OP_KIND * len({op.type for op in graph.ops})
    )
    return data + names + QUANT_BYTES_PER_CHANNEL * channels + structure

"""The model as TensorFlow Lite Micro runs it: tensors and operators in execution order.

Both footprint paths produce an :class:`OpGraph`: ``measure`` reads it from a converted ``.tflite``
flatbuffer, ``estimate`` predicts it from the Keras graph by mirroring the converter's rewrites. RAM,
Flash and MACs are then computed from the ``OpGraph`` by the same code, so the two paths can only
differ where the prediction of the converted graph differs from the real one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: Bytes per element of the TFLite tensor types gencprunex meets.
DTYPE_BYTES = {
    "bool": 1,
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "float16": 2,
    "int32": 4,
    "float32": 4,
    "int64": 8,
}


@dataclass(frozen=True)
class OpTensor:
    """One tensor of the flatbuffer's (single) subgraph.

    ``constant``: its data is stored in the flatbuffer (weights, biases, shapes); such tensors take
    Flash, not arena. ``quant_channels``: how many scale/zero-point pairs it carries (0 when it is
    not quantized, 1 per-tensor, ``C`` per-channel). ``quant_axis``: the quantized dimension.
    """

    shape: tuple[int, ...]
    dtype: str
    constant: bool = False
    variable: bool = False
    name: str = ""
    quant_channels: int = 0
    quant_axis: int = 0

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of its data: elements × element size."""
        return self.elements * DTYPE_BYTES[self.dtype]


@dataclass(frozen=True)
class Op:
    """One operator: TFLite builtin name (``"CONV_2D"``), tensor indices (``-1`` = omitted optional
    input), and the Keras layer(s) it comes from (``label``) when known."""

    type: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    label: str = ""
    options: dict = field(default_factory=dict, compare=False)


@dataclass
class OpGraph:
    """Tensors, operators in execution order, and the subgraph's input and output tensor indices."""

    tensors: list[OpTensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]

    def tensor(self, index: int) -> OpTensor:
        return self.tensors[index]

    def input_tensors(self, op: Op) -> list[OpTensor | None]:
        """The op's input tensors, ``None`` for an omitted optional input."""
        return [self.tensors[i] if i >= 0 else None for i in op.inputs]

    def output_tensors(self, op: Op) -> list[OpTensor]:
        return [self.tensors[i] for i in op.outputs]

    def op_types(self) -> list[str]:
        return [op.type for op in self.ops]

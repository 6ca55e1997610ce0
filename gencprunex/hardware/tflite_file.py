"""Reading a ``.tflite`` flatbuffer into an :class:`~gencprunex.hardware.opgraph.OpGraph`.

The flatbuffer is read with the reader classes that ``flatc`` generates from TFLite's ``schema.fbs``:
TensorFlow's copy (``tensorflow.lite.python.schema_py_generated``) when TensorFlow is installed, else the one
shipped with the ``tflite-micro`` wheel. Nothing is copied out of the weight buffers: a tensor is *constant*
when its buffer holds data (or, in models over 2 GB, points to data stored after the flatbuffer), exactly the
test TFLM applies before deciding not to plan a tensor in the arena.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from functools import cache, lru_cache
from pathlib import Path
from types import ModuleType

from ..errors import ModelError
from .opgraph import DTYPE_BYTES, Op, OpGraph, OpTensor

_SCHEMA_MODULES = (
    "tensorflow.lite.python.schema_py_generated",
    "tflite_micro.tensorflow.lite.micro.python.schema_py_generated",
)

#: The flatbuffer file identifier of TFLite models, at bytes 4..8.
_IDENTIFIER = b"TFL3"

#: Option fields whose integer value is an enum of the schema, translated to the enum's name.
_ENUM_FIELDS = {
    "padding": "Padding",
    "fused_activation_function": "ActivationFunctionType",
    "weights_format": "FullyConnectedOptionsWeightsFormat",
}


@lru_cache(maxsize=1)
def schema() -> ModuleType:
    """The generated flatbuffer reader module (TensorFlow's, else tflite-micro's).

    When TensorFlow is installed but not imported yet, its reader file is loaded on its own: it needs only
    ``flatbuffers``, and importing all of TensorFlow for it would take seconds.
    """
    if "tensorflow" not in sys.modules:
        module = _load_without_package(_SCHEMA_MODULES[0])
        if module is not None:
            return module
    for name in _SCHEMA_MODULES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ModelError("reading .tflite files needs TensorFlow or tflite-micro: pip install tensorflow")


def _load_without_package(name: str) -> ModuleType | None:
    """Load ``package.sub.module`` from its file without running the packages' ``__init__``; None if absent."""
    top, *middle, leaf = name.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *middle, f"{leaf}.py")
    if not path.is_file():
        return None
    file_spec = importlib.util.spec_from_file_location(f"_gencprunex_{leaf}", path)
    if file_spec is None or file_spec.loader is None:
        return None
    module = importlib.util.module_from_spec(file_spec)
    try:
        file_spec.loader.exec_module(module)
    except ImportError:  # flatbuffers missing
        return None
    return module


@cache
def _enum_names(enum_class: str) -> dict[int, str]:
    """``{value: NAME}`` of one enum class of the schema (``BuiltinOperator``, ``TensorType``, ...)."""
    cls = getattr(schema(), enum_class)
    return {value: name for name, value in vars(cls).items() if not name.startswith("_") and isinstance(value, int)}


def _snake_case(name: str) -> str:
    """``strideW`` → ``stride_w``, ``dilationHFactor`` → ``dilation_h_factor``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def read_tflite(data: bytes) -> OpGraph:
    """Tensors and operators (in execution order) of the single subgraph of a TFLite flatbuffer.

    Operator types are builtin names (``"CONV_2D"``; custom operators are ``"CUSTOM:<code>"``); ``options``
    holds the builtin options in snake case (``stride_w``, ``padding`` as ``"SAME"``/``"VALID"``,
    ``fused_activation_function`` as ``"RELU"``, ``keep_num_dims``, ``keep_dims``, ``axis``, ...).

    Raises:
        ModelError: the bytes are not a TFLite model, have no or several subgraphs, or use a tensor type
            gencprunex does not know.
    """
    data = bytes(data)
    if len(data) < 8 or data[4:8] != _IDENTIFIER:
        raise ModelError(f"not a TFLite model: {len(data)} bytes without the 'TFL3' identifier")
    fb = schema()
    try:
        model = fb.Model.GetRootAs(data, 0)
        n_subgraphs = model.SubgraphsLength()
    except Exception as exc:  # a corrupt flatbuffer fails deep inside the reader
        raise ModelError(f"not a readable TFLite model: {exc}") from None
    if n_subgraphs != 1:
        raise ModelError(f"the TFLite model has {n_subgraphs} subgraphs; gencprunex supports exactly one")
    try:
        return _read_subgraph(model, model.Subgraphs(0))
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"not a readable TFLite model: {type(exc).__name__}: {exc}") from None


def _read_subgraph(model, subgraph) -> OpGraph:
    tensors = [_read_tensor(model, subgraph.Tensors(i)) for i in range(subgraph.TensorsLength())]
    opcodes = [_opcode_name(model.OperatorCodes(i)) for i in range(model.OperatorCodesLength())]
    ops = [_read_op(subgraph.Operators(i), opcodes) for i in range(subgraph.OperatorsLength())]
    inputs = [int(i) for i in subgraph.InputsAsNumpy()] if subgraph.InputsLength() else []
    outputs = [int(i) for i in subgraph.OutputsAsNumpy()] if subgraph.OutputsLength() else []
    return OpGraph(tensors=tensors, ops=ops, inputs=inputs, outputs=outputs)


def _read_tensor(model, tensor) -> OpTensor:
    name = (tensor.Name() or b"").decode("utf-8", "replace")
    type_name = _enum_names("TensorType").get(tensor.Type(), str(tensor.Type()))
    dtype = type_name.lower()
    if dtype not in DTYPE_BYTES:
        raise ModelError(f"tensor {name!r} has type {type_name}, which gencprunex does not support")
    shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    channels, axis = 0, 0
    quant = tensor.Quantization()
    if quant is not None and quant.ScaleLength() > 0 and quant.ZeroPointLength() > 0:
        channels, axis = quant.ScaleLength(), quant.QuantizedDimension()
    return OpTensor(
        shape=shape,
        dtype=dtype,
        constant=_has_data(model, tensor.Buffer()),
        variable=bool(tensor.IsVariable()),
        name=name,
        quant_channels=channels,
        quant_axis=axis,
    )


def _has_data(model, buffer_index: int) -> bool:
    """Whether the tensor's buffer holds data, in the flatbuffer or (offset/size) after it."""
    if not 0 <= buffer_index < model.BuffersLength():
        return False
    buffer = model.Buffers(buffer_index)
    if buffer is None:
        return False
    return buffer.DataLength() > 0 or (buffer.Offset() > 1 and buffer.Size() > 0)


def _opcode_name(opcode) -> str:
    code = max(opcode.DeprecatedBuiltinCode(), opcode.BuiltinCode())
    name = _enum_names("BuiltinOperator").get(code, f"BUILTIN_{code}")
    if name == "CUSTOM":
        custom = (opcode.CustomCode() or b"").decode("utf-8", "replace")
        return f"CUSTOM:{custom}"
    return name


def _read_op(op, opcodes: list[str]) -> Op:
    index = op.OpcodeIndex()
    if not 0 <= index < len(opcodes):
        raise ModelError(f"an operator uses opcode index {index}, but the model has {len(opcodes)} opcodes")
    inputs = tuple(int(i) for i in op.InputsAsNumpy()) if op.InputsLength() else ()
    outputs = tuple(int(i) for i in op.OutputsAsNumpy()) if op.OutputsLength() else ()
    return Op(type=opcodes[index], inputs=inputs, outputs=outputs, options=_read_options(op))


def _read_options(op) -> dict:
    """The operator's builtin options (``BuiltinOptions`` or ``BuiltinOptions2``) as a snake-case dict."""
    options: dict = {}
    for union, type_getter, table_getter in (
        ("BuiltinOptions", "BuiltinOptionsType", "BuiltinOptions"),
        ("BuiltinOptions2", "BuiltinOptions2Type", "BuiltinOptions2"),
    ):
        if not hasattr(op, type_getter):
            continue
        type_name = _enum_names(union).get(getattr(op, type_getter)())
        table = getattr(op, table_getter)()
        if not type_name or type_name == "NONE" or table is None:
            continue
        options.update(_unpack_options(type_name, table))
    return options


def _unpack_options(type_name: str, table) -> dict:
    """Fields of one options table, read with the generated object API (``Conv2DOptionsT``)."""
    object_class = getattr(schema(), f"{type_name}T", None)
    if object_class is None:
        return {}
    unpacked = object_class.InitFromBuf(table.Bytes, table.Pos)
    result = {}
    for field, value in vars(unpacked).items():
        key = _snake_case(field)
        if key in _ENUM_FIELDS and isinstance(value, int):
            value = _enum_names(_ENUM_FIELDS[key]).get(value, value)
        elif hasattr(value, "tolist"):
            value = value.tolist()
        result[key] = value
    return result

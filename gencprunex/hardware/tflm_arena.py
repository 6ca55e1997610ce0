"""TensorFlow Lite Micro's tensor arena for an :class:`OpGraph`: head (planned buffers) and tail (persistent data).

TFLM carves one caller-given arena into a **head**, growing up from its start, and a **tail**, growing down from its
end (``SingleArenaBufferAllocator``):

- the head holds every non-persistent buffer, placed by the greedy memory planner: activations and the scratch
  buffers kernels request in ``Prepare`` (:func:`scratch_buffers`, :func:`head_bytes`). It does not depend on the
  pointer size, except through the rare scratch buffers that hold pointers (``ADD_N``).
- the tail holds what lives as long as the interpreter (:func:`tail_breakdown`, :func:`tail_bytes`). Each request
  ``AllocatePersistentBuffer(size, alignment)`` moves the tail pointer down to ``AlignDown(tail - size, alignment)``,
  so the tail grows by ``size`` plus the padding that aligns it. The requests come in this order
  (``micro_allocator.cc``, ``micro_interpreter.cc``):

  1. the allocator objects, when the allocator is created inside the arena: the ``SingleArenaBufferAllocator``, the
     ``GreedyMemoryPlanner`` and the ``MicroAllocator`` (the Python wheel uses the larger *Recording* variants);
  2. ``StartModelAllocation``: the ``MicroBuiltinDataAllocator``, one ``SubgraphAllocations``, a
     ``TfLiteEvalTensor`` for every tensor of the subgraph, a ``NodeAndRegistration`` for every operator;
  3. the builtin options struct of each operator (``TfLiteConvParams``, ...), allocated by the op's parse function
     with the struct's own alignment; parse functions of ops without options allocate nothing;
  4. each kernel's ``Init``: its ``OpData`` (``context->AllocatePersistentBuffer``, 16-byte aligned);
  5. each kernel's ``Prepare``: per-channel output multiplier and shift arrays (conv, depthwise, transpose conv,
     per-channel fully connected), int16 softmax look-up tables (16-byte aligned);
  6. ``FinishModelAllocation``: one ``ScratchBufferHandle`` (a pointer) per scratch buffer request, then the
     buffers of variable tensors (16-byte aligned);
  7. the interpreter's input and output ``TfLiteTensor*`` arrays (16-byte aligned) and, per model input and output,
     a persistent ``TfLiteTensor`` plus, when it is quantized, its ``TfLiteAffineQuantization`` and zero-point
     ``TfLiteIntArray`` (the scale array points into the flatbuffer).

Struct sizes follow the C layout rules (each field at a multiple of its alignment, the size a multiple of the
largest alignment) from the field lists below, for 8-byte pointers (the 64-bit host where the ``tflite-micro``
Python wheel runs) or 4-byte pointers (a 32-bit MCU). ``int``, ``float`` and enums are 4 bytes, ``double`` and
``int64_t`` 8 bytes with 8-byte alignment on both (AAPCS), ``size_t`` is pointer-sized. Structs are modelled from
the TFLM source as of 2026 (``tensorflow/tflite-micro``); a build may differ in two ways, captured by
:class:`Target`: the Python wheel uses the ``RecordingMicroAllocator`` and is built with ``USE_TFLM_COMPRESSION``
(which adds scratch indices to several ``OpData`` structs and a pointer to ``SubgraphAllocations``); an MCU
firmware normally creates a plain ``MicroAllocator`` in the arena, without compression.

The arena's end is taken to be 16-byte aligned (TFLM aligns the start; ``alignas(16)`` and a size that is a multiple
of 16 align both). Not modelled: resource variables (``VAR_HANDLE``), several subgraphs, offline-planned tensors,
compressed models, and the data of kernels outside :data:`OP_DATA`, :data:`BUILTIN_DATA` and
:data:`NO_PERSISTENT_DATA` (see :func:`unmodelled_ops`; they count as 0 bytes). Optimised kernel libraries (CMSIS-NN,
Xtensa) have other ``OpData`` and scratch buffers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .opgraph import Op, OpGraph, OpTensor
from .planner import ARENA_ALIGNMENT, arena_head_size, lifetimes

# --------------------------------------------------------------------------------------------------------------------
# C struct layouts


#: ``(size, alignment)`` of scalar C types; ``ptr``, ``size_t`` and ``vptr`` (a vtable pointer) follow the pointer size.
SCALARS = {
    "bool": (1, 1),
    "int8": (1, 1),
    "uint8": (1, 1),
    "int16": (2, 2),
    "uint16": (2, 2),
    "int32": (4, 4),
    "float": (4, 4),
    "enum": (4, 4),
    "double": (8, 8),
    "int64": (8, 8),
}
_POINTER_SIZED = frozenset({"ptr", "size_t", "vptr"})

#: Every struct defined with :func:`c_struct`, by name; later declarations may use earlier ones as field types.
STRUCTS: dict[str, Struct] = {}


@dataclass(frozen=True)
class Field:
    """One member: a scalar type of :data:`SCALARS` (or pointer-sized) or a struct name, times ``count``."""

    kind: str
    name: str
    count: int = 1


@dataclass(frozen=True)
class Struct:
    """A C struct laid out by the usual rules: each member at a multiple of its alignment, the size a multiple of the
    largest alignment. ``compression_fields`` exist only in builds with ``USE_TFLM_COMPRESSION`` and come last."""

    name: str
    fields: tuple[Field, ...]
    compression_fields: tuple[Field, ...] = ()

    def layout(self, pointer_size: int, compression: bool = False) -> tuple[int, int]:
        """``(sizeof, alignof)`` for the given pointer size."""
        offset, alignment = 0, 1
        for member in self.fields + (self.compression_fields if compression else ()):
            size, align = _kind_layout(member.kind, pointer_size, compression)
            offset = _round_up(offset, align) + size * member.count
            alignment = max(alignment, align)
        return _round_up(offset, alignment), alignment

    def size(self, pointer_size: int, compression: bool = False) -> int:
        return self.layout(pointer_size, compression)[0]


def _kind_layout(kind: str, pointer_size: int, compression: bool) -> tuple[int, int]:
    if kind in _POINTER_SIZED:
        return pointer_size, pointer_size
    if kind in SCALARS:
        return SCALARS[kind]
    return STRUCTS[kind].layout(pointer_size, compression)


def _round_up(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


_DECLARATION = re.compile(r"^(\w+)\s+(\w+)(?:\[(\d+)\])?$")


def _fields(declarations: str) -> tuple[Field, ...]:
    """``"int32 a, b; ptr c; int8 table[256]"`` → fields; a comma repeats the type."""
    fields: list[Field] = []
    for statement in filter(None, (s.strip() for s in declarations.split(";"))):
        kind, _, names = statement.partition(" ")
        for name in (n.strip() for n in names.split(",")):
            match = _DECLARATION.match(f"{kind} {name}")
            if match is None or (kind not in SCALARS and kind not in _POINTER_SIZED and kind not in STRUCTS):
                raise ValueError(f"bad member declaration {statement!r}")
            fields.append(Field(kind, match.group(2), int(match.group(3) or 1)))
    return tuple(fields)


def c_struct(name: str, declarations: str, compression: str = "") -> Struct:
    """Declare (and register in :data:`STRUCTS`) a struct from C-like member declarations."""
    struct = Struct(name, _fields(declarations), _fields(compression))
    STRUCTS.setdefault(name, struct)
    return struct


# -- runtime structs (tensorflow/lite/core/c/common.h with TF_LITE_STATIC_MEMORY, micro_allocator.h, allocators) ----

TFLITE_EVAL_TENSOR = c_struct("TfLiteEvalTensor", "ptr data, dims; enum type")
TFLITE_NODE = c_struct(
    "TfLiteNode", "ptr inputs, outputs, intermediates, user_data, builtin_data, custom_initial_data; int32 custom_size"
)
NODE_AND_REGISTRATION = c_struct("NodeAndRegistration", "TfLiteNode node; ptr registration")
TFLITE_TENSOR = c_struct(
    "TfLiteTensor",
    "enum quantization_type; ptr quantization_params; float scale; int32 zero_point; ptr data, dims; size_t bytes;"
    "enum type, allocation_type; bool is_variable",
)
TFLITE_AFFINE_QUANTIZATION = c_struct("TfLiteAffineQuantization", "ptr scale, zero_point; int32 quantized_dimension")
SUBGRAPH_ALLOCATIONS = c_struct(
    "SubgraphAllocations", "ptr node_and_registrations, tensors", compression="ptr compressed"
)
SCRATCH_BUFFER_HANDLE = c_struct("ScratchBufferHandle", "ptr data")
SINGLE_ARENA_BUFFER_ALLOCATOR = c_struct(
    "SingleArenaBufferAllocator",
    "vptr non_persistent_vtable, persistent_vtable; ptr buffer_head, buffer_tail, head, tail, temp;"
    "size_t temp_buffer_ptr_check_sum; int32 temp_buffer_count",
)
RECORDING_SINGLE_ARENA_BUFFER_ALLOCATOR = c_struct(
    "RecordingSingleArenaBufferAllocator",
    "SingleArenaBufferAllocator base; size_t requested_head_bytes, requested_tail_bytes, used_bytes, alloc_count",
)
GREEDY_MEMORY_PLANNER = c_struct(
    "GreedyMemoryPlanner",
    "vptr vtable; int32 max_buffer_count, buffer_count;"
    "ptr requirements, buffer_sizes_sorted, buffer_ids_sorted, buffers_sorted_by_offset;"
    "int32 next_free_entry, first_entry_index; ptr buffer_offsets; bool need_to_calculate_offsets",
)
MICRO_ALLOCATOR = c_struct(
    "MicroAllocator",
    "vptr vtable; ptr non_persistent_allocator, persistent_allocator, builtin_data_allocator, memory_planner;"
    "bool model_is_allocating; size_t scratch_buffer_request_count; ptr scratch_buffer_head;"
    "size_t max_head_buffer_usage",
)
RECORDED_ALLOCATION = c_struct("RecordedAllocation", "size_t requested_bytes, used_bytes, count")
RECORDING_MICRO_ALLOCATOR = c_struct(
    "RecordingMicroAllocator",
    "MicroAllocator base; ptr recording_memory_allocator; RecordedAllocation eval_tensors, persistent_tensors,"
    "persistent_quantization, persistent_buffers, variable_buffers, node_and_registrations, op_data",
    compression="RecordedAllocation compression_data",
)
MICRO_BUILTIN_DATA_ALLOCATOR = c_struct("MicroBuiltinDataAllocator", "vptr vtable; ptr persistent_allocator")

# -- builtin options structs (tensorflow/compiler/mlir/lite/core/c/builtin_op_data.h) -------------------------------

c_struct("TfLitePaddingValues", "int32 width, height, width_offset, height_offset")
c_struct("TfLiteReducerParams", "bool keep_dims")
c_struct("TfLiteAddParams", "enum activation; bool pot_scale_int16")
c_struct(
    "TfLitePoolParams",
    "enum padding; int32 stride_width, stride_height, filter_width, filter_height; enum activation;"
    "TfLitePaddingValues computed",
)

#: Builtin options struct the op's parse function allocates (``micro_mutable_op_resolver.h`` → ``Parse*``).
BUILTIN_DATA: dict[str, Struct] = {
    "CONV_2D": c_struct(
        "TfLiteConvParams",
        "enum padding; int32 stride_width, stride_height; enum activation;"
        "int32 dilation_width_factor, dilation_height_factor; enum quantized_bias_type",
    ),
    "DEPTHWISE_CONV_2D": c_struct(
        "TfLiteDepthwiseConvParams",
        "enum padding; int32 stride_width, stride_height, depth_multiplier; enum activation;"
        "int32 dilation_width_factor, dilation_height_factor",
    ),
    # The wheel's schema has a newer ``FullyConnectedOptions.quant_spec`` vector whose C member is not in the mirrored
    # source; measured on the host: 32 bytes with 8-byte alignment, i.e. a pointer and an int were added.
    "FULLY_CONNECTED": c_struct(
        "TfLiteFullyConnectedParams",
        "enum activation, weights_format; bool keep_num_dims, asymmetric_quantize_inputs; enum quantized_bias_type;"
        "ptr quant_spec; int32 quant_spec_size",
    ),
    "TRANSPOSE_CONV": c_struct(
        "TfLiteTransposeConvParams",
        "enum padding; int32 stride_width, stride_height; enum activation, quantized_bias_type",
    ),
    "AVERAGE_POOL_2D": STRUCTS["TfLitePoolParams"],
    "MAX_POOL_2D": STRUCTS["TfLitePoolParams"],
    "L2_POOL_2D": STRUCTS["TfLitePoolParams"],
    "RESHAPE": c_struct("TfLiteReshapeParams", "int32 shape[8], num_dimensions"),
    "SQUEEZE": c_struct("TfLiteSqueezeParams", "int32 squeeze_dims[8], num_squeeze_dims"),
    "STRIDED_SLICE": c_struct(
        "TfLiteStridedSliceParams",
        "int32 begin_mask, end_mask, ellipsis_mask, new_axis_mask, shrink_axis_mask; bool offset",
    ),
    "SOFTMAX": c_struct("TfLiteSoftmaxParams", "float beta"),
    "MEAN": STRUCTS["TfLiteReducerParams"],
    "SUM": STRUCTS["TfLiteReducerParams"],
    "REDUCE_MAX": STRUCTS["TfLiteReducerParams"],
    "REDUCE_MIN": STRUCTS["TfLiteReducerParams"],
    "REDUCE_ALL": STRUCTS["TfLiteReducerParams"],
    "ADD": STRUCTS["TfLiteAddParams"],
    "SUB": c_struct("TfLiteSubParams", "enum activation; bool pot_scale_int16"),
    "MUL": c_struct("TfLiteMulParams", "enum activation"),
    "DIV": c_struct("TfLiteDivParams", "enum activation"),
    "CONCATENATION": c_struct("TfLiteConcatenationParams", "int32 axis; enum activation"),
    "LEAKY_RELU": c_struct("TfLiteLeakyReluParams", "float alpha"),
    "L2_NORMALIZATION": c_struct("TfLiteL2NormParams", "enum activation"),
    "MIRROR_PAD": c_struct("TfLiteMirrorPaddingParams", "enum mode"),
    "PACK": c_struct("TfLitePackParams", "int32 values_count, axis"),
    "UNPACK": c_struct("TfLiteUnpackParams", "int32 num, axis"),
    "SPLIT": c_struct("TfLiteSplitParams", "int32 num_splits"),
    "SPLIT_V": c_struct("TfLiteSplitVParams", "int32 num_splits"),
    "GATHER": c_struct("TfLiteGatherParams", "int32 axis, batch_dims"),
    "ARG_MAX": c_struct("TfLiteArgMaxParams", "enum output_type"),
    "ARG_MIN": c_struct("TfLiteArgMinParams", "enum output_type"),
    "CAST": c_struct("TfLiteCastParams", "enum in_data_type, out_data_type"),
    "SHAPE": c_struct("TfLiteShapeParams", "enum out_type"),
    "SPACE_TO_DEPTH": c_struct("TfLiteSpaceToDepthParams", "int32 block_size"),
    "DEPTH_TO_SPACE": c_struct("TfLiteDepthToSpaceParams", "int32 block_size"),
    "RESIZE_BILINEAR": c_struct("TfLiteResizeBilinearParams", "bool align_corners, half_pixel_centers"),
    "RESIZE_NEAREST_NEIGHBOR": c_struct("TfLiteResizeNearestNeighborParams", "bool align_corners, half_pixel_centers"),
    "BATCH_MATMUL": c_struct("TfLiteBatchMatMulParams", "bool adj_x, adj_y, asymmetric_quantize_inputs"),
    "CUMSUM": c_struct("TfLiteCumsumParams", "bool exclusive, reverse"),
    "SVDF": c_struct("TfLiteSVDFParams", "int32 rank; enum activation; bool asymmetric_quantize_inputs"),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": c_struct(
        "TfLiteUnidirectionalSequenceLSTMParams",
        "enum activation; float cell_clip, proj_clip; bool time_major, asymmetric_quantize_inputs, diagonal_recurrent",
    ),
    "CALL_ONCE": c_struct("TfLiteCallOnceParams", "int32 init_subgraph_index"),
    "IF": c_struct("TfLiteIfParams", "int32 then_subgraph_index, else_subgraph_index"),
    "WHILE": c_struct("TfLiteWhileParams", "int32 cond_subgraph_index, body_subgraph_index"),
    "VAR_HANDLE": c_struct("TfLiteVarHandleParams", "ptr container, shared_name"),
}

# -- kernel OpData structs (tensorflow/lite/micro/kernels and kernels/internal/types.h, reference kernels) ----------

c_struct(
    "OpDataConv",
    "TfLitePaddingValues padding; int32 input_zero_point, filter_zero_point, output_zero_point, output_multiplier,"
    "output_shift; ptr per_channel_output_multiplier, per_channel_output_shift;"
    "int32 output_activation_min, output_activation_max, filter_buffer_index",
    compression="int32 weights_scratch_index, bias_scratch_index",
)
c_struct(
    "ConvParams",
    "uint8 padding_type; int16 pad_width, pad_height, pad_width_offset, pad_height_offset;"
    "int16 stride_width, stride_height, dilation_width_factor, dilation_height_factor;"
    "int32 input_offset, weights_offset, output_offset, output_multiplier, output_shift;"
    "int32 quantized_activation_min, quantized_activation_max; float float_activation_min, float_activation_max",
)
c_struct("QuantizationParams", "int32 zero_point; double scale")
c_struct("DequantizationParams", "double scale; int32 zero_point")
c_struct(
    "OpDataReduce",
    "int32 multiplier, shift, scratch_accumulator_idx, scratch_resolved_axis_idx, scratch_input_iter_idx, input_zp;"
    "float input_scale; int32 output_zp; float output_scale; int32 num_output_elements, num_axis",
)
c_struct("OpDataPooling", "TfLitePaddingValues padding; int32 activation_min, activation_max; float fmin, fmax")
c_struct(
    "PadOpData",
    "int8 left_padding_count; int32 left_padding[5]; int8 right_padding_count; int32 right_padding[5];"
    "uint8 resizing_category; int32 output_zero_point",
)
c_struct(
    "ArithmeticParams",
    "uint8 broadcast_category; int32 input1_offset, input2_offset, output_offset, output_multiplier, output_shift,"
    "left_shift, input1_multiplier, input1_shift, input2_multiplier, input2_shift, quantized_activation_min,"
    "quantized_activation_max; float float_activation_min, float_activation_max;"
    "int64 int64_activation_min, int64_activation_max; int16 int16_activation_min, int16_activation_max;"
    "int32 broadcast_shape[5]",
)
c_struct(
    "ComparisonParams",
    "int32 left_shift, input1_offset, input1_multiplier, input1_shift, input2_offset, input2_multiplier,"
    "input2_shift; bool is_broadcast",
)
c_struct(
    "OpDataAbsRsqrt",
    "int32 multiplier, shift, input_offset, output_offset; bool needs_rescale; enum quantization_type, input_type",
)

#: ``OpData`` each kernel's ``Init`` allocates (``context->AllocatePersistentBuffer(sizeof(OpData))``).
OP_DATA: dict[str, Struct] = {
    "CONV_2D": STRUCTS["OpDataConv"],
    "DEPTHWISE_CONV_2D": STRUCTS["OpDataConv"],
    "FULLY_CONNECTED": c_struct(
        "OpDataFullyConnected",
        "int32 output_multiplier, output_shift, output_activation_min, output_activation_max, input_quantized_index,"
        "input_zero_point, filter_zero_point, output_zero_point, filter_buffer_index;"
        "ptr per_channel_output_multiplier, per_channel_output_shift; bool is_per_channel",
        compression="int32 weights_scratch_index, bias_scratch_index",
    ),
    "TRANSPOSE_CONV": c_struct(
        "TransposeConvOpData",
        "ConvParams params; int32 scratch_buffer_index, bias_converted_buffer_index;"
        "ptr per_channel_output_multiplier, per_channel_output_shift",
        compression="int32 filter_scratch_index, bias_scratch_index",
    ),
    "AVERAGE_POOL_2D": STRUCTS["OpDataPooling"],
    "MAX_POOL_2D": STRUCTS["OpDataPooling"],
    "SOFTMAX": c_struct(
        "SoftmaxParams",
        "double beta; int32 input_multiplier, input_left_shift, reverse_scaling_divisor, reverse_scaling_right_shift,"
        "diff_min, zero_point; float scale; ptr table, exp_lut, one_over_one_plus_x_lut, uint8_table1, uint8_table2",
    ),
    "MEAN": STRUCTS["OpDataReduce"],
    "SUM": STRUCTS["OpDataReduce"],
    "REDUCE_MAX": STRUCTS["OpDataReduce"],
    "REDUCE_MIN": STRUCTS["OpDataReduce"],
    "REDUCE_ALL": STRUCTS["OpDataReduce"],
    "QUANTIZE": c_struct(
        "OpDataQuantizeReference",
        "QuantizationParams quantization_params; int32 requantize_multiplier, requantize_shift, input_zero_point",
    ),
    "DEQUANTIZE": c_struct(
        "DequantizeOpData",
        "DequantizationParams quantization_params; int32 output_multiplier, output_shift, output_zero_point",
    ),
    "ADD": c_struct(
        "OpDataAdd",
        "bool requires_broadcast; int32 input1_shift, input2_shift, output_activation_min, output_activation_max,"
        "input1_multiplier, input2_multiplier, output_multiplier, output_shift, left_shift, input1_offset,"
        "input2_offset, output_offset; float output_activation_min_f32, output_activation_max_f32",
    ),
    "SUB": c_struct(
        "OpDataSub",
        "bool requires_broadcast; int32 input1_shift, input2_shift, output_activation_min, output_activation_max,"
        "input1_multiplier, input2_multiplier, output_multiplier, output_shift, left_shift, input1_offset,"
        "input2_offset, output_offset",
    ),
    "MUL": c_struct(
        "OpDataMul",
        "int32 input1_zero_point, input2_zero_point, output_activation_min, output_activation_max, output_zero_point,"
        "output_multiplier, output_shift; float output_activation_min_f32, output_activation_max_f32",
    ),
    "DIV": c_struct(
        "OpDataDiv",
        "int32 input1_zero_point, input2_zero_point, output_zero_point, output_activation_min,"
        "output_activation_max, output_multiplier, output_shift",
    ),
    "CONCATENATION": c_struct(
        "ConcatenationOpData",
        "int32 axis; ptr input_zeropoint, input_scale; int32 inputs_count, output_zeropoint; float output_scale",
        compression="int32 scratch_indices[10]",
    ),
    "PAD": STRUCTS["PadOpData"],
    "PADV2": STRUCTS["PadOpData"],
    "LOGISTIC": c_struct("OpDataLogistic", "int32 input_zero_point, input_range_radius, input_multiplier, left_shift"),
    "TANH": c_struct("TanhOpData", "int32 input_zero_point, input_range_radius, input_multiplier, input_left_shift"),
    "RELU": c_struct(
        "ReluOpData",
        "uint8 activation_type; int32 quantized_activation_min, quantized_activation_max, input_offset,"
        "output_offset, output_multiplier, output_shift",
    ),
    "RELU6": c_struct("Relu6OpData", "int32 six, zero"),
    "LEAKY_RELU": c_struct(
        "LeakyReluOpData",
        "int32 output_multiplier_alpha, output_shift_alpha, output_multiplier_identity, output_shift_identity,"
        "input_zero_point, output_zero_point",
    ),
    "PRELU": c_struct(
        "PreluParams",
        "int32 input_offset, alpha_offset, output_offset, output_multiplier_1, output_shift_1, output_multiplier_2,"
        "output_shift_2",
    ),
    "HARD_SWISH": c_struct(
        "HardSwishParams",
        "int16 input_zero_point, output_zero_point, reluish_multiplier_fixedpoint_int16;"
        "int32 reluish_multiplier_exponent; int16 output_multiplier_fixedpoint_int16; int32 output_multiplier_exponent",
    ),
    "ELU": c_struct("EluOpData", "int8 table[256]"),
    "STRIDED_SLICE": c_struct(
        "StridedSliceParams",
        "int8 start_indices_count; int32 start_indices[5]; int8 stop_indices_count; int32 stop_indices[5];"
        "int8 strides_count; int32 strides[5]; uint16 begin_mask, ellipsis_mask, end_mask, new_axis_mask,"
        "shrink_axis_mask; bool offset",
    ),
    "SPACE_TO_BATCH_ND": c_struct("SpaceToBatchParams", "int32 output_offset"),
    "SQUARED_DIFFERENCE": c_struct(
        "SquaredDifferenceOpData", "bool requires_broadcast; ArithmeticParams arithmetic_params"
    ),
    "ABS": STRUCTS["OpDataAbsRsqrt"],
    "RSQRT": STRUCTS["OpDataAbsRsqrt"],
    "EQUAL": STRUCTS["ComparisonParams"],
    "NOT_EQUAL": STRUCTS["ComparisonParams"],
    "GREATER": STRUCTS["ComparisonParams"],
    "GREATER_EQUAL": STRUCTS["ComparisonParams"],
    "LESS": STRUCTS["ComparisonParams"],
    "LESS_EQUAL": STRUCTS["ComparisonParams"],
    "SELECT_V2": c_struct("SelectOpData", "bool requires_broadcast"),
    "MIRROR_PAD": c_struct(
        "OpDataMirrorPad",
        "int32 input_dims, output_size, offset, output_dims_num_elements_buffer_index,"
        "input_dims_num_elements_buffer_index",
    ),
    "L2_NORMALIZATION": c_struct("L2NormalizationParams", "int32 input_zero_point"),
}

#: Ops whose kernels allocate no persistent data (no ``Init`` data, no options struct, nothing in ``Prepare``).
NO_PERSISTENT_DATA = frozenset(
    {
        "EXPAND_DIMS", "FLOOR", "CEIL", "ROUND", "NEG", "EXP", "LOG", "SIN", "COS", "SQRT", "SQUARE", "LOGICAL_NOT",
        "LOGICAL_AND", "LOGICAL_OR", "MAXIMUM", "MINIMUM", "BATCH_TO_SPACE_ND", "BROADCAST_ARGS", "BROADCAST_TO",
        "DYNAMIC_UPDATE_SLICE", "EMBEDDING_LOOKUP", "FILL", "FLOOR_DIV", "FLOOR_MOD", "GATHER_ND", "LOG_SOFTMAX",
        "REVERSE_V2", "SLICE", "TRANSPOSE", "ZEROS_LIKE",
    }
)  # fmt: skip

# --------------------------------------------------------------------------------------------------------------------
# Build configurations


@dataclass(frozen=True)
class Target:
    """How TFLM was built and set up: pointer size, allocator class, compression support.

    ``recording``: the arena holds a ``RecordingMicroAllocator`` (what the Python wheel creates) instead of the
    ``MicroAllocator`` a firmware's ``MicroInterpreter(model, resolver, arena, size)`` creates.
    ``compression``: built with ``USE_TFLM_COMPRESSION`` (the Python wheel is).
    """

    pointer_size: int = 4
    recording: bool = False
    compression: bool = False

    def __post_init__(self) -> None:
        if self.pointer_size not in (4, 8):
            raise ValueError(f"pointer_size must be 4 or 8, got {self.pointer_size}")

    def size(self, struct: Struct) -> int:
        return struct.size(self.pointer_size, self.compression)

    def align(self, struct: Struct) -> int:
        return struct.layout(self.pointer_size, self.compression)[1]


#: The ``tflite-micro`` Python wheel on a 64-bit host (what :mod:`.tflm_backend` runs).
PYTHON_WHEEL = Target(pointer_size=8, recording=True, compression=True)
#: A 32-bit microcontroller firmware with the reference kernels and a plain ``MicroAllocator``.
MCU_32BIT = Target(pointer_size=4, recording=False, compression=False)


def target_for(pointer_size: int) -> Target:
    """The default :class:`Target` of a pointer size: 8 → :data:`PYTHON_WHEEL`, 4 → :data:`MCU_32BIT`."""
    if pointer_size == 8:
        return PYTHON_WHEEL
    if pointer_size == 4:
        return MCU_32BIT
    raise ValueError(f"pointer_size must be 4 or 8, got {pointer_size}")


# --------------------------------------------------------------------------------------------------------------------
# Head: scratch buffers and the greedy plan


def _tensor(graph: OpGraph, op: Op, position: int) -> OpTensor | None:
    """The op's input tensor at ``position`` (``None`` when absent or omitted)."""
    if position >= len(op.inputs) or op.inputs[position] < 0:
        return None
    return graph.tensors[op.inputs[position]]


def _axis_count(axis: OpTensor | None) -> int:
    return axis.elements if axis is not None else 1


def scratch_buffers(graph: OpGraph, op: Op, pointer_size: int = 4) -> list[int]:
    """Bytes of each scratch buffer the reference kernel of ``op`` requests in ``Prepare``, in request order.

    - ``MEAN``/``SUM``: int8/int16 input: an int32 accumulator per output element, then (any type) ``4 · rank``
      for the input iterator and ``4 · n_axes`` for the resolved axes (``reduce_common.cc``);
    - ``REDUCE_MAX``/``REDUCE_MIN``/``REDUCE_ALL``: ``4 · rank`` and ``4 · n_axes``;
    - ``TRANSPOSE_CONV``: int8 input: int32 per output element; int16 input: int64 per output element, plus int64
      per bias element when the bias is int16;
    - ``MIRROR_PAD``: two of ``4 · rank``; ``ADD_N``: one pointer per input (float32 and int8 outputs).

    Other ops request none (int4 weights, which add an unpacking buffer, are not supported by gencprunex).
    """
    inputs = graph.input_tensors(op)
    first = inputs[0] if inputs else None
    if op.type in ("MEAN", "SUM") and first is not None:
        output = graph.tensors[op.outputs[0]]
        accumulator = [4 * output.elements] if first.dtype in ("int8", "int16") else []
        return [*accumulator, 4 * len(first.shape), 4 * _axis_count(_tensor(graph, op, 1))]
    if op.type in ("REDUCE_MAX", "REDUCE_MIN", "REDUCE_ALL") and first is not None:
        return [4 * len(first.shape), 4 * _axis_count(_tensor(graph, op, 1))]
    if op.type == "TRANSPOSE_CONV":
        return _transpose_conv_scratch(graph, op)
    if op.type == "MIRROR_PAD" and first is not None:
        return [4 * len(first.shape)] * 2
    if op.type == "ADD_N" and graph.tensors[op.outputs[0]].dtype in ("float32", "int8"):
        return [pointer_size * len(op.inputs)]
    return []


def _transpose_conv_scratch(graph: OpGraph, op: Op) -> list[int]:
    data = _tensor(graph, op, 2)
    output = graph.tensors[op.outputs[0]]
    if data is None or data.dtype not in ("int8", "int16"):
        return []
    if data.dtype == "int8":
        return [4 * output.elements]
    bias = _tensor(graph, op, 3)
    extra = [8 * bias.elements] if bias is not None and bias.dtype == "int16" else []
    return [8 * output.elements, *extra]


def planned_tensors(graph: OpGraph) -> dict[int, int]:
    """``{tensor index: bytes}`` of the tensors TFLM plans in the head: not constant, not variable."""
    return {i: t.nbytes for i, t in enumerate(graph.tensors) if not t.constant and not t.variable}


def head_bytes(graph: OpGraph, pointer_size: int = 4) -> int:
    """Bytes of arena head: TFLM's greedy plan of the activations and the kernels' scratch buffers.

    Uses :func:`gencprunex.hardware.planner.lifetimes` and :func:`~gencprunex.hardware.planner.arena_head_size`;
    tensors that no operator creates or uses (and that are no model input or output) are skipped, like TFLM does.
    """
    op_inputs = [op.inputs for op in graph.ops]
    op_outputs = [op.outputs for op in graph.ops]
    scratch = {i: sizes for i, op in enumerate(graph.ops) if (sizes := scratch_buffers(graph, op, pointer_size))}
    spans = lifetimes(len(graph.ops), op_inputs, op_outputs, graph.inputs, graph.outputs, scratch)
    sizes = {i: size for i, size in planned_tensors(graph).items() if i in spans.tensors}
    buffers, _ = spans.buffers(sizes)
    return arena_head_size(buffers)


# --------------------------------------------------------------------------------------------------------------------
# Tail: persistent allocations

#: Categories of :func:`tail_breakdown`; the first six are those ``RecordingMicroAllocator::PrintAllocations`` prints.
CATEGORIES = (
    "TfLiteEvalTensor data",
    "Persistent TfLiteTensor data",
    "Persistent TfLiteTensor quantization data",
    "Persistent buffer data",
    "TfLiteTensor variable buffer data",
    "NodeAndRegistration struct",
    "Allocator objects",
    "Builtin op data",
    "Scratch buffer handles",
)


class _Tail:
    """The tail pointer of a ``SingleArenaBufferAllocator``, counted in bytes down from a 16-aligned arena end."""

    def __init__(self) -> None:
        self.used = 0
        self.by_category = dict.fromkeys(CATEGORIES, 0)

    def allocate(self, size: int, alignment: int, category: str) -> None:
        """``AllocatePersistentBuffer``: the new tail is ``AlignDown(tail - size, alignment)``."""
        before = self.used
        self.used = _round_up(self.used + size, alignment)
        self.by_category[category] += self.used - before


def _persistent_tensor_sizes(tensor: OpTensor, target: Target) -> list[tuple[int, int, str]]:
    """A model input/output's persistent ``TfLiteTensor`` and its quantization structs (size, alignment, category)."""
    result = [(target.size(TFLITE_TENSOR), target.align(TFLITE_TENSOR), "Persistent TfLiteTensor data")]
    if tensor.quant_channels > 0:
        category = "Persistent TfLiteTensor quantization data"
        quant = TFLITE_AFFINE_QUANTIZATION
        result.append((target.size(quant), target.align(quant), category))
        result.append((4 + 4 * tensor.quant_channels, 4, category))  # TfLiteIntArray of zero points
    return result


def prepare_buffers(graph: OpGraph, op: Op) -> list[int]:
    """Bytes of the persistent buffers the reference kernel of ``op`` allocates in ``Prepare`` (16-byte aligned).

    Conv, depthwise conv and transpose conv: a per-channel int32 output multiplier and shift (always, even in float
    models); fully connected: the same when the model is quantized per channel; int16 softmax: two 513-entry int16
    look-up tables; int8 ``ADD_N``: its ``OpData``.
    """
    inputs = graph.input_tensors(op)
    if op.type in ("CONV_2D", "TRANSPOSE_CONV", "DEPTHWISE_CONV_2D"):
        weights = inputs[1]
        axis = 3 if op.type == "DEPTHWISE_CONV_2D" else 0
        return [4 * weights.shape[axis]] * 2 if weights is not None and weights.shape else []
    if op.type == "FULLY_CONNECTED":
        data, weights = inputs[0], inputs[1]
        if data is None or weights is None or data.dtype == "float32" or weights.quant_channels <= 1:
            return []
        return [4 * weights.quant_channels] * 2
    if op.type == "SOFTMAX" and inputs and inputs[0] is not None and inputs[0].dtype == "int16":
        return [2 * 513] * 2
    if op.type == "ADD_N" and graph.tensors[op.outputs[0]].dtype == "int8":
        return [40]  # OpData: 10 int32 fields
    return []


def unmodelled_ops(graph: OpGraph) -> list[str]:
    """Op types of ``graph`` whose persistent data this module does not know (counted as 0 bytes)."""
    known = set(OP_DATA) | set(BUILTIN_DATA) | NO_PERSISTENT_DATA | {"RESHAPE", "ADD_N", "QUANTIZE", "DEQUANTIZE"}
    return sorted({op.type for op in graph.ops} - known)


def tail_breakdown(graph: OpGraph, pointer_size: int = 4, target: Target | None = None) -> dict[str, int]:
    """Bytes of arena tail by category (:data:`CATEGORIES`), alignment padding included where TFLM counts it.

    ``target`` defaults to :func:`target_for` ``(pointer_size)``: the Python wheel for 8, an MCU firmware for 4.
    The categories TFLM's ``RecordingMicroAllocator`` prints come out as it prints them; the rest (allocator
    objects, builtin options structs, scratch buffer handles) it leaves uncounted.
    """
    target = target or target_for(pointer_size)
    tail = _Tail()
    _allocate_objects(tail, target)
    _allocate_model(tail, graph, target)
    return tail.by_category


def tail_bytes(graph: OpGraph, pointer_size: int = 4, target: Target | None = None) -> int:
    """Bytes of arena tail TFLM allocates for ``graph`` (see :func:`tail_breakdown`)."""
    return sum(tail_breakdown(graph, pointer_size, target).values())


def arena_bytes(graph: OpGraph, pointer_size: int = 4, target: Target | None = None) -> int:
    """Head + tail: the arena TFLM uses once ``AllocateTensors`` has run."""
    target = target or target_for(pointer_size)
    return head_bytes(graph, target.pointer_size) + tail_bytes(graph, target=target)


def _allocate_objects(tail: _Tail, target: Target) -> None:
    """The allocator, planner and allocator-of-allocator objects created in the arena."""
    arena_allocator = RECORDING_SINGLE_ARENA_BUFFER_ALLOCATOR if target.recording else SINGLE_ARENA_BUFFER_ALLOCATOR
    micro_allocator = RECORDING_MICRO_ALLOCATOR if target.recording else MICRO_ALLOCATOR
    for struct in (arena_allocator, GREEDY_MEMORY_PLANNER, micro_allocator):
        tail.allocate(target.size(struct), target.align(struct), "Allocator objects")


def _allocate_model(tail: _Tail, graph: OpGraph, target: Target) -> None:
    """Everything ``MicroInterpreter::AllocateTensors`` puts in the tail, in its order."""
    objects = "Allocator objects"
    for struct in (MICRO_BUILTIN_DATA_ALLOCATOR, SUBGRAPH_ALLOCATIONS):
        tail.allocate(target.size(struct), target.align(struct), objects)
    count = len(graph.tensors)
    tail.allocate(count * target.size(TFLITE_EVAL_TENSOR), target.align(TFLITE_EVAL_TENSOR), "TfLiteEvalTensor data")
    node = NODE_AND_REGISTRATION
    tail.allocate(len(graph.ops) * target.size(node), target.align(node), "NodeAndRegistration struct")
    for op in graph.ops:
        if op.type in BUILTIN_DATA:
            struct = BUILTIN_DATA[op.type]
            tail.allocate(target.size(struct), target.align(struct), "Builtin op data")
    for op in graph.ops:
        if op.type in OP_DATA:
            tail.allocate(target.size(OP_DATA[op.type]), ARENA_ALIGNMENT, "Persistent buffer data")
    n_scratch = 0
    for op in graph.ops:
        for size in prepare_buffers(graph, op):
            tail.allocate(size, ARENA_ALIGNMENT, "Persistent buffer data")
        n_scratch += len(scratch_buffers(graph, op, target.pointer_size))
    if n_scratch:
        handle = SCRATCH_BUFFER_HANDLE
        tail.allocate(n_scratch * target.size(handle), target.align(handle), "Scratch buffer handles")
    for tensor in graph.tensors:
        if tensor.variable:
            tail.allocate(tensor.nbytes, ARENA_ALIGNMENT, "TfLiteTensor variable buffer data")
    for indices in (graph.inputs, graph.outputs):
        tail.allocate(target.pointer_size * len(indices), ARENA_ALIGNMENT, "Persistent buffer data")
        for index in indices:
            for size, alignment, category in _persistent_tensor_sizes(graph.tensors[index], target):
                tail.allocate(size, alignment, category)


def struct_sizes(pointer_size: int, compression: bool = False) -> dict[str, int]:
    """``{struct name: sizeof}`` of every modelled struct (:data:`STRUCTS`), for documentation and tests."""
    return {name: struct.size(pointer_size, compression) for name, struct in STRUCTS.items()}

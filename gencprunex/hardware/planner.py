"""TensorFlow Lite Micro's arena planning, re-implemented: buffer lifetimes and the greedy memory planner.

TFLM places every non-persistent buffer (activations and kernel scratch buffers) in the *head* of the
tensor arena. Two steps decide how large that head is:

1. **Lifetimes** (``AllocationInfoBuilder::MarkAllocationLifetimes`` in ``micro_allocation_info.cc``).
   Time is an "allocation scope" counter that starts at 0 and is incremented once before each operator,
   so operator ``i`` (0-based, in execution order) runs at time ``i + 1``:

   - model inputs are created at time 0 (and last used at 0 unless an operator reads them later);
   - an operator's outputs are created at its time (only the first creation counts) and are last used
     at least at its time; its inputs are last used at its time (input index ``-1``, an omitted
     optional tensor, is skipped);
   - a scratch buffer requested by an operator lives exactly at that operator's time;
   - model outputs are last used at time ``n_ops`` (the last operator's time), and a model output that
     nothing created is created then too.

   Intervals are inclusive, so an operator's inputs, outputs and scratch buffers all overlap in time.

2. **Placement** (``GreedyMemoryPlanner::CalculateOffsetsIfNeeded`` in ``greedy_memory_planner.cc``).
   Sizes are rounded up to 16 bytes (``MicroArenaBufferAlignment()``) *before* they reach the planner.
   Buffers are ordered by aligned size, largest first; ties go to the buffer added *later* (TFLM fills its
   sort array from the tail and then runs a stable descending sort). The first buffer goes at offset 0.
   Each next buffer walks the already placed buffers that overlap it in time, in offset order, and takes
   the first gap that fits; otherwise it goes after the furthest end it has seen. The head size is the
   largest ``offset + aligned size``.

Buffers reach the planner in TFLM's ``AddBuffer`` order: tensors by ascending tensor index, then scratch
buffers in request order (operators request them during ``Prepare``, in execution order). That order
matters because it decides ties. Only a single subgraph is modelled (no ``IF``/``WHILE``/``CALL_ONCE``) and
offline-planned offsets are not supported.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: ``tflite::MicroArenaBufferAlignment()``.
ARENA_ALIGNMENT = 16

#: TFLM's ``kUninitializedLifetime``: a tensor that was never created or never used.
UNINITIALIZED = -1


@dataclass(frozen=True)
class Buffer:
    """One buffer handed to the planner; ``first_use``/``last_use`` are inclusive time steps."""

    size: int
    first_use: int
    last_use: int
    name: str = ""

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"buffer {self.name!r}: negative size {self.size}")
        if self.last_use < self.first_use:
            raise ValueError(f"buffer {self.name!r}: last_use {self.last_use} < first_use {self.first_use}")

    def overlaps_in_time(self, other: Buffer) -> bool:
        """Whether both buffers are live at some common time step (inclusive intervals)."""
        return self.first_use <= other.last_use and other.first_use <= self.last_use


def align(size: int, alignment: int = ARENA_ALIGNMENT) -> int:
    """``size`` rounded up to a multiple of ``alignment`` (TFLM's ``AlignSizeUp``)."""
    if alignment <= 0:
        raise ValueError(f"alignment must be positive, got {alignment}")
    if size < 0:
        raise ValueError(f"size must be non-negative, got {size}")
    return -(-size // alignment) * alignment


def _placement_order(sizes: Sequence[int]) -> list[int]:
    """Buffer indices in the order the greedy planner places them: largest first, ties by higher index."""
    # TFLM writes buffer i at position n-1-i, then bubble-sorts descending, swapping only on strict
    # "less than": a stable sort of the reversed index list.
    return sorted(reversed(range(len(sizes))), key=lambda i: -sizes[i])


def _first_fit(
    wanted: int, size: int, buffers: Sequence[Buffer], sizes: Sequence[int], offsets: list[int], by_offset: list[int]
) -> int:
    """Offset for buffer ``wanted``: first gap among time-overlapping placed buffers, in offset order."""
    candidate = 0
    for placed in by_offset:
        if not buffers[placed].overlaps_in_time(buffers[wanted]):
            continue
        if offsets[placed] - candidate >= size:
            break
        candidate = max(candidate, offsets[placed] + sizes[placed])
    return candidate


def plan_offsets(buffers: Sequence[Buffer], alignment: int = ARENA_ALIGNMENT) -> list[int]:
    """Arena offset of every buffer, in input order, exactly as TFLM's ``GreedyMemoryPlanner`` places them.

    ``buffers`` must be in ``AddBuffer`` order (see :meth:`Lifetimes.buffers`); pass ``alignment=1`` to
    feed sizes to the planner unchanged, as TFLM's own planner unit tests do.
    """
    sizes = [align(b.size, alignment) for b in buffers]
    offsets = [0] * len(buffers)
    by_offset: list[int] = []  # placed indices sorted by offset; equal offsets keep placement order
    for wanted in _placement_order(sizes):
        offsets[wanted] = _first_fit(wanted, sizes[wanted], buffers, sizes, offsets, by_offset)
        bisect.insort_right(by_offset, wanted, key=offsets.__getitem__)
    return offsets


def arena_head_size(buffers: Sequence[Buffer], alignment: int = ARENA_ALIGNMENT) -> int:
    """Bytes of arena head the greedy plan needs: ``max(offset + aligned size)``, 0 without buffers."""
    offsets = plan_offsets(buffers, alignment)
    return max((o + align(b.size, alignment) for o, b in zip(offsets, buffers, strict=True)), default=0)


def live_set_lower_bound(buffers: Sequence[Buffer], alignment: int = ARENA_ALIGNMENT) -> int:
    """Largest total aligned size live at one time step: no placement can use less head than this.

    The greedy layout can need more, because of fragmentation.
    """
    events: list[tuple[int, int]] = []
    for b in buffers:
        size = align(b.size, alignment)
        events.append((b.first_use, size))
        events.append((b.last_use + 1, -size))
    best = live = 0
    for _, delta in sorted(events):  # at equal times, releases (negative) sort before acquisitions
        live += delta
        best = max(best, live)
    return best


@dataclass(frozen=True)
class Lifetimes:
    """Lifetimes of one subgraph, as ``MarkAllocationLifetimes`` computes them.

    ``tensors`` maps every tensor that gets created (a model input, an operator output or a model output)
    to ``(first_created, last_used)``. Tensors that are only ever read (weights, biases, variables) are never
    created and are absent: TFLM does not plan them. ``scratch`` holds the scratch buffers in request order
    (ascending operator index, then the order given for that operator), each living at its operator's time.
    """

    n_ops: int
    tensors: dict[int, tuple[int, int]] = field(default_factory=dict)
    scratch: list[Buffer] = field(default_factory=list)

    def buffers(self, tensor_sizes: Mapping[int, int]) -> tuple[list[Buffer], dict[int, int]]:
        """The planner's input in ``AddBuffer`` order, and ``{tensor id: index in that list}``.

        ``tensor_sizes`` gives the byte size (``prod(dims) * sizeof(type)``) of the tensors to plan: the
        non-constant, non-variable ones. Tensors of size 0 are skipped, as TFLM skips them; scratch
        buffers are always planned, whatever their size.
        """
        result: list[Buffer] = []
        index: dict[int, int] = {}
        for tensor_id in sorted(tensor_sizes):
            size = tensor_sizes[tensor_id]
            if size == 0:
                continue
            if tensor_id not in self.tensors:
                raise ValueError(f"tensor {tensor_id} is never created: not a model input, op output or model output")
            first, last = self.tensors[tensor_id]
            index[tensor_id] = len(result)
            result.append(Buffer(size, first, last, name=f"tensor{tensor_id}"))
        return result + list(self.scratch), index


def _mark_used(first: dict[int, int], last: dict[int, int], tensor_id: int, time: int) -> None:
    """``UpdateLastUsed``: the last use only moves forward."""
    first.setdefault(tensor_id, UNINITIALIZED)
    last[tensor_id] = time


def _mark_created(first: dict[int, int], last: dict[int, int], tensor_id: int, time: int) -> None:
    """``UpdateFirstCreated``: only the first creation counts."""
    if first.get(tensor_id, UNINITIALIZED) == UNINITIALIZED:
        first[tensor_id] = time
    last.setdefault(tensor_id, UNINITIALIZED)


def _scratch_buffers(n_ops: int, scratch: Mapping[int, Sequence[int]] | None) -> list[Buffer]:
    """Scratch buffers in request order, each living only at its operator's time ``op + 1``."""
    result: list[Buffer] = []
    for op in sorted(scratch or {}):
        if not 0 <= op < n_ops:
            raise ValueError(f"scratch buffer for operator {op}, but there are {n_ops} operators")
        result.extend(Buffer(size, op + 1, op + 1, name=f"scratch{op}.{k}") for k, size in enumerate(scratch[op]))
    return result


def lifetimes(
    n_ops: int,
    op_inputs: Sequence[Sequence[int]],
    op_outputs: Sequence[Sequence[int]],
    model_inputs: Sequence[int],
    model_outputs: Sequence[int],
    scratch: Mapping[int, Sequence[int]] | None = None,
) -> Lifetimes:
    """Buffer lifetimes of a single-subgraph graph, following TFLM's ``MarkAllocationLifetimes``.

    ``op_inputs[i]``/``op_outputs[i]`` are the tensor ids of operator ``i`` in execution order (input id
    ``-1`` marks an omitted optional input); ``scratch`` is ``{operator index: [scratch sizes in bytes]}``.
    Operator ``i`` runs at time ``i + 1``; model inputs are created at 0; model outputs stay live until
    ``n_ops``. Constants need not be listed anywhere: they are never created, so they get no lifetime.
    """
    if len(op_inputs) != n_ops or len(op_outputs) != n_ops:
        raise ValueError(f"{n_ops} operators but {len(op_inputs)} input lists and {len(op_outputs)} output lists")
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for tensor_id in model_inputs:
        _mark_created(first, last, tensor_id, 0)
        _mark_used(first, last, tensor_id, 0)
    for op, (inputs, outputs) in enumerate(zip(op_inputs, op_outputs, strict=True)):
        time = op + 1
        for tensor_id in outputs:
            if tensor_id < 0:
                raise ValueError(f"operator {op} has output tensor id {tensor_id}")
            _mark_created(first, last, tensor_id, time)
        for tensor_id in inputs:
            if tensor_id >= 0:
                _mark_used(first, last, tensor_id, time)
        for tensor_id in outputs:
            _mark_used(first, last, tensor_id, time)
    for tensor_id in model_outputs:
        _mark_created(first, last, tensor_id, n_ops)
        _mark_used(first, last, tensor_id, n_ops)
    tensors = {t: (first[t], last[t]) for t in sorted(first) if first[t] != UNINITIALIZED}
    return Lifetimes(n_ops, tensors, _scratch_buffers(n_ops, scratch))

"""TFLM buffer lifetimes and greedy arena planning (gencprunex.hardware.planner); pure Python, no TensorFlow."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gencprunex.hardware.planner import (
    Buffer,
    align,
    arena_head_size,
    lifetimes,
    live_set_lower_bound,
    plan_offsets,
)

# --------------------------------------------------------------------------- alignment


@pytest.mark.parametrize(("size", "expected"), [(0, 0), (1, 16), (15, 16), (16, 16), (17, 32), (100, 112)])
def test_align_to_16(size, expected):
    assert align(size) == expected


def test_align_other_alignments_and_errors():
    assert align(5, 1) == 5
    assert align(5, 4) == 8
    with pytest.raises(ValueError):
        align(5, 0)
    with pytest.raises(ValueError):
        align(-1)


def test_head_and_bound_use_aligned_sizes():
    buffers = [Buffer(1, 0, 0), Buffer(17, 0, 0)]
    assert plan_offsets(buffers) == [32, 0]
    assert arena_head_size(buffers) == 48
    assert live_set_lower_bound(buffers) == 48
    assert arena_head_size(buffers, alignment=1) == 18


def test_buffer_validation():
    with pytest.raises(ValueError):
        Buffer(-1, 0, 0)
    with pytest.raises(ValueError):
        Buffer(16, 2, 1)


# --------------------------------------------------------------------------- lifetimes


def test_chain_lifetimes():
    # t0 -> op0 -> t1 -> op1 -> t2; tensors 10, 11 are weights (only read, never created).
    lt = lifetimes(2, [[0, 10], [1, 11]], [[1], [2]], model_inputs=[0], model_outputs=[2])
    assert lt.tensors == {0: (0, 1), 1: (1, 2), 2: (2, 2)}
    assert lt.scratch == []


def test_branch_input_stays_live():
    # Residual block: op2 adds the model input back, so t0 lives from 0 to op2's time (3).
    lt = lifetimes(3, [[0], [1], [0, 2]], [[1], [2], [3]], model_inputs=[0], model_outputs=[3])
    assert lt.tensors == {0: (0, 3), 1: (1, 2), 2: (2, 3), 3: (3, 3)}


def test_model_output_lives_to_the_end():
    # t1 is both read by op1 and a model output: it stays live until n_ops = 3.
    lt = lifetimes(3, [[0], [1], [2]], [[1], [2], [3]], model_inputs=[0], model_outputs=[1, 3])
    assert lt.tensors == {0: (0, 1), 1: (1, 3), 2: (2, 3), 3: (3, 3)}


def test_tflm_simple_mock_model():
    # Graph and expectations of TFLM's micro_allocation_info_test.cc, TestSingleSubgraph: tensor 1 is a weight
    # (first_created stays -1 there, so it is not planned and is absent here).
    lt = lifetimes(2, [[0, 1], [0, 1]], [[2], [3]], model_inputs=[0], model_outputs=[2, 3])
    assert lt.tensors == {0: (0, 2), 2: (1, 2), 3: (2, 2)}


def test_unused_input_and_omitted_optional_input():
    lt = lifetimes(1, [[0, -1]], [[2]], model_inputs=[0, 1], model_outputs=[2])
    assert lt.tensors == {0: (0, 1), 1: (0, 0), 2: (1, 1)}


def test_scratch_lives_only_during_its_op():
    lt = lifetimes(3, [[0], [1], [2]], [[1], [2], [3]], [0], [3], scratch={2: [8], 1: [100, 20]})
    assert [(b.size, b.first_use, b.last_use) for b in lt.scratch] == [(100, 2, 2), (20, 2, 2), (8, 3, 3)]
    assert [b.name for b in lt.scratch] == ["scratch1.0", "scratch1.1", "scratch2.0"]


def test_lifetime_errors():
    with pytest.raises(ValueError):
        lifetimes(2, [[0]], [[1]], [0], [1])
    with pytest.raises(ValueError):
        lifetimes(1, [[0]], [[1]], [0], [1], scratch={1: [16]})
    with pytest.raises(ValueError):
        lifetimes(1, [[0]], [[-1]], [0], [])
    lt = lifetimes(1, [[0, 5]], [[1]], [0], [1])
    with pytest.raises(ValueError, match="never created"):
        lt.buffers({0: 4, 1: 4, 5: 4})


def test_buffers_in_add_order_skip_empty_tensors():
    lt = lifetimes(2, [[0], [1]], [[1], [2]], [0], [2], scratch={0: [0, 40]})
    buffers, index = lt.buffers({2: 12, 0: 100, 1: 0})
    assert [(b.name, b.size, b.first_use, b.last_use) for b in buffers] == [
        ("tensor0", 100, 0, 1),
        ("tensor2", 12, 2, 2),
        ("scratch0.0", 0, 1, 1),
        ("scratch0.1", 40, 1, 1),
    ]
    assert index == {0: 0, 2: 1}


def test_chain_with_scratch_end_to_end():
    # Hand-worked: aligned sizes t0=112, t1=64, t2=48, t3=16, scratch=32; placement order t0, t1, t2, s, t3.
    lt = lifetimes(3, [[0, 9], [1], [2]], [[1], [2], [3]], [0], [3], scratch={1: [30]})
    buffers, _ = lt.buffers({0: 100, 1: 64, 2: 40, 3: 10})
    assert [(b.first_use, b.last_use) for b in buffers] == [(0, 1), (1, 2), (2, 3), (3, 3), (2, 2)]
    assert plan_offsets(buffers) == [0, 112, 0, 48, 48]
    assert arena_head_size(buffers) == 176
    assert live_set_lower_bound(buffers) == 176


# --------------------------------------------------------------------------- greedy placement


def test_empty_and_single():
    assert plan_offsets([]) == []
    assert arena_head_size([]) == 0
    assert live_set_lower_bound([]) == 0
    assert plan_offsets([Buffer(5, 3, 7)]) == [0]
    assert arena_head_size([Buffer(5, 3, 7)]) == 16


def test_tflm_greedy_basics():
    # TFLM greedy_memory_planner_test.cc, TestGreedyBasics (raw sizes: alignment 1).
    buffers = [Buffer(10, 0, 1), Buffer(20, 2, 3)]
    assert plan_offsets(buffers, alignment=1) == [0, 0]
    assert arena_head_size(buffers, alignment=1) == 20


def test_tflm_greedy_medium():
    # TFLM greedy_memory_planner_test.cc, TestGreedyMedium.
    buffers = [Buffer(10, 0, 1), Buffer(20, 1, 2), Buffer(30, 2, 3), Buffer(40, 3, 4), Buffer(50, 0, 1)]
    assert plan_offsets(buffers, alignment=1) == [50, 70, 40, 0, 0]
    assert arena_head_size(buffers, alignment=1) == 90


def test_tflm_overlap_case():
    # TFLM greedy_memory_planner_test.cc, TestOverlapCase: 100@0, 50@0, then 20 must go above the 100.
    buffers = [Buffer(100, 0, 1), Buffer(50, 2, 3), Buffer(20, 1, 2)]
    assert plan_offsets(buffers, alignment=1) == [0, 0, 100]
    assert arena_head_size(buffers, alignment=1) == 120


def test_tflm_person_detection_buffers():
    # TFLM greedy_memory_planner_test.cc, TestPersonDetectionModel: no overlaps, head below 241027.
    spec = [(9216, 0, 29), (3, 28, 29), (256, 27, 28), (2304, 26, 27), (2304, 25, 26), (2304, 24, 25)]
    spec += [(1152, 23, 24)] + [(4608, t, t + 1) for t in range(22, 11, -1)] + [(2304, 11, 12)]
    spec += [(9216, 10, 11), (9216, 9, 10), (9216, 8, 9), (4608, 7, 8), (18432, 6, 7), (18432, 5, 6)]
    spec += [(18432, 4, 5), (9216, 3, 4), (36864, 2, 3), (18432, 1, 2), (18432, 0, 1)]
    buffers = [Buffer(*s) for s in spec]
    assert len(buffers) == 30
    _assert_no_overlap(buffers, plan_offsets(buffers, alignment=1), alignment=1)
    assert arena_head_size(buffers, alignment=1) < 241027


def test_tie_goes_to_later_buffer():
    # Equal sizes overlapping in time: the buffer added later is placed first, at offset 0.
    assert plan_offsets([Buffer(16, 0, 1), Buffer(16, 1, 2)]) == [16, 0]
    # Order 2, 1, 0: #2@0, #1 (overlaps #2) @16, #0 overlaps only #1 and fits in the gap below it, at 0.
    assert plan_offsets([Buffer(16, 0, 1), Buffer(16, 1, 2), Buffer(16, 2, 2)]) == [0, 16, 0]


def test_tie_is_on_aligned_sizes():
    # 16 and 10 bytes both align to 16, so they tie and the later one (10 bytes) goes first.
    buffers = [Buffer(16, 0, 0), Buffer(10, 0, 0)]
    assert plan_offsets(buffers) == [16, 0]
    assert plan_offsets(buffers, alignment=1) == [0, 16]


def test_first_gap_that_fits():
    # Placement order A(64), B(48), then the 32s, later first: D, C.
    # A(t0-1)@0; B(t1-2) overlaps A, no gap below it, so B@64.
    # D(t1) overlaps A and B: no gap before A (0 bytes) nor between A and B (0 bytes), so after B, at 112.
    # C(t2-3) overlaps only B (A ended at t1, D lives at t1): the gap [0, 64) below B fits it, so C@0.
    buffers = [Buffer(64, 0, 1), Buffer(48, 1, 2), Buffer(32, 2, 3), Buffer(32, 1, 1)]
    assert plan_offsets(buffers) == [0, 64, 0, 112]
    assert arena_head_size(buffers) == 144
    assert live_set_lower_bound(buffers) == 144


def test_greedy_exceeds_live_set_lower_bound():
    # Four 16-byte buffers placed in order D, C, B, A (ties: later first): D@0 (t3), C@0 (t1),
    # B@16 (t1-2, above C), A (t2-3) overlaps D@0 and B@16, so it ends up at 32.
    # At most two are live at any time (32 bytes) and A@0, B@16, C@0, D@16 would fit in 32.
    buffers = [Buffer(16, 2, 3), Buffer(16, 1, 2), Buffer(16, 1, 1), Buffer(16, 3, 3)]
    assert plan_offsets(buffers) == [32, 16, 0, 0]
    assert live_set_lower_bound(buffers) == 32
    assert arena_head_size(buffers) == 48 > live_set_lower_bound(buffers)


def test_live_set_lower_bound_inclusive_intervals():
    # Touching intervals overlap (inclusive), disjoint ones do not.
    assert live_set_lower_bound([Buffer(16, 0, 1), Buffer(16, 1, 2)]) == 32
    assert live_set_lower_bound([Buffer(16, 0, 1), Buffer(16, 2, 3)]) == 16


# --------------------------------------------------------------------------- properties


def _assert_no_overlap(buffers, offsets, alignment=16):
    sizes = [align(b.size, alignment) for b in buffers]
    for i, a in enumerate(buffers):
        for j in range(i + 1, len(buffers)):
            if a.overlaps_in_time(buffers[j]) and sizes[i] and sizes[j]:
                assert offsets[i] + sizes[i] <= offsets[j] or offsets[j] + sizes[j] <= offsets[i], (i, j)


def _tflm_literal(buffers, alignment):
    """Line-by-line port of GreedyMemoryPlanner::CalculateOffsetsIfNeeded (linked list, bubble sort): an oracle."""
    n = len(buffers)
    req = [(align(b.size, alignment), b.first_use, b.last_use) for b in buffers]
    sizes_sorted, ids_sorted = [0] * n, [0] * n
    for i in range(n):
        sizes_sorted[n - 1 - i], ids_sorted[n - 1 - i] = req[i][0], i
    swapped = True
    while swapped:
        swapped = False
        for i in range(1, n):
            if sizes_sorted[i - 1] < sizes_sorted[i]:
                sizes_sorted[i - 1], sizes_sorted[i] = sizes_sorted[i], sizes_sorted[i - 1]
                ids_sorted[i - 1], ids_sorted[i] = ids_sorted[i], ids_sorted[i - 1]
                swapped = True
    offsets = [-1] * n
    entries = [{"offset": 0, "req": ids_sorted[0], "next": -1}]  # entry 0 is the first
    offsets[ids_sorted[0]] = 0
    first = 0

    def next_active(start, f, last):
        cand = first if start is None else entries[start]["next"]
        while cand != -1:
            _, ef, el = req[entries[cand]["req"]]
            if not (ef > last or f > el):
                return cand
            cand = entries[cand]["next"]
        return None

    for i in range(1, n):
        bid = ids_sorted[i]
        size, f, last = req[bid]
        candidate, prior = 0, None
        while True:
            nxt = next_active(prior, f, last)
            if prior is not None:
                candidate = max(candidate, entries[prior]["offset"] + req[entries[prior]["req"]][0])
            if nxt is None or entries[nxt]["offset"] - candidate >= size:
                break
            prior = nxt
        offsets[bid] = candidate
        entries.append({"offset": candidate, "req": bid, "next": -1})
        new = len(entries) - 1
        if entries[first]["offset"] > candidate:
            entries[new]["next"], first = first, new
        else:
            cur = first
            while entries[cur]["next"] != -1 and entries[entries[cur]["next"]]["offset"] <= candidate:
                cur = entries[cur]["next"]
            entries[new]["next"], entries[cur]["next"] = entries[cur]["next"], new
    return offsets


@st.composite
def buffer_lists(draw):
    n = draw(st.integers(0, 12))
    result = []
    for _ in range(n):
        first = draw(st.integers(0, 8))
        result.append(Buffer(draw(st.integers(0, 200)), first, first + draw(st.integers(0, 4))))
    return result


@settings(max_examples=300, deadline=None)
@given(buffer_lists(), st.sampled_from([1, 4, 16]))
def test_property_valid_layout_above_lower_bound(buffers, alignment):
    offsets = plan_offsets(buffers, alignment)
    _assert_no_overlap(buffers, offsets, alignment)
    head = arena_head_size(buffers, alignment)
    assert live_set_lower_bound(buffers, alignment) <= head <= sum(align(b.size, alignment) for b in buffers)
    assert all(o % alignment == 0 for o in offsets)
    if buffers:
        assert offsets == _tflm_literal(buffers, alignment)


@st.composite
def graphs(draw):
    """A random single-subgraph DAG: each op reads earlier tensors and writes new ones."""
    n_inputs = draw(st.integers(1, 3))
    tensors = list(range(n_inputs))
    op_inputs, op_outputs = [], []
    for _ in range(draw(st.integers(1, 6))):
        op_inputs.append([*draw(st.lists(st.sampled_from(tensors), min_size=1, max_size=3)), 100])  # 100: a weight
        outputs = list(range(len(tensors), len(tensors) + draw(st.integers(1, 2))))
        op_outputs.append(outputs)
        tensors += outputs
    model_outputs = draw(st.lists(st.sampled_from(tensors), min_size=1, max_size=2, unique=True))
    scratch = draw(st.dictionaries(st.integers(0, len(op_inputs) - 1), st.lists(st.integers(1, 64), max_size=2)))
    return len(op_inputs), op_inputs, op_outputs, list(range(n_inputs)), model_outputs, scratch, tensors


@settings(max_examples=200, deadline=None)
@given(graphs())
def test_property_lifetimes_cover_every_op(graph):
    n_ops, op_inputs, op_outputs, model_inputs, model_outputs, scratch, tensors = graph
    lt = lifetimes(n_ops, op_inputs, op_outputs, model_inputs, model_outputs, scratch)
    assert set(lt.tensors) == set(tensors)  # the weight (100) is never created
    for op in range(n_ops):
        for t in [*op_inputs[op][:-1], *op_outputs[op]]:
            first, last = lt.tensors[t]
            assert first <= op + 1 <= last
    for t in model_outputs:
        assert lt.tensors[t][1] == n_ops
    for t in model_inputs:
        assert lt.tensors[t][0] == 0
    buffers, index = lt.buffers(dict.fromkeys(tensors, 24))
    assert len(buffers) == len(tensors) + sum(len(v) for v in scratch.values())
    assert sorted(index) == sorted(tensors)
    _assert_no_overlap(buffers, plan_offsets(buffers))

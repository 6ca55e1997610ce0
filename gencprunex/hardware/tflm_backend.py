"""Measuring a ``.tflite`` model with the real TensorFlow Lite Micro interpreter (the ``tflite-micro`` wheel).

The interpreter runs in a child Python process: TFLM aborts the whole process on some bad models, and after one
failed allocation later interpreters in the same process can fail too. The child builds an interpreter (which runs
``AllocateTensors``) and calls ``print_allocations()``, which writes the ``RecordingMicroAllocator`` report to C's
stderr; the parent parses it.

The wheel is a 64-bit build: its tail holds 8-byte pointers and the larger recording allocator. The 32-bit figure is
converted with the model of :mod:`.tflm_arena`: ``tail_32bit = tail_host - tail_bytes(g, 8) + tail_bytes(g, 4)``,
which keeps whatever the model misses on the host and swaps the modelled host structs for their 32-bit sizes.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

from ..errors import GencPruneXError, ModelError
from . import tflm_arena
from .planner import ARENA_ALIGNMENT
from .tflite_file import read_tflite

#: Arena handed to the interpreter when none is given: at least this, or twice the modelled need.
DEFAULT_ARENA_BYTES = 64 * 1024 * 1024

_INSTALL_HINT = "pip install --pre tflite-micro (or pip install 'gencprunex[tflm]')"

_CHILD = """
import sys
from tflite_micro import runtime
data = sys.stdin.buffer.read()
interpreter = runtime.Interpreter.from_bytes(data, arena_size=int(sys.argv[1]))
sys.stderr.flush()
interpreter.print_allocations()
"""

_HEAD_TAIL = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_CATEGORY = re.compile(r"'([^']+)' used (\d+) bytes with alignment overhead \(requested (\d+) bytes for (\d+)")


class TflmUnavailableError(GencPruneXError):
    """The ``tflite-micro`` package is not installed."""


def tflm_available() -> bool:
    """Whether the ``tflite-micro`` interpreter can be imported."""
    return importlib.util.find_spec("tflite_micro") is not None


def run_tflm(tflite_bytes: bytes, arena_size: int | None = None, minimal_arena: bool = False, timeout: float = 300.0):
    """Arena use of ``tflite_bytes`` in the real TFLM interpreter, and its conversion to a 32-bit MCU.

    Returns a dict:

    - ``head``: bytes of planned (non-persistent) arena, the same on every target;
    - ``tail_host``: bytes of persistent arena in the 64-bit wheel; ``pointer_size_host``: 8;
    - ``tail_32bit``: ``tail_host - tail_bytes(g, 8) + tail_bytes(g, 4)`` (:mod:`.tflm_arena`'s model of the
      host, recording allocator and compression build included, swapped for a 32-bit firmware with a plain
      ``MicroAllocator``); ``ram_32bit``: ``head + tail_32bit``;
    - ``total_host``: ``head + tail_host``;
    - ``categories``: ``{category: bytes used}`` as TFLM prints them ("TfLiteEvalTensor data", ...), and
      ``lines``: the printed report;
    - ``arena_min_host`` (only with ``minimal_arena=True``): the smallest arena size (16-byte steps) with which
      ``AllocateTensors`` succeeds on the host; usually ``total_host``, more when the planner's temporary data does
      not fit in the head.

    Raises:
        TflmUnavailableError: ``tflite-micro`` is not installed.
        ModelError: the bytes are not a single-subgraph TFLite model, or TFLM rejects the model (its message is
            passed on, e.g. ``Didn't find op for builtin opcode 'TILE'``).
    """
    if not tflm_available():
        raise TflmUnavailableError(f"measuring with TFLM needs the tflite-micro interpreter: {_INSTALL_HINT}")
    graph = read_tflite(tflite_bytes)
    modelled_host = tflm_arena.arena_bytes(graph, 8)
    size = arena_size or max(DEFAULT_ARENA_BYTES, 2 * modelled_host)
    ok, report = _probe(tflite_bytes, size, timeout)
    if not ok:
        raise ModelError(f"TFLM rejected the model: {report}")
    result = _parse_report(report)
    result["tail_32bit"] = result["tail_host"] - tflm_arena.tail_bytes(graph, 8) + tflm_arena.tail_bytes(graph, 4)
    result["ram_32bit"] = result["head"] + result["tail_32bit"]
    if minimal_arena:
        result["arena_min_host"] = _minimal_arena(tflite_bytes, result["total_host"], size, timeout)
    return result


def _probe(tflite_bytes: bytes, arena_size: int, timeout: float) -> tuple[bool, str]:
    """Run the child once: ``(True, report)`` or ``(False, one-line reason)``."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(int(arena_size))],
            input=bytes(tflite_bytes),
            capture_output=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, f"the TFLM interpreter did not finish within {timeout:g} s"
    stderr = done.stderr.decode("utf-8", "replace")
    if done.returncode == 0 and _HEAD_TAIL.search(stderr):
        return True, stderr
    return False, _failure_reason(stderr, done.returncode)


def _failure_reason(stderr: str, returncode: int) -> str:
    """TFLM's own messages (before any Python traceback), joined on one line."""
    if "No module named 'tflite_micro'" in stderr:
        return f"tflite-micro cannot be imported by {sys.executable}: {_INSTALL_HINT}"
    messages: list[str] = []
    for line in stderr.splitlines():
        if line.startswith("Traceback"):
            break
        line = line.strip()
        if line and line not in messages:
            messages.append(line)
    if not messages:  # only a traceback: use its last line
        tail = [line.strip() for line in stderr.splitlines() if line.strip()]
        messages = tail[-1:]
    reason = "; ".join(messages) or "no message"
    if returncode < 0:
        reason = f"the interpreter aborted (signal {-returncode}): {reason}"
    return reason


def _parse_report(report: str) -> dict:
    sizes = {name: int(value) for name, value in _HEAD_TAIL.findall(report)}
    categories = {name: int(used) for name, used, _, _ in _CATEGORY.findall(report)}
    lines = [line.strip() for line in report.splitlines() if line.startswith("[RecordingMicroAllocator]")]
    return {
        "head": sizes["head"],
        "tail_host": sizes["tail"],
        "pointer_size_host": 8,
        "total_host": sizes["head"] + sizes["tail"],
        "categories": categories,
        "lines": lines,
    }


def _minimal_arena(tflite_bytes: bytes, low: int, high: int, timeout: float) -> int:
    """Smallest arena (multiple of 16) for which allocation succeeds, searched between ``low`` and ``high``."""
    step = ARENA_ALIGNMENT
    low = -(-low // step) * step
    if _probe(tflite_bytes, low, timeout)[0]:
        return low
    high = -(-high // step) * step
    while high - low > step:  # invariant: low fails, high succeeds
        middle = (low + high) // 2 // step * step
        if _probe(tflite_bytes, middle, timeout)[0]:
            high = middle
        else:
            low = middle
    return high

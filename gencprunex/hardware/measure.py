"""``measure``: RAM, Flash and MACs of the converted model itself.

The model is exported with :func:`gencprunex.export.to_tflite` and the flatbuffer is read back: Flash is
the file size, MACs come from the operators, RAM from TFLM's planner and persistent-allocation rules
applied to the real tensors and operators. With ``backend="tflm"`` the real TFLite Micro interpreter
(the optional ``tflite-micro`` package) reports the arena instead.
"""

from __future__ import annotations

from ..errors import ParameterError
from ..export import to_tflite
from .footprint import MCU_POINTER_SIZE, footprint_of
from .profile import Footprint
from .tflite_file import read_tflite

BACKENDS = ("analytic", "tflm")


def measure_tflite(tflite_bytes: bytes, backend: str = "analytic") -> Footprint:
    """The footprint of a converted ``.tflite`` flatbuffer."""
    if backend not in BACKENDS:
        raise ParameterError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    graph = read_tflite(tflite_bytes)
    footprint = footprint_of(graph, len(tflite_bytes), "measure")
    if backend == "tflm":
        from .tflm_backend import run_tflm

        report = run_tflm(tflite_bytes)
        footprint.ram = int(report["ram_32bit"])
        footprint.details.update(
            method="measure/tflm",
            arena_head=int(report["head"]),
            arena_tail=int(report["tail_32bit"]),
            tflm_host_tail=int(report["tail_host"]),
            note="TFLM ran on a 64-bit host; its persistent tail is converted to 32-bit pointers",
            pointer_size=MCU_POINTER_SIZE,
        )
    return footprint


def measure(
    model,
    representative_data=None,
    input_type: str = "int8",
    output_type: str = "int8",
    backend: str = "analytic",
) -> Footprint:
    """Convert ``model`` to int8 TFLite (batch 1) and measure the result."""
    if backend not in BACKENDS:
        raise ParameterError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    data = to_tflite(model, representative_data, input_type=input_type, output_type=output_type)
    return measure_tflite(data, backend)

"""Hardware budgets (:class:`HardwareProfile`) and what a model needs (:class:`Footprint`).

Units are bytes for RAM and Flash and a plain count for MACs, everywhere in the API. Human output
says "KiB" for 1024 bytes and "KB" for 1000 bytes.
"""

from __future__ import annotations

import difflib
import math
import numbers
from dataclasses import asdict, dataclass, field

from ..errors import ParameterError

KIB = 1024
BUDGETS = ("ram", "flash", "macs")


@dataclass
class Footprint:
    """What one inference of a model needs on TensorFlow Lite Micro.

    ``ram``: tensor arena bytes; ``flash``: bytes of the ``.tflite`` flatbuffer; ``macs``: multiply-
    accumulates per inference; ``params``: weight count; ``layers``: one dict per op (op type, output
    shape, MACs, weight bytes, activation bytes); ``details``: how the figures were obtained (arena head
    and tail, method, pointer size, skipped layers).
    """

    ram: int
    flash: int
    macs: int
    params: int
    layers: list[dict] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class HardwareProfile:
    """The RAM, Flash and MACs a model may use on one target; ``None`` means unlimited.

    ``ram`` and ``flash`` are bytes left to the model after firmware, runtime and stack;
    ``macs`` is a count per inference (a latency budget in disguise).
    """

    ram: int | None = None
    flash: int | None = None
    macs: int | None = None
    name: str = "custom"
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for budget in BUDGETS:
            value = getattr(self, budget)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ParameterError(f"{budget} limit of profile '{self.name}' must be a number, got {value!r}")
            if value <= 0:
                raise ParameterError(f"{budget} limit of profile '{self.name}' must be > 0, got {value}")

    def violations(self, footprint: Footprint) -> dict[str, float]:
        """``{budget: amount over}`` for every budget the footprint exceeds (empty when it fits)."""
        over = {}
        for budget in BUDGETS:
            limit = getattr(self, budget)
            used = getattr(footprint, budget)
            if limit is not None and used > limit:
                over[budget] = used - limit
        return over

    def estimate(self, model_or_graph, plan=None, **options) -> Footprint:
        """Footprint predicted from the Keras graph, no conversion (see :func:`gencprunex.hardware.estimate`).

        ``hw.estimate(model)`` or ``hw.estimate(graph, plan)`` with a pruner's ``graph_`` and ``plan_``;
        options: ``input_type``, ``output_type`` (default int8), ``strict`` (default True), ``layers``.
        """
        from .estimate import estimate

        return estimate(model_or_graph, plan, **options)

    def measure(self, model, representative_data=None, **options) -> Footprint:
        """Footprint of the converted int8 model (see :func:`gencprunex.hardware.measure`).

        Options: ``input_type``, ``output_type`` (default int8), ``backend`` ("analytic" or "tflm").
        """
        from .measure import measure

        return measure(model, representative_data, **options)

    def fits(self, footprint: Footprint) -> bool:
        """True when the footprint is within every budget."""
        return not self.violations(footprint)

    @classmethod
    def preset(cls, name: str) -> HardwareProfile:
        """A profile of a real board, by name (see :meth:`presets`)."""
        key = name.strip().lower()
        if key not in PRESETS:
            close = difflib.get_close_matches(key, list(PRESETS), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ParameterError(f"unknown preset '{name}'; {hint}known presets: {', '.join(PRESETS)}")
        return PRESETS[key]

    @staticmethod
    def presets() -> dict[str, HardwareProfile]:
        """Every preset, by name."""
        return dict(PRESETS)


def _board(name: str, ram_kib: int, ram_reserve_kib: int, flash_kib: int, flash_reserve_kib: int, source: str):
    return HardwareProfile(
        ram=(ram_kib - ram_reserve_kib) * KIB,
        flash=(flash_kib - flash_reserve_kib) * KIB,
        name=name,
        source=f"{source}; reserved for firmware, runtime and stack: {ram_reserve_kib} KiB RAM, "
        f"{flash_reserve_kib} KiB Flash",
    )


PRESETS: dict[str, HardwareProfile] = {
    "nano33ble": _board(
        "nano33ble", 256, 64, 1024, 256, "Arduino Nano 33 BLE Sense, nRF52840: 256 KiB SRAM, 1 MiB Flash (Mbed OS)"
    ),
    "stm32f746": _board(
        "stm32f746", 320, 64, 1024, 128, "STM32F746G Discovery: 320 KiB SRAM (SRAM1+SRAM2+DTCM), 1 MiB Flash"
    ),
    "esp32s3": _board(
        "esp32s3", 512, 192, 8192, 1024, "ESP32-S3 module: 512 KiB SRAM, 8 MiB external Flash (ESP-IDF, Wi-Fi off)"
    ),
    "rp2040": _board("rp2040", 264, 40, 2048, 256, "Raspberry Pi Pico, RP2040: 264 KiB SRAM, 2 MiB external Flash"),
    "efr32mg24": _board(
        "efr32mg24", 256, 64, 1536, 512, "Silicon Labs EFR32MG24: 256 KiB RAM, 1536 KiB Flash (radio stack included)"
    ),
    "seed-vww": HardwareProfile(
        ram=75 * KIB,
        flash=100 * KIB,
        macs=1_500_000,
        name="seed-vww",
        source="the original GenCPruneX Visual Wake Words budget: 75 KiB RAM, 100 KiB Flash, 1.5M MACs",
    ),
}

"""How close estimate() and measure() come to TensorFlow Lite Micro, and how much faster estimate() is.

For a zoo of TinyML models (the seed's MobileNet, a DS-CNN keyword spotter, a 1-D CNN, an FC autoencoder,
a VGG with Flatten, a small CNN, ResNet-8) and their FixedPruner(0.5) variants, with trained-like weight
statistics: RAM / Flash / MACs from ``estimate`` (Keras graph only), from ``measure`` (converted flatbuffer),
and, when the ``tflite-micro`` package is installed, from the real TFLM interpreter (64-bit host, tail
converted to 32-bit). Prints JSON (and a markdown table with --markdown). Times are medians of the same run.

    python benchmarks/footprint_fidelity.py [--markdown] [--repeats 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

from gencprunex import FixedPruner, zoo
from gencprunex.export import to_tflite
from gencprunex.hardware.estimate import estimate
from gencprunex.hardware.measure import measure_tflite
from gencprunex.hardware.tflm_backend import run_tflm, tflm_available

MODELS = ("seed_mobilenet", "ds_cnn_kws", "time_series_cnn", "dense_autoencoder", "vgg_small", "small_cnn", "resnet8")


def _median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _error(value, reference) -> float | None:
    return None if reference in (None, 0) else round(100.0 * (value - reference) / reference, 2)


def _case(name: str, ratio: float, with_tflm: bool) -> dict:
    keras.utils.set_random_seed(0)
    model = zoo.with_trained_statistics(getattr(zoo, name)())
    pruner = FixedPruner(ratio).fit(model)
    target = pruner.transform() if ratio else model
    data = np.random.default_rng(0).normal(0.0, 1.0, (16, *model.inputs[0].shape[1:])).astype("float32")
    tflite = to_tflite(target, data)
    est = estimate(pruner.graph_, pruner.plan_, layers=False)
    meas = measure_tflite(tflite)
    row = {
        "model": name,
        "ratio": ratio,
        "macs": meas.macs,
        "macs_exact": est.macs == meas.macs,
        "flash_measured": meas.flash,
        "flash_estimated": est.flash,
        "flash_error_pct": _error(est.flash, meas.flash),
        "ram_measured": meas.ram,
        "ram_estimated": est.ram,
        "ram_error_pct": _error(est.ram, meas.ram),
        "ram_tflm": None,
        "tflm": None,
    }
    if with_tflm:
        try:
            report = run_tflm(tflite)
        except Exception as error:
            row["tflm"] = str(error).splitlines()[0][:120]
        else:
            row["ram_tflm"] = int(report["ram_32bit"])
            row["tflm"] = "ok"
            row["measure_vs_tflm_ram_pct"] = _error(meas.ram, row["ram_tflm"])
            row["estimate_vs_tflm_ram_pct"] = _error(est.ram, row["ram_tflm"])
    return row


def _timing(repeats: int) -> dict:
    model = zoo.with_trained_statistics(zoo.seed_mobilenet())
    pruner = FixedPruner(0.5).fit(model)
    pruned = pruner.transform()
    data = np.random.default_rng(0).normal(0.0, 1.0, (16, 96, 96, 3)).astype("float32")
    estimate(pruner.graph_, pruner.plan_, layers=False)  # builds the cached conversion template
    per_estimate = _median_seconds(lambda: estimate(pruner.graph_, pruner.plan_, layers=False), repeats)
    per_measure = _median_seconds(lambda: measure_tflite(to_tflite(pruned, data)), 3)
    return {
        "model": "seed_mobilenet pruned 0.5",
        "estimate_ms": round(per_estimate * 1000, 3),
        "export_and_measure_ms": round(per_measure * 1000, 1),
        "speedup": round(per_measure / per_estimate, 1),
    }


def _markdown(rows: list[dict], timing: dict) -> str:
    lines = [
        "| model | ratio | MACs (exact) | Flash measured | Flash est. (err %) | RAM measured | RAM est. (err %) "
        "| RAM TFLM (measure err %) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        tflm = f"{r['ram_tflm']:,} ({r['measure_vs_tflm_ram_pct']:+})" if r["ram_tflm"] else (r["tflm"] or "not run")
        lines.append(
            f"| {r['model']} | {r['ratio']} | {r['macs']:,} ({'yes' if r['macs_exact'] else 'NO'}) "
            f"| {r['flash_measured']:,} | {r['flash_estimated']:,} ({r['flash_error_pct']:+}) "
            f"| {r['ram_measured']:,} | {r['ram_estimated']:,} ({r['ram_error_pct']:+}) | {tflm} |"
        )
    lines.append(
        f"\nestimate(): {timing['estimate_ms']} ms per call; export + measure: {timing['export_and_measure_ms']} ms; "
        f"{timing['speedup']}x faster ({timing['model']})."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--no-tflm", action="store_true", help="skip the TFLM interpreter even when installed")
    args = parser.parse_args()
    with_tflm = tflm_available() and not args.no_tflm
    rows = [_case(name, ratio, with_tflm) for name in MODELS for ratio in (0.0, 0.5)]
    timing = _timing(args.repeats)
    worst = {
        "flash_error_pct": max(abs(r["flash_error_pct"]) for r in rows),
        "ram_error_pct": max(abs(r["ram_error_pct"]) for r in rows),
        "macs_all_exact": all(r["macs_exact"] for r in rows),
    }
    if with_tflm:
        ran = [r for r in rows if r["ram_tflm"]]
        worst["measure_vs_tflm_ram_pct"] = max((abs(r["measure_vs_tflm_ram_pct"]) for r in ran), default=None)
        worst["estimate_vs_tflm_ram_pct"] = max((abs(r["estimate_vs_tflm_ram_pct"]) for r in ran), default=None)
    print(json.dumps({"rows": rows, "worst": worst, "timing": timing, "tflm_installed": with_tflm}, indent=1))
    if args.markdown:
        print(_markdown(rows, timing))


if __name__ == "__main__":
    main()

"""``gencprunex demo``: the original tool's table, measured, on bundled data.

Trains the seed's MobileNet (alpha 0.25, 96x96x3, head 64-32-classes) on the bundled handwritten digits, then
prunes it four ways — Baseline, Fixed 0.5, Dynamic (a given ratio list), Genetic under the "seed-vww" budgets —
fine-tunes each the same way, and measures accuracy on the held-out test split and RAM, Flash and MACs on the
exported int8 model. Writes ``demo_results.json``, ``demo_results.md`` and ``pareto.png``.
:func:`run_table` does the same for any :class:`~gencprunex.tasks.TableTask` (``benchmarks/seed_table.py`` runs
it on the original tool's own data when present).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .hardware.measure import measure
from .hardware.profile import Footprint, HardwareProfile
from .tasks import TableTask, digits_task


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo; ``quick()`` is a seconds-long version for tests."""

    size: int = 96
    samples: int | None = None
    epochs: int = 25
    finetune_epochs: int = 5
    learning_rate: float = 3e-3
    population: int = 16
    generations: int = 8
    seed: int = 0

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(size=32, samples=200, epochs=1, finetune_epochs=1, population=8, generations=0)


def run_demo(output: str | os.PathLike, settings: DemoSettings = DemoSettings(), log=print) -> dict:
    """Run the demo, write its files into ``output`` and return the results (also what the JSON holds)."""
    task = digits_task(size=settings.size, samples=settings.samples, seed=settings.seed)
    return run_table(task, output, settings, log=log)


def run_table(task: TableTask, output: str | os.PathLike, settings: DemoSettings = DemoSettings(), log=print) -> dict:
    """Train ``task``'s model, prune it four ways, measure each; write the JSON, markdown and Pareto plot.

    Baseline (unpruned), Fixed 0.5, Dynamic (``task.dynamic_ratios``) and Genetic (under the task's budget) are
    each fine-tuned the same way from the trained model; accuracy is taken on the test split, RAM/Flash/MACs on
    the exported int8 model. Returns what ``demo_results.json`` holds.
    """
    import keras

    from .finetune import FineTuner
    from .genetic import GeneticPruner
    from .pruners import DynamicPruner, FixedPruner
    from .search.evaluators import calibration_batch
    from .search.masked import MaskedModel

    started = time.perf_counter()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    data = task.data
    x_train, y_train = data.train
    log(f"data: {task.source}; {len(x_train)} training / {len(data.test[0])} test samples")

    keras.utils.set_random_seed(settings.seed)
    model = task.build_model(data.input_shape, data.n_classes)
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    log(f"training {model.name} for {settings.epochs} epochs ...")
    clock = time.perf_counter()
    model.fit(x_train, y_train, epochs=settings.epochs, batch_size=32, verbose=0)
    masked = MaskedModel(model)  # BatchNorm statistics recomputed exactly: short training leaves them stale
    masked.recalibrate(calibration_batch(x_train, {"calibration_samples": 512, "seed": settings.seed}))
    model = masked.copy
    train_seconds = time.perf_counter() - clock

    def tuned(pruned):
        tuner = FineTuner(
            epochs=settings.finetune_epochs,
            learning_rate=settings.learning_rate,
            validation_split=0.0,
            seed=settings.seed,
        )
        return tuner.fit(pruned, (x_train, y_train)).transform()

    # The baseline gets the same fine-tuning as every pruned model, so that each row has had the same training
    # budget and an accuracy gap is the cost of pruning, not of training for fewer epochs.
    clock = time.perf_counter()
    reference = tuned(model)
    note = f"trained {settings.epochs} epochs, then fine-tuned like the pruned models"
    baseline, footprint = _row("Baseline", reference, data, train_seconds + time.perf_counter() - clock, note)
    hardware = task.hardware if isinstance(task.hardware, HardwareProfile) else task.hardware(footprint)
    rows = []

    def add(row: dict, footprint: Footprint) -> None:
        rows.append({**row, "fits": hardware.fits(footprint)})
        log(_line(rows[-1]))

    add(baseline, footprint)

    for name, pruner, note in (
        ("Fixed Mode (0.5)", FixedPruner(0.5), "ratio 0.5 everywhere"),
        ("Dynamic Mode", DynamicPruner(list(task.dynamic_ratios)), f"ratios {list(task.dynamic_ratios)}"),
    ):
        clock = time.perf_counter()
        pruned = tuned(pruner.fit(model).transform())
        add(*_row(name, pruned, data, time.perf_counter() - clock, note))
    log(f"genetic search under '{hardware.name}' ({settings.population} x {settings.generations} generations) ...")
    search = GeneticPruner(
        hardware,
        population=settings.population,
        generations=settings.generations,
        finetune_epochs=settings.finetune_epochs,
        learning_rate=settings.learning_rate,
        finalists=2,
        seed=settings.seed,
        verbose=1,
    )
    clock = time.perf_counter()
    search.fit(model, (x_train, y_train))
    genetic = search.transform()
    note = f"search {search.search_seconds_:.0f} s, {search.evaluations_} candidates"
    add(*_row("Genetic Mode", genetic, data, time.perf_counter() - clock, note))

    results = {
        "task": task.name,
        "budget": {"name": hardware.name, "ram": hardware.ram, "flash": hardware.flash, "macs": hardware.macs},
        "data": {
            "source": task.source,
            "train": len(x_train),
            "test": len(data.test[0]),
            "classes": data.n_classes,
            "input_shape": list(data.input_shape),
        },
        "settings": settings.__dict__,
        "rows": rows,
        "genetic": {"ratios": search.best_ratios_, "pareto": search.pareto_, "history": search.history_},
        "seconds": time.perf_counter() - started,
    }
    _write(output / "demo_results.json", json.dumps(results, indent=2, default=float))
    table = markdown_table(rows, hardware)
    _write(output / "demo_results.md", table + "\n")
    written = ["demo_results.json", "demo_results.md"]
    try:
        search.plot_pareto(output / "pareto.png")
        written.append("pareto.png")
    except Exception as error:  # a plot that fails (no display backend, ...) must not lose the results
        log(f"(no Pareto plot: {error})")
    log("\n" + table)
    log(f"\nwritten to {output}/ ({', '.join(written)}); {results['seconds']:.0f} s in all")
    return results


def _row(name: str, model, data, seconds: float, note: str) -> tuple[dict, Footprint]:
    """A table row (test accuracy, measured RAM/Flash/MACs) and the footprint measured on the exported model."""
    x_test, y_test = data.test
    accuracy = float(np.mean(np.argmax(model.predict(x_test, verbose=0, batch_size=128), axis=-1) == y_test))
    x_train = data.train[0]
    measured = measure(model, x_train[:: max(1, len(x_train) // 64)][:64])  # samples spread over the split
    row = {
        "method": name,
        "accuracy": accuracy,
        "ram": measured.ram,
        "flash": measured.flash,
        "macs": measured.macs,
        "seconds": seconds,
        "note": note,
    }
    return row, measured


def _line(row: dict) -> str:
    return (
        f"{row['method']}: accuracy {row['accuracy']:.3f}, RAM {row['ram'] / 1024:.1f} KiB, "
        f"Flash {row['flash'] / 1024:.1f} KiB, MACs {row['macs'] / 1e6:.2f}M"
    )


def markdown_table(rows: list[dict], hardware) -> str:
    """The seed's table (accuracy, RAM, MACs, Flash) plus whether each fits and the time it took."""
    lines = [
        f"| Method | Accuracy | RAM (KiB) | MACs | Flash (KiB) | fits {hardware.name} | time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['method']} | {row['accuracy']:.3f} | {row['ram'] / 1024:.1f} | {row['macs'] / 1e6:.2f} M | "
            f"{row['flash'] / 1024:.1f} | {'yes' if row['fits'] else 'no'} | {row['seconds']:.0f} |"
        )
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    from .saving import write_bytes_atomic

    write_bytes_atomic(path, text.encode())

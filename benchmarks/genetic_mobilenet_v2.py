"""GeneticPruner on a residual network: Keras MobileNetV2 (alpha 0.35, 96x96x3) under a board's budgets.

The unpruned model needs about 200 KiB of tensor arena, more than the Arduino Nano 33 BLE Sense leaves to a model
(preset "nano33ble": 192 KiB RAM, 768 KiB Flash). The script trains the model briefly on the bundled digits,
searches per-group ratios (residual groups are one gene each) and reports the chosen model's footprint as
measured on the exported int8 model, with its accuracy on the held-out test split. Prints JSON.

    PYTHONPATH=. python benchmarks/genetic_mobilenet_v2.py          # a few minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

from gencprunex import GeneticPruner, HardwareProfile, LayerGraph
from gencprunex.datasets import digits_images
from gencprunex.zoo import mobilenet_v2


def accuracy(model, x, y) -> float:
    return float(np.mean(np.argmax(model.predict(x, verbose=0, batch_size=128), axis=-1) == y))


def footprint(hardware: HardwareProfile, model, x) -> dict:
    measured = hardware.measure(model, x[:64])
    return {
        "ram": measured.ram,
        "flash": measured.flash,
        "macs": measured.macs,
        "fits": hardware.fits(measured),
        "over": hardware.violations(measured),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="nano33ble")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs of the unpruned model")
    parser.add_argument("--population", type=int, default=12)
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    hardware = HardwareProfile.preset(args.preset)
    data = digits_images(size=96, channels=3, seed=args.seed, augment=False, n=900)
    keras.utils.set_random_seed(args.seed)
    model = mobilenet_v2(alpha=0.35, input_shape=data.input_shape, num_classes=data.n_classes)
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    started = time.perf_counter()
    model.fit(*data.train, epochs=args.epochs, batch_size=32, verbose=0)
    train_seconds = time.perf_counter() - started
    graph = LayerGraph(model)
    residual = [g.name for g in graph.prunable if len(g.producers) > 1]
    print(f"{len(graph.prunable)} prunable groups, {len(residual)} of them residual", file=sys.stderr)

    search = GeneticPruner(
        hardware,
        population=args.population,
        generations=args.generations,
        finetune_epochs=args.finetune_epochs,
        finalists=2,
        seed=args.seed,
        verbose=2,
    )
    started = time.perf_counter()
    search.fit(model, data.train)
    seconds = time.perf_counter() - started
    chosen = search.transform()
    x_test, y_test = data.test
    result = {
        "model": "MobileNetV2 alpha 0.35, 96x96x3, 10 classes",
        "budget": {"name": hardware.name, "ram": hardware.ram, "flash": hardware.flash, "macs": hardware.macs},
        "settings": vars(args),
        "groups": {"prunable": len(graph.prunable), "residual": len(residual)},
        "unpruned": {"test_accuracy": accuracy(model, x_test, y_test), "train_seconds": train_seconds}
        | footprint(hardware, model, x_test),
        "genetic": {
            "test_accuracy": accuracy(chosen, x_test, y_test),
            "validation_score": search.best_score_,
            "baseline_validation_score": search.baseline_score_,
            "residual_ratios": {name: search.best_ratios_[name] for name in residual},
            "fit_seconds": seconds,
            "search_seconds": search.search_seconds_,
            "seconds_per_candidate": search.seconds_per_candidate_,
            "candidates_scored": search.evaluations_,
            "pareto_size": len(search.pareto_),
        }
        | footprint(hardware, chosen, x_test),
    }
    print(json.dumps(result, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

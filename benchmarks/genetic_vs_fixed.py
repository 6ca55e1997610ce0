"""GeneticPruner vs the best uniform ratio that fits, on the seed's MobileNet and the bundled digits.

The script trains the seed's MobileNet (alpha 0.25, 96x96x3, 64-32-10 head) on the bundled handwritten digits (white on
black, 10 classes),
then, under the "seed-vww" budgets (RAM 75 KiB, Flash 100 KiB, MACs 1.5M):

* fixed mode: the lowest uniform ratio of the grid whose estimate fits, fine-tuned ``--finetune-epochs``;
* genetic mode: ``GeneticPruner`` (one search per ``--algorithms`` entry), its winner fine-tuned the same epochs.

Accuracy is measured on the held-out test split (never seen by the search, which scores on a validation split of
the training data); RAM, Flash and MACs are measured on the exported int8 model. Prints JSON (stdout); progress
goes to stderr.

    PYTHONPATH=. python benchmarks/genetic_vs_fixed.py                 # about 10 minutes on 2 cores
    PYTHONPATH=. python benchmarks/genetic_vs_fixed.py --algorithms nsga2,gaco
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

from gencprunex import FineTuner, FixedPruner, GeneticPruner, HardwareProfile
from gencprunex.datasets import digits_images
from gencprunex.zoo import seed_mobilenet

GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def train_baseline(data, epochs: int, seed: int, cache: str | None):
    """The seed's MobileNet trained on the digits (loaded from ``cache`` when it exists there)."""
    if cache and os.path.exists(cache):
        log(f"loading the trained model from {cache}")
        return keras.models.load_model(cache), 0.0
    keras.utils.set_random_seed(seed)
    model = seed_mobilenet(input_shape=data.input_shape, num_classes=data.n_classes)
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(*data.train, epochs=epochs, batch_size=32, verbose=0, shuffle=True)
    seconds = time.perf_counter() - started
    if cache:
        model.save(cache)
    return model, seconds


def test_accuracy(model, data) -> float:
    x, y = data.test
    return float(np.mean(np.argmax(model.predict(x, verbose=0, batch_size=256), axis=-1) == y))


def measured(hardware: HardwareProfile, model, data) -> dict:
    footprint = hardware.measure(model, data.train[0][:64])
    return {
        "ram": footprint.ram,
        "flash": footprint.flash,
        "macs": footprint.macs,
        "fits": hardware.fits(footprint),
        "over": hardware.violations(footprint),
    }


def best_uniform(model, hardware: HardwareProfile) -> tuple[float, FixedPruner]:
    for ratio in GRID:
        pruner = FixedPruner(ratio).fit(model)
        if hardware.fits(hardware.estimate(pruner.graph_, pruner.plan_, layers=False)):
            return ratio, pruner
    raise SystemExit("no uniform ratio of the grid fits the budgets")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25, help="training epochs of the baseline")
    parser.add_argument("--finetune-epochs", type=int, default=5, help="fine-tuning epochs of each pruned model")
    parser.add_argument("--finetune-lr", type=float, default=3e-3, help="Adam learning rate of fine-tuning")
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--generations", type=int, default=12)
    parser.add_argument("--finalists", type=int, default=3)
    parser.add_argument("--algorithms", default="nsga2", help="comma-separated: nsga2, gaco")
    parser.add_argument("--preset", default="seed-vww")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-cache", default=None, help="save/load the trained baseline here (.keras)")
    args = parser.parse_args(argv)

    hardware = HardwareProfile.preset(args.preset)
    data = digits_images(size=96, channels=3, seed=args.seed, augment=False)
    log(f"data: {len(data.train[0])} training and {len(data.test[0])} test images, {data.n_classes} classes")
    model, train_seconds = train_baseline(data, args.epochs, args.seed, args.model_cache)
    result = {
        "machine": {"cpus": os.cpu_count(), "keras": keras.__version__},
        "budget": {"name": hardware.name, "ram": hardware.ram, "flash": hardware.flash, "macs": hardware.macs},
        "settings": vars(args),
        "baseline": {"test_accuracy": test_accuracy(model, data), "train_seconds": train_seconds}
        | measured(hardware, model, data),
    }
    log(f"baseline: test accuracy {result['baseline']['test_accuracy']:.4f}")

    ratio, pruner = best_uniform(model, hardware)
    tuner = FineTuner(epochs=args.finetune_epochs, learning_rate=args.finetune_lr, validation_split=0.0, seed=args.seed)
    started = time.perf_counter()
    uniform_model = tuner.fit(pruner.transform(), data.train).transform()
    result["fixed"] = {
        "ratio": ratio,
        "test_accuracy": test_accuracy(uniform_model, data),
        "finetune_seconds": time.perf_counter() - started,
    } | measured(hardware, uniform_model, data)
    log(f"fixed {ratio}: test accuracy {result['fixed']['test_accuracy']:.4f}")

    result["genetic"] = {}
    for algorithm in args.algorithms.split(","):
        searcher = GeneticPruner(
            hardware,
            ratio_grid=GRID,
            population=args.population,
            generations=args.generations,
            finetune_epochs=args.finetune_epochs,
            finalists=args.finalists,
            learning_rate=args.finetune_lr,
            algorithm=algorithm,
            seed=args.seed,
            verbose=2,
        )
        started = time.perf_counter()
        searcher.fit(model, data.train)
        seconds = time.perf_counter() - started
        tuned = searcher.transform()
        result["genetic"][algorithm] = {
            "test_accuracy": test_accuracy(tuned, data),
            "validation_score": searcher.best_score_,
            "baseline_validation_score": searcher.baseline_score_,
            "uniform_validation_score": searcher.scores_.get(searcher.encoding_.uniform(ratio)),
            "ratios": searcher.best_ratios_,
            "fit_seconds": seconds,
            "search_seconds": searcher.search_seconds_,
            "seconds_per_candidate": searcher.seconds_per_candidate_,
            "candidates_scored": searcher.evaluations_,
            "finalists": searcher.finalists_,
            "history": searcher.history_,
            "pareto_size": len(searcher.pareto_),
        } | measured(hardware, tuned, data)
        log(f"genetic {algorithm}: test accuracy {result['genetic'][algorithm]['test_accuracy']:.4f} in {seconds:.0f}s")
    print(json.dumps(result, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Time of FixedPruner(0.5).fit(model).transform() on the seed's MobileNet, as JSON.

Side by side in the same run, the time Keras itself needs to rebuild the same model
(``keras.models.clone_model`` + ``set_weights``): the floor any surgery that builds a new model
pays. The ratio of the two is the machine-independent figure.

    python benchmarks/prune_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras

from gencprunex import FixedPruner
from gencprunex.macs import total_macs
from gencprunex.zoo import seed_mobilenet


def _timed(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    model = seed_mobilenet()
    state = {}

    def prune():
        state["pruner"] = FixedPruner(0.5).fit(model)
        state["pruned"] = state["pruner"].transform()

    def keras_rebuild():
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())

    prune()  # warm-up: first calls trace shapes and fill caches
    keras_rebuild()
    prune_times, rebuild_times = [], []
    for _ in range(args.repeats):  # interleaved, so load on the machine hits both alike
        prune_times += _timed(prune, 1)
        rebuild_times += _timed(keras_rebuild, 1)
    pruned = state["pruned"]
    fit_times = _timed(lambda: FixedPruner(0.5).fit(model), args.repeats)
    result = {
        "model": "seed MobileNetV1 alpha 0.25 96x96x3, head 64-32-2",
        "repeats": args.repeats,
        "fit_transform_s_median": round(statistics.median(prune_times), 4),
        "fit_s_median": round(statistics.median(fit_times), 4),
        "keras_clone_s_median": round(statistics.median(rebuild_times), 4),
        "fit_transform_over_keras_clone": round(statistics.median(prune_times) / statistics.median(rebuild_times), 3),
        "params_before": model.count_params(),
        "params_after": pruned.count_params(),
        "macs_before": total_macs(model),
        "macs_after": total_macs(pruned),
        "prunable_groups": len(state["pruner"].graph_.prunable),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

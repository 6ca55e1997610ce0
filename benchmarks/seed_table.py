"""The original GenCPruneX table, measured: on its own VWW / UCI-HAR files when present, else on bundled data.

For each task, trains the model, then Baseline / Fixed 0.5 / Dynamic (a given ratio list) / Genetic, fine-tuned the
same way; accuracy on the test split, RAM / Flash / MACs measured on the exported int8 model, search time.

* ``vww``: the seed's MobileNet (alpha 0.25, head 64-32-classes) on ``train_dataset_VWW.npz`` +
  ``validation_dataset_VWW.npz`` in ``--data-dir`` under "seed-vww" (the original's budget: 75 KiB RAM,
  100 KiB Flash, 1.5M MACs). Without those files: the bundled handwritten digits, exactly ``gencprunex demo``.
* ``ucihar``: a 1-D CNN (``gencprunex.zoo.har_cnn``) on ``train_data_UCIHAR.npz`` + ``test_data_UCIHAR.npz``,
  else the bundled generated HAR-like signals; budget "seed-vww" scaled to the model (the original budget's
  fractions of its own baseline: RAM 72 %, Flash 31 %, MACs 20 %).

Writes each task's ``demo_results.json`` / ``.md`` / ``pareto.png`` into ``OUTPUT/<task>/``, prints one JSON
document (the machine, every task's rows) on stdout; progress goes to stderr.

    PYTHONPATH=. python benchmarks/seed_table.py                       # about 10 minutes on 2 cores (bundled data)
    PYTHONPATH=. python benchmarks/seed_table.py --tasks ucihar --quick # a smoke test in seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from gencprunex.demo import DemoSettings, run_table
from gencprunex.tasks import ucihar_task, vww_task

TASKS = ("vww", "ucihar")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def machine() -> dict:
    """Where the figures were measured."""
    import keras
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="all_datasets", help="folder holding the original .npz files")
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, from {', '.join(TASKS)}")
    parser.add_argument("-o", "--output", default="seed-table", help="folder for each task's result files")
    parser.add_argument("--epochs", type=int, help="training epochs of each baseline (default 25)")
    parser.add_argument("--generations", type=int, help="generations of each genetic search (default 8)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test that runs in seconds")
    args = parser.parse_args(argv)
    tasks = [name.strip() for name in args.tasks.split(",") if name.strip()]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown or not tasks:
        parser.error(f"--tasks: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(TASKS)}")
    settings = DemoSettings.quick() if args.quick else DemoSettings()
    overrides = {name: getattr(args, name) for name in ("epochs", "generations") if getattr(args, name) is not None}
    settings = replace(settings, **overrides)

    results = {"machine": machine(), "data_dir": os.path.abspath(args.data_dir), "tasks": {}}
    for name in tasks:
        if name == "vww":
            task = vww_task(args.data_dir, size=settings.size, samples=settings.samples, seed=settings.seed)
        else:
            task = ucihar_task(args.data_dir, samples=40 if args.quick else None, seed=settings.seed)
        log(f"== {name}: {task.source}")
        outcome = run_table(task, os.path.join(args.output, task.name), settings, log=log)
        results["tasks"][name] = {key: outcome[key] for key in ("task", "budget", "data", "rows", "seconds")}
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2, default=float))

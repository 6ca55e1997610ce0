"""What the demo and the seed-table benchmark run on: a data split, a model, a budget, Dynamic mode's ratios.

* :func:`digits_task` — the demo: the seed's MobileNet on the bundled handwritten digits, under "seed-vww".
* :func:`vww_task` — the seed's MobileNet on the original tool's Visual Wake Words files when they are in the
  data folder (``train_dataset_VWW.npz`` + ``validation_dataset_VWW.npz``), else the bundled digits.
* :func:`ucihar_task` — a 1-D CNN (:func:`gencprunex.zoo.har_cnn`) on the original tool's UCI-HAR files
  (``train_data_UCIHAR.npz`` + ``test_data_UCIHAR.npz``), else the bundled generated HAR-like signals.
  The original tool published no budget for UCI-HAR; the task's budget is "seed-vww" scaled to the model
  (:func:`seed_vww_fractions`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import integer_labels, load_split
from .datasets import SplitData, digits_images, har_like
from .hardware.profile import Footprint, HardwareProfile
from .zoo import har_cnn, seed_mobilenet

# Dynamic mode's ratios for the seed's MobileNet, in LayerGraph(model).prunable order (conv1, conv_pw_1 …
# conv_pw_13, fc_64, fc_32): the early, activation-heavy layers keep more, the weight-heavy late ones lose more.
MOBILENET_DYNAMIC_RATIOS = (0.25, 0.25, 0.25, 0.25, 0.4, 0.4, 0.5, 0.5, 0.5, 0.5, 0.5, 0.6, 0.7, 0.7, 0.5, 0.5)
# The same idea for har_cnn (conv1, conv2, conv3, fc_64).
HAR_DYNAMIC_RATIOS = (0.25, 0.4, 0.5, 0.5)
# The original tool's published baseline for its VWW MobileNet and its budget, both in its own "KB" and MACs.
SEED_BASELINE = {"ram": 103.7, "flash": 322.7, "macs": 7.5e6}
SEED_BUDGET = {"ram": 75.0, "flash": 100.0, "macs": 1.5e6}


@dataclass(frozen=True, eq=False)
class TableTask:
    """The data, the model to train on it, the budget and Dynamic mode's ratios for one table.

    ``hardware`` is a :class:`~gencprunex.HardwareProfile`, or a function of the trained baseline's measured
    :class:`~gencprunex.Footprint` that returns one (a budget relative to the model). ``dynamic_ratios`` holds one
    ratio per prunable group, in ``LayerGraph(model).prunable`` order. ``source`` says where the data came from.
    """

    name: str
    data: SplitData
    source: str
    build_model: Callable[[tuple, int], object]
    hardware: HardwareProfile | Callable[[Footprint], HardwareProfile]
    dynamic_ratios: tuple[float, ...]


def digits_task(size: int = 96, samples: int | None = None, seed: int = 0) -> TableTask:
    """The seed's MobileNet on the bundled handwritten digits (``size`` x ``size`` x 3), under "seed-vww"."""
    data = digits_images(size=size, channels=3, seed=seed, augment=False, n=samples)
    source = f"bundled handwritten digits (scikit-learn), {size}x{size}x3, {data.n_classes} classes"
    return _mobilenet_task("digits", data, source)


def vww_task(directory: str | os.PathLike, size: int = 96, samples: int | None = None, seed: int = 0) -> TableTask:
    """The seed's MobileNet under "seed-vww" on the original VWW files in ``directory``, else on the digits.

    ``size`` and ``samples`` only shape the bundled stand-in; the original files are used as they are.
    """
    data = _seed_files(directory, "VWW", seed)
    if data is None:
        return digits_task(size=size, samples=samples, seed=seed)
    split, path = data
    source = f"the original tool's Visual Wake Words files ({path}), {_shape(split)}, {split.n_classes} classes"
    return _mobilenet_task("vww", split, source)


def ucihar_task(directory: str | os.PathLike, samples: int | None = None, seed: int = 0) -> TableTask:
    """:func:`~gencprunex.zoo.har_cnn` on the original UCI-HAR files in ``directory``, else on generated signals.

    ``samples`` (per class) only sizes the generated stand-in. The budget is :func:`seed_vww_fractions` of the
    trained baseline's measured footprint.
    """
    found = _seed_files(directory, "UCIHAR", seed)
    if found is None:
        split = har_like(n_per_class=samples or 200, seed=seed)
        source = "bundled generated HAR-like signals (gencprunex.datasets.har_like), 128x9, 6 classes"
    else:
        split, path = found
        source = f"the original tool's UCI-HAR files ({path}), {_shape(split)}, {split.n_classes} classes"
    return TableTask(
        name="ucihar" if found else "har-like",
        data=split,
        source=source,
        build_model=lambda shape, classes: har_cnn(input_shape=shape, num_classes=classes),
        hardware=seed_vww_fractions,
        dynamic_ratios=HAR_DYNAMIC_RATIOS,
    )


def seed_vww_fractions(baseline: Footprint) -> HardwareProfile:
    """The "seed-vww" budget as fractions of the original tool's own baseline, applied to ``baseline``.

    The original budget allows 75/103.7 of its MobileNet's RAM, 100/322.7 of its Flash and 1.5/7.5 of its
    MACs (the published table); the same fractions of another model's measured footprint ask for a comparable
    squeeze, for data sets the original published no budget for.
    """
    limits = {key: int(getattr(baseline, key) * SEED_BUDGET[key] / SEED_BASELINE[key]) for key in SEED_BUDGET}
    return HardwareProfile(
        **limits,
        name="seed-vww-scaled",
        source="seed-vww's fractions of the original baseline (RAM 72 %, Flash 31 %, MACs 20 %) of this model's",
    )


def _mobilenet_task(name: str, data: SplitData, source: str) -> TableTask:
    """The seed's MobileNet on ``data`` under "seed-vww", with Dynamic mode's MobileNet ratios."""
    return TableTask(
        name=name,
        data=data,
        source=source,
        build_model=lambda shape, classes: seed_mobilenet(input_shape=shape, num_classes=classes),
        hardware=HardwareProfile.preset("seed-vww"),
        dynamic_ratios=MOBILENET_DYNAMIC_RATIOS,
    )


def _seed_files(directory: str | os.PathLike, tag: str, seed: int) -> tuple[SplitData, Path] | None:
    """The seed's train/test pair for ``tag`` as a :class:`SplitData`, or None when no such file is there.

    A file that is there but unreadable raises :class:`~gencprunex.errors.DataError` (never a silent fallback).
    """
    directory = Path(directory)
    if not directory.is_dir() or not any(directory.glob(f"*_{tag}.npz")):
        return None
    (x_train, y_train), (x_test, y_test) = load_split(directory, tag)
    y_train, train_classes = integer_labels(y_train)
    y_test, test_classes = integer_labels(y_test)
    classes = max(train_classes, test_classes)
    x_train, x_test = _as_float(x_train, x_test)
    return SplitData(x_train, y_train, x_test, y_test, tuple(str(i) for i in range(classes))), directory


def _as_float(*arrays: np.ndarray) -> list[np.ndarray]:
    """float32 arrays; images stored in the 8-bit range (values above 1.5) are scaled to [0, 1]."""
    scale = 255.0 if max(float(np.max(a)) for a in arrays) > 1.5 and arrays[0].ndim == 4 else 1.0
    return [(np.asarray(a, dtype=np.float32) / scale) for a in arrays]


def _shape(split: SplitData) -> str:
    return "x".join(str(d) for d in split.input_shape)

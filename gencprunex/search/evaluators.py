"""How good a pruning plan is, without fine-tuning every candidate: the search's accuracy proxies.

An evaluator is built once per process from the model and the data, then called with a plan
(``{group name: kept channel indices}``) and returns a score, higher is better: accuracy for classifiers,
minus the mean squared error for other outputs.

* ``"bn-recalibrate"`` (default): the plan is applied as masks on one compiled copy of the model, BatchNorm
  statistics are recomputed on a fixed calibration batch from the training data, and the score is measured
  on the validation data. Forward passes only.
* ``"finetune"``: the candidate is built and fine-tuned for a few epochs, then scored (the original tool's way;
  slow).
* a callable ``evaluator(pruned_model, train, validation) -> float``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..data import integer_labels
from ..errors import ParameterError
from ..finetune import FineTuner, output_head, target_kind
from ..graph import LayerGraph
from ..surgery import prune_model
from .masked import MaskedModel

EVALUATORS = ("bn-recalibrate", "finetune")


class Scorer:
    """Scores predictions against validation labels: accuracy, or −MSE for regression outputs."""

    def __init__(self, model, y: np.ndarray) -> None:
        self.head = output_head(model)
        self.kind = target_kind(model, y, self.head)
        self.y = np.asarray(y)
        if self.kind in ("sparse", "categorical"):
            self.labels, _ = integer_labels(self.y)

    @property
    def name(self) -> str:
        """What the score means."""
        return "-mse" if self.kind == "regression" else "accuracy"

    def __call__(self, predictions: np.ndarray) -> float:
        predictions = np.asarray(predictions)
        if self.kind in ("sparse", "categorical"):
            return float(np.mean(np.argmax(predictions, axis=-1) == self.labels))
        if self.kind == "binary":
            threshold = 0.5 if self.head == "sigmoid" else 0.0
            return float(np.mean((predictions.reshape(-1) > threshold) == (self.y.reshape(-1) > 0.5)))
        target = self.y.reshape(predictions.shape)
        return -float(np.mean((predictions - target) ** 2))


class BNRecalibrateEvaluator:
    """Masks on one compiled copy, BatchNorm statistics from the ``calibration`` batch, scored on ``validation``."""

    def __init__(self, model, graph: LayerGraph, calibration: np.ndarray, validation, batch_size: int = 256) -> None:
        self.masked = MaskedModel(model, graph)
        self.calibration = calibration
        self.x_val, y_val = validation
        self.scorer = Scorer(model, y_val)
        self.batch_size = batch_size

    def __call__(self, plan: dict[str, np.ndarray]) -> float:
        self.masked.set_plan(plan)
        self.masked.recalibrate(self.calibration)
        return self.scorer(self.masked.predict(self.x_val, self.batch_size))


class FineTuneEvaluator:
    """Each candidate is built, fine-tuned ``epochs`` epochs on the training data and scored on ``validation``."""

    def __init__(self, model, graph: LayerGraph, train, validation, epochs: int, batch_size: int, seed: int) -> None:
        self.model, self.graph, self.train = model, graph, train
        self.x_val, y_val = validation
        self.scorer = Scorer(model, y_val)
        self.tuner = FineTuner(epochs=epochs, batch_size=batch_size, validation_split=0.0, seed=seed)

    def __call__(self, plan: dict[str, np.ndarray]) -> float:
        pruned = prune_model(self.model, self.graph, plan)
        tuned = self.tuner.fit(pruned, self.train).model_
        return self.scorer(tuned.predict(self.x_val, verbose=0, batch_size=256))


class CallableEvaluator:
    """A user function ``fn(pruned_model, train, validation) -> float`` (higher is better)."""

    def __init__(self, fn: Callable, model, graph: LayerGraph, train, validation) -> None:
        self.fn, self.model, self.graph, self.train, self.validation = fn, model, graph, train, validation

    def __call__(self, plan: dict[str, np.ndarray]) -> float:
        value = self.fn(prune_model(self.model, self.graph, plan), self.train, self.validation)
        try:
            score = float(value)
        except (TypeError, ValueError):
            raise ParameterError(f"evaluator {_name(self.fn)} returned {value!r}; it must return a number") from None
        if not math.isfinite(score):
            raise ParameterError(f"evaluator {_name(self.fn)} returned {score}; it must return a finite number")
        return score


def check_evaluator(evaluator) -> None:
    """Raise :class:`ParameterError` unless ``evaluator`` is a known name or a callable."""
    if callable(evaluator) or evaluator in EVALUATORS:
        return
    raise ParameterError(
        f"evaluator={evaluator!r} is unknown; use {' or '.join(map(repr, EVALUATORS))} or a callable "
        "(pruned_model, train, validation) -> score"
    )


def make_evaluator(evaluator, model, graph: LayerGraph, train, validation, settings: dict):
    """The evaluator named (or given) by ``evaluator``; ``settings`` holds calibration and fine-tune options."""
    check_evaluator(evaluator)
    if callable(evaluator):
        return CallableEvaluator(evaluator, model, graph, train, validation)
    if evaluator == "finetune":
        return FineTuneEvaluator(
            model,
            graph,
            train,
            validation,
            epochs=settings["search_epochs"],
            batch_size=settings["batch_size"],
            seed=settings["seed"],
        )
    return BNRecalibrateEvaluator(model, graph, calibration_batch(train[0], settings), validation)


def calibration_batch(x_train: np.ndarray, settings: dict) -> np.ndarray:
    """The fixed BatchNorm calibration samples: ``calibration_samples`` training rows chosen with ``seed``."""
    count = min(settings["calibration_samples"], len(x_train))
    rows = np.sort(np.random.default_rng(settings["seed"]).choice(len(x_train), count, replace=False))
    return x_train[rows]


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)

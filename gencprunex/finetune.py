"""Fine-tuning a pruned model, optionally distilling from the unpruned one, as a scikit-learn style estimator.

>>> from sklearn.pipeline import Pipeline  # doctest: +SKIP
>>> steps = Pipeline([("prune", FixedPruner(0.5)), ("tune", FineTuner(distill=0.5))])  # doctest: +SKIP
>>> steps.fit(model, (x, y), tune__teacher=model)  # doctest: +SKIP
>>> small = steps.transform(model)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from .data import _is_dataset, check_data, integer_labels, is_batched, resolve_data, split_xy
from .errors import DataError, ModelError, ParameterError
from .plan import check_positive_int

_EPSILON = 1e-7
_METRICS = {
    "sparse": keras.metrics.SparseCategoricalAccuracy,
    "categorical": keras.metrics.CategoricalAccuracy,
    "binary": keras.metrics.BinaryAccuracy,
}


class FineTuner(BaseEstimator):
    """Train a copy of a (pruned) model for a few epochs, optionally distilling from a teacher.

    Parameters
    ----------
    epochs:
        Training epochs (an upper bound when ``patience`` is set).
    batch_size:
        Samples per step (also the batch size given to an unbatched ``tf.data.Dataset``).
    optimizer:
        A Keras optimizer name (``"adam"``, ``"sgd"``, ...) built with ``learning_rate``, or a Keras optimizer
        instance, copied from its config (its own learning rate is kept).
    learning_rate:
        Learning rate of an optimizer given by name.
    loss:
        ``"auto"``: sparse categorical cross-entropy for integer labels, categorical for one-hot rows, binary for
        a single sigmoid output, mean squared error for other float targets shaped like the output (regression,
        autoencoders); from logits when a classifier has no softmax output. Or any Keras loss name or object.
    distill:
        Weight of knowledge distillation, in [0, 1]: loss = (1 − distill)·task loss + distill·T²·KL(teacher ‖
        student) on probabilities softened by the temperature T (the T² keeps gradient sizes comparable across
        temperatures). Needs ``fit(..., teacher=unpruned_model)``. For sigmoid outputs the KL is that of the
        Bernoulli distributions; for regression outputs the term is the squared error to the teacher's output.
    temperature:
        Softening temperature T of distillation (> 0).
    validation_split:
        Fraction of array data held out (stratified, seeded) for validation when no ``validation_data`` is given;
        0 for none. With a ``tf.data.Dataset`` pass ``validation_data`` instead.
    patience:
        ``None`` (train all epochs) or stop after this many epochs without a better validation loss (training
        loss when there is no validation data), restoring the best weights.
    seed:
        Seeds Keras, NumPy and Python (``keras.utils.set_random_seed``) at the start of ``fit``, and the
        validation split; ``None`` leaves the global random state alone.
    verbose:
        Keras ``fit`` verbosity: 0, 1 or 2.
    recalibrate_samples:
        After training, every BatchNormalization's statistics are recomputed exactly on this many training
        samples (one batch, seeded choice): a few epochs leave the moving averages far behind the weights, which
        costs a freshly pruned model much of its accuracy. 0 keeps the moving averages.

    Fitted attributes: ``model_`` (the fine-tuned copy), ``history_`` ({metric: per-epoch values}),
    ``loss_`` (the loss used), ``target_`` (``"sparse"``, ``"categorical"``, ``"binary"``, ``"regression"`` or
    ``"custom"``), ``epochs_`` (epochs run), ``best_epoch_`` (1-based epoch whose weights were kept; the last
    one without ``patience``), ``distilled_`` (whether a teacher was used).

    Examples
    --------
    >>> tuned = FineTuner(epochs=5).fit(pruned, (x, y)).transform()  # doctest: +SKIP
    """

    def __init__(
        self,
        epochs=3,
        batch_size=64,
        optimizer="adam",
        learning_rate=1e-3,
        loss="auto",
        distill=0.0,
        temperature=2.0,
        validation_split=0.1,
        patience=None,
        seed=0,
        verbose=0,
        recalibrate_samples=512,
    ):
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.loss = loss
        self.distill = distill
        self.temperature = temperature
        self.validation_split = validation_split
        self.patience = patience
        self.seed = seed
        self.verbose = verbose
        self.recalibrate_samples = recalibrate_samples

    def fit(self, model, data=None, teacher=None, validation_data=None):
        """Fine-tune a copy of ``model`` on ``data``; ``model`` itself is never modified.

        ``data``: ``(x, y)`` arrays, a path to an ``.npz`` file, or a ``tf.data.Dataset`` of ``(x, y)``
        (batched or not). ``teacher``: the unpruned model, needed when ``distill > 0``. ``validation_data``:
        same forms as ``data``; replaces ``validation_split``. In a Pipeline pass them as fit parameters:
        ``pipeline.fit(model, data, tune__teacher=model)``.
        """
        settings = self._settings()
        _check_model(model, "model")
        if data is None:
            raise DataError(
                "FineTuner.fit needs training data: (x, y) arrays, a tf.data.Dataset or a path to an .npz file"
            )
        if settings.distill > 0:
            _check_teacher(teacher, model, settings.distill)
        if self.seed is not None:
            keras.utils.set_random_seed(int(self.seed))
        head = output_head(model)
        train, validation, sample_y = self._prepare(model, data, validation_data, settings)
        target = target_kind(model, sample_y, head, strict=_is_auto(self.loss))
        loss = _resolve_loss(self.loss, target, head)
        student = copy_model(model)
        trainer = student
        if settings.distill > 0:
            teacher = copy_model(teacher, trainable=False)
            trainer = _Distiller(student, teacher, settings.distill, settings.temp, _distill_head(head, target))
        trainer.compile(optimizer=self._make_optimizer(), loss=loss, metrics=_metrics(target))
        history = trainer.fit(
            *train,
            validation_data=validation,
            epochs=settings.epochs,
            callbacks=self._callbacks(validation is not None),
            verbose=self.verbose,
            **({"shuffle": False} if _is_dataset(train[0]) else {"batch_size": settings.batch_size, "shuffle": True}),
        )
        student = self._recalibrated(student, train)
        self.history_ = {key: [float(v) for v in values] for key, values in history.history.items()}
        self.epochs_ = len(self.history_.get("loss", []))
        self.best_epoch_ = self._best_epoch(validation is not None)
        self.loss_ = loss
        self.target_ = target
        self.distilled_ = settings.distill > 0
        self.model_ = _compiled(student, loss, target)
        return self

    def transform(self, model=None):
        """A copy of the fine-tuned model.

        ``model``, if given, must have the fitted model's layers and weight shapes (for instance the same pruned
        model re-created by an earlier Pipeline step); its weights are not used.
        """
        check_is_fitted(self, "model_")
        if model is not None:
            _check_model(model, "model")
            if _architecture(model) != _architecture(self.model_):
                raise ModelError(
                    f"model '{model.name}' does not have the layers and weight shapes of the fine-tuned model "
                    f"'{self.model_.name}'; fit the FineTuner on it instead"
                )
        return _compiled(copy_model(self.model_), self.loss_, self.target_)

    def fit_transform(self, model, data=None, teacher=None, validation_data=None):
        """``fit(model, data, teacher, validation_data)`` then ``transform()``."""
        return self.fit(model, data, teacher=teacher, validation_data=validation_data).transform()

    # parameters -----------------------------------------------------------------------------
    def _settings(self) -> _Settings:
        """Validated parameters; :class:`ParameterError` names the first bad one."""
        epochs = check_positive_int(self.epochs, "epochs")
        samples = self.recalibrate_samples
        if isinstance(samples, bool) or not isinstance(samples, numbers.Integral) or samples < 0:
            raise ParameterError(f"recalibrate_samples must be an integer >= 0, got {samples!r}")
        batch_size = check_positive_int(self.batch_size, "batch_size")
        _check_real(self.learning_rate, "learning_rate", low=0.0, low_open=True)
        distill = _check_real(self.distill, "distill", low=0.0, high=1.0)
        temp = _check_real(self.temperature, "temperature", low=0.0, low_open=True)
        split = _check_real(self.validation_split, "validation_split", low=0.0, high=1.0, high_open=True)
        if self.patience is not None:
            check_positive_int(self.patience, "patience")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral)):
            raise ParameterError(f"seed must be an integer or None, got {self.seed!r}")
        if self.verbose not in (0, 1, 2) or isinstance(self.verbose, bool):
            raise ParameterError(f"verbose must be 0, 1 or 2, got {self.verbose!r}")
        _check_loss(self.loss)
        self._make_optimizer()
        return _Settings(epochs, batch_size, distill, temp, split)

    def _recalibrated(self, student, train):
        """``student`` with BatchNorm statistics recomputed on up to ``recalibrate_samples`` training samples."""
        if not self.recalibrate_samples or not any(
            isinstance(layer, keras.layers.BatchNormalization)
            for layer in student._flatten_layers(include_self=False, recursive=True)
        ):
            return student
        x = _sample_inputs(train[0], int(self.recalibrate_samples), self.seed)
        if x is None:
            return student
        from .search.masked import MaskedModel

        masked = MaskedModel(student)
        masked.recalibrate(x)
        return masked.copy

    def _make_optimizer(self):
        """A fresh optimizer: from a name and ``learning_rate``, or a copy of a given instance."""
        if isinstance(self.optimizer, keras.optimizers.Optimizer):
            return self.optimizer.__class__.from_config(self.optimizer.get_config())
        if not isinstance(self.optimizer, str):
            raise ParameterError(
                f"optimizer must be a Keras optimizer name such as 'adam' or an optimizer instance, "
                f"got {type(self.optimizer).__name__}"
            )
        try:
            return keras.optimizers.get(
                {"class_name": self.optimizer, "config": {"learning_rate": float(self.learning_rate)}}
            )
        except (ValueError, TypeError):
            raise ParameterError(
                f"optimizer '{self.optimizer}' is not a Keras optimizer; use one of 'adam', 'adamw', 'sgd', "
                f"'rmsprop', 'nadam', ... or pass an optimizer instance"
            ) from None

    def _callbacks(self, has_validation: bool) -> list:
        if self.patience is None:
            return []
        monitor = "val_loss" if has_validation else "loss"
        return [keras.callbacks.EarlyStopping(monitor=monitor, patience=int(self.patience), restore_best_weights=True)]

    def _best_epoch(self, has_validation: bool) -> int:
        if self.patience is None or not self.epochs_:
            return self.epochs_
        values = self.history_["val_loss" if has_validation else "loss"]
        return int(np.argmin(values)) + 1

    # data -----------------------------------------------------------------------------------
    def _prepare(self, model, data, validation_data, settings: _Settings):
        """``(training inputs for fit, validation data or None, sample labels for choosing the loss)``."""
        data = resolve_data(data)
        if _is_dataset(data):
            dataset = _batched(model, data, settings.batch_size, "data")
            validation = None if validation_data is None else self._validation(model, validation_data, settings)
            return (dataset,), validation, _peek_labels(dataset)
        x, y = split_xy(data, "data")
        check_data(model, x, y)
        y = _shaped_labels(model, y)
        if validation_data is not None:
            return (x, y), self._validation(model, validation_data, settings), y
        train, held = _holdout(y, settings.split, self.seed)
        if held is None:
            return (x, y), None, y
        return (x[train], y[train]), (x[held], y[held]), y

    def _validation(self, model, validation_data, settings: _Settings):
        validation_data = resolve_data(validation_data)
        if _is_dataset(validation_data):
            return _batched(model, validation_data, settings.batch_size, "validation_data")
        x, y = split_xy(validation_data, "validation_data")
        check_data(model, x, y)
        return x, _shaped_labels(model, y)


@dataclass(frozen=True)
class _Settings:
    epochs: int
    batch_size: int
    distill: float
    temp: float
    split: float


def _sample_inputs(x, count: int, seed):
    """Up to ``count`` input samples from arrays (seeded choice) or a batched dataset (the first ones)."""
    if _is_dataset(x):
        parts, total = [], 0
        for batch in x.as_numpy_iterator():
            inputs = batch[0] if isinstance(batch, tuple) else batch
            parts.append(np.asarray(inputs))
            total += len(parts[-1])
            if total >= count:
                break
        return np.concatenate(parts)[:count] if parts else None
    x = np.asarray(x)
    if len(x) <= count:
        return x
    rows = np.sort(np.random.default_rng(seed).choice(len(x), count, replace=False))
    return x[rows]


# models -------------------------------------------------------------------------------------
def copy_model(model, trainable: bool = True):
    """A new model with ``model``'s architecture, layer names and weights (``clone_model`` + ``set_weights``)."""
    try:
        clone = keras.models.clone_model(model)
    except (ValueError, TypeError) as error:
        raise ModelError(f"model '{model.name}' cannot be copied for fine-tuning ({error})") from None
    clone.set_weights(model.get_weights())
    if not trainable:
        clone.trainable = False
    return clone


def output_head(model) -> str:
    """``"softmax"``, ``"sigmoid"`` or ``"linear"``: the activation of the layer producing the model's output."""
    try:
        layer = model.outputs[0]._keras_history[0]
    except (AttributeError, IndexError, TypeError):
        layer = model.layers[-1]
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    name = getattr(getattr(layer, "activation", None), "__name__", "")
    return name if name in ("softmax", "sigmoid") else "linear"


def _check_model(model, role: str) -> None:
    if not isinstance(model, keras.Model):
        raise ModelError(f"{role} must be a Keras model, got {type(model).__name__}")
    try:
        model.inputs, model.outputs  # noqa: B018
    except (AttributeError, ValueError):
        raise ModelError(f"{role} '{model.name}' is not built; call it on data or build it first") from None
    if len(model.outputs) != 1:
        raise ModelError(f"{role} '{model.name}' has {len(model.outputs)} outputs; FineTuner supports one output")


def _check_teacher(teacher, model, distill: float) -> None:
    if teacher is None:
        raise ParameterError(
            f"distill={distill} needs a teacher: fit(model, data, teacher=unpruned_model), in a Pipeline "
            f"fit(model, data, <step>__teacher=unpruned_model)"
        )
    _check_model(teacher, "teacher")
    for what, a, b in (("input", teacher.inputs, model.inputs), ("output", teacher.outputs, model.outputs)):
        if [tuple(t.shape) for t in a] != [tuple(t.shape) for t in b]:
            raise ModelError(
                f"teacher '{teacher.name}' {what} shape {tuple(a[0].shape)} differs from model '{model.name}' "
                f"{what} shape {tuple(b[0].shape)}"
            )


def _architecture(model) -> list:
    return [(layer.name, [tuple(w.shape) for w in layer.weights]) for layer in model.layers]


def _compiled(model, loss, target: str):
    """``model`` compiled for evaluation (loss and metrics; a default optimizer for further training)."""
    model.compile(optimizer="adam", loss=loss, metrics=_metrics(target))
    model.optimizer.build(model.trainable_variables)  # so that a saved copy reloads without optimizer warnings
    return model


# losses ---------------------------------------------------------------------------------------
def target_kind(model, y, head: str, strict: bool = True) -> str:
    """What ``y`` is for ``model``: ``"sparse"``, ``"categorical"``, ``"binary"`` or ``"regression"``.

    With ``strict=False`` (a loss given by the caller) labels that fit no kind give ``"custom"`` instead of
    a :class:`DataError`.
    """
    y = np.asarray(y)
    output = tuple(model.outputs[0].shape)
    units = output[-1]
    if y.ndim == 1 and output[1:] == (1,):
        y = y[:, None]
    if units == 1 and head == "sigmoid":
        if np.all((y >= 0) & (y <= 1)):
            return "binary"
        return _no_kind(strict, f"labels for the sigmoid output of model '{model.name}' must lie in [0, 1]")
    if units != 1 and y.ndim <= 2 and (y.ndim == 1 or y.shape[-1] == 1) and len(output) == 2:
        try:
            integer_labels(y)
            return "sparse"
        except DataError as error:
            return _no_kind(strict, str(error))
    if y.shape[1:] == output[1:]:
        if units != 1 and y.ndim == 2 and _distributions(y, one_hot=head != "softmax"):
            return "categorical"
        if np.issubdtype(y.dtype, np.floating) or not strict:
            return "regression"
    return _no_kind(
        strict, f"cannot choose a loss for labels of shape {y.shape} and dtype {y.dtype} for output {output}"
    )


def _no_kind(strict: bool, message: str) -> str:
    if strict:
        raise DataError(f"{message}; pass loss= explicitly")
    return "custom"


def _distributions(y: np.ndarray, one_hot: bool) -> bool:
    """Rows are one-hot (or, when ``one_hot`` is false, non-negative rows summing to 1)."""
    if one_hot:
        return bool(np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1))
    return bool(np.all(y >= 0) and np.allclose(y.sum(axis=1), 1.0, atol=1e-3))


def _is_auto(loss) -> bool:
    return isinstance(loss, str) and loss == "auto"


def _check_loss(loss) -> None:
    if _is_auto(loss) or (callable(loss) and not isinstance(loss, str)):
        return
    if not isinstance(loss, str):
        raise ParameterError(f"loss must be 'auto', a Keras loss name or a loss object, got {type(loss).__name__}")
    try:
        keras.losses.get(loss)
    except (ValueError, TypeError):
        raise ParameterError(
            f"loss '{loss}' is not a Keras loss; use 'auto' or a name such as 'sparse_categorical_crossentropy', "
            f"'categorical_crossentropy', 'binary_crossentropy', 'mse'"
        ) from None


def _resolve_loss(loss, target: str, head: str):
    if not _is_auto(loss):
        return loss
    if target == "sparse":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=head != "softmax")
    if target == "categorical":
        return keras.losses.CategoricalCrossentropy(from_logits=head != "softmax")
    if target == "binary":
        return keras.losses.BinaryCrossentropy()
    return keras.losses.MeanSquaredError()


def _metrics(target: str) -> list:
    if target in _METRICS:
        return [_METRICS[target](name="accuracy")]
    if target == "regression":
        return [keras.metrics.MeanAbsoluteError(name="mae")]
    return []


# distillation -------------------------------------------------------------------------------
class _Distiller(keras.Model):
    """Trains ``student`` on (1 − weight)·compiled loss + weight·distillation loss to a frozen ``teacher``."""

    def __init__(self, student, teacher, weight: float, temperature: float, head: str):
        super().__init__(name=f"{student.name}_distiller")
        self.student = student
        self.teacher = teacher
        self._distill_weight = float(weight)
        self._temperature = float(temperature)
        self._head = head

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        task = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
        soft = distillation_loss(self.teacher(x, training=False), y_pred, self._temperature, self._head)
        extra = ops.sum(ops.stack([ops.sum(loss) for loss in self.losses])) if self.losses else 0.0
        weight = self._distill_weight
        return (1.0 - weight) * task + weight * (soft + extra)


def distillation_loss(teacher_out, student_out, temperature: float, head: str):
    """Mean distillation loss between a batch of teacher outputs and one of student outputs.

    ``head`` says what the outputs are: ``"softmax"`` (probabilities, turned back into logits with ``log``) or
    ``"logits"``: T²·KL(softmax(t/T) ‖ softmax(s/T)); ``"sigmoid"``: T²·KL of the Bernoulli distributions
    softened the same way; ``"regression"``: mean squared difference (no temperature).
    """
    t = ops.convert_to_tensor(teacher_out)
    s = ops.convert_to_tensor(student_out)
    scale = temperature * temperature
    if head == "sigmoid":
        p = ops.sigmoid(_logit(t) / temperature)
        q = ops.clip(ops.sigmoid(_logit(s) / temperature), _EPSILON, 1.0 - _EPSILON)
        pc = ops.clip(p, _EPSILON, 1.0 - _EPSILON)
        kl = p * (ops.log(pc) - ops.log(q)) + (1.0 - p) * (ops.log(1.0 - pc) - ops.log(1.0 - q))
        return scale * ops.mean(ops.sum(kl, axis=-1))
    if head == "softmax":
        t, s = ops.log(ops.clip(t, _EPSILON, 1.0)), ops.log(ops.clip(s, _EPSILON, 1.0))
    elif head == "regression":
        return ops.mean(ops.square(t - s))
    log_p = ops.log_softmax(t / temperature, axis=-1)
    log_q = ops.log_softmax(s / temperature, axis=-1)
    return scale * ops.mean(ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1))


def _distill_head(head: str, target: str) -> str:
    """What the outputs compared in distillation are: ``head`` itself, or logits / regression for linear heads."""
    if head != "linear":
        return head
    return "logits" if target in ("sparse", "categorical") else "regression"


def _logit(p):
    p = ops.clip(p, _EPSILON, 1.0 - _EPSILON)
    return ops.log(p) - ops.log(1.0 - p)


# data helpers -------------------------------------------------------------------------------
def _batched(model, dataset, batch_size: int, role: str):
    """The dataset with a batch axis; it must yield ``(x, y)`` pairs."""
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) < 2:
        raise DataError(f"{role} dataset must yield (x, y) pairs, got elements {spec}")
    check_data(model, dataset)
    return dataset if is_batched(model, dataset) else dataset.batch(batch_size)


def _peek_labels(dataset) -> np.ndarray:
    for element in dataset.take(1):
        return np.asarray(element[1])
    raise DataError("data dataset yields no elements")


def _shaped_labels(model, y: np.ndarray) -> np.ndarray:
    """Labels of a single-unit output as a column, so that losses see matching shapes."""
    if y.ndim == 1 and tuple(model.outputs[0].shape)[1:] == (1,):
        return y[:, None]
    return y


def _holdout(y: np.ndarray, fraction: float, seed) -> tuple[np.ndarray, np.ndarray | None]:
    """Train and validation indices (validation ``None`` when too few samples), stratified when possible."""
    count = len(y)
    held = round(count * fraction)
    index = np.arange(count)
    if held < 1 or count - held < 1:
        return index, None
    stratify = None
    try:
        labels, _ = integer_labels(y)
        stratify = labels if np.min(np.bincount(labels)[np.unique(labels)]) >= 2 else None
    except DataError:
        pass
    try:
        train, test = train_test_split(index, test_size=held, stratify=stratify, random_state=seed)
    except ValueError:
        train, test = train_test_split(index, test_size=held, random_state=seed)
    return np.sort(train), np.sort(test)


def _check_real(value, name: str, low: float, high: float = math.inf, low_open=False, high_open=False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ParameterError(f"{name} must be a number, got {value!r}")
    value = float(value)
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (above and below):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open or high == math.inf else ']'}"
        raise ParameterError(f"{name} is {value}; allowed: {interval}")
    return value

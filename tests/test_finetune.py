"""FineTuner: recovery after pruning, the input model untouched, loss choice, distillation, Pipeline use."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from gencprunex import DataError, FineTuner, FixedPruner, ModelError, ParameterError
from gencprunex.datasets import digits_images
from gencprunex.finetune import distillation_loss, output_head, target_kind

L = keras.layers
QUICK = {"batch_size": 32, "learning_rate": 1e-2, "validation_split": 0.0}


def _mlp(classes: int = 10, activation: str | None = "softmax", name: str = "mlp") -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((64,), name="pixels"),
            L.Dense(32, activation="relu", name="hidden"),
            L.Dense(16, activation="relu", name="hidden2"),
            L.Dense(classes, activation=activation, name="digit"),
        ],
        name=name,
    )


def _weights_bytes(model) -> list[bytes]:
    return [w.tobytes() for w in model.get_weights()]


def _accuracy(model, x, y) -> float:
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))


@pytest.fixture(scope="module")
def digits():
    """8×8 digits, flattened: ``(x_train, y_train, x_test, y_test)``."""
    data = digits_images(size=8, channels=1, augment=False, seed=0)
    flat = [a.reshape(len(a), -1) for a in (data.x_train, data.x_test)]
    return flat[0], data.y_train, flat[1], data.y_test


@pytest.fixture(scope="module")
def trained(digits):
    """A small classifier trained to ~96 % test accuracy (itself through FineTuner)."""
    x, y, _, _ = digits
    keras.utils.set_random_seed(0)
    return FineTuner(epochs=15, **QUICK).fit(_mlp(), (x, y)).transform()


@pytest.fixture(scope="module")
def pruned(trained):
    return FixedPruner(0.5).fit_transform(trained)


# training -----------------------------------------------------------------------------------
def test_fine_tuning_recovers_accuracy_and_leaves_the_input_alone(digits, trained, pruned):
    x, y, x_test, y_test = digits
    before_bytes = _weights_bytes(pruned)
    before = _accuracy(pruned, x_test, y_test)
    tuner = FineTuner(epochs=5, **{**QUICK, "validation_split": 0.1}).fit(pruned, (x, y))
    after = _accuracy(tuner.transform(), x_test, y_test)
    assert _accuracy(trained, x_test, y_test) > 0.9
    assert after > before + 0.15, (before, after)
    assert _weights_bytes(pruned) == before_bytes
    assert [layer.name for layer in tuner.model_.layers] == [layer.name for layer in pruned.layers]
    assert tuner.model_.get_layer("hidden").units == 16
    assert tuner.epochs_ == 5 and tuner.best_epoch_ == 5 and not tuner.distilled_
    assert set(tuner.history_) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert tuner.transform() is not tuner.model_  # a fresh copy each time, compiled for evaluate()
    assert tuner.transform().evaluate(x_test, y_test, verbose=0)[1] == pytest.approx(after, abs=1e-6)


def test_same_seed_same_weights(digits, pruned):
    x, y, _, _ = digits
    first = FineTuner(epochs=1, seed=3, **QUICK).fit(pruned, (x[:128], y[:128])).model_
    second = FineTuner(epochs=1, seed=3, **QUICK).fit(pruned, (x[:128], y[:128])).model_
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_early_stopping_keeps_the_best_validation_weights(digits, pruned):
    x, y, x_test, y_test = digits
    tuner = FineTuner(epochs=6, patience=1, optimizer="sgd", learning_rate=2.0, **{"batch_size": 32})
    tuner.fit(pruned, (x, y), validation_data=(x_test, y_test))
    losses = tuner.history_["val_loss"]
    assert tuner.epochs_ == len(losses) <= 6
    assert tuner.best_epoch_ == int(np.argmin(losses)) + 1
    assert tuner.transform().evaluate(x_test, y_test, verbose=0)[0] == pytest.approx(min(losses), rel=1e-4)


def test_unbatched_dataset_and_npz_path(digits, pruned, tmp_path):
    x, y, _, _ = digits
    dataset = tf.data.Dataset.from_tensor_slices((x[:128], y[:128]))
    tuner = FineTuner(epochs=1, **QUICK).fit(pruned, dataset)
    assert tuner.target_ == "sparse" and "val_loss" not in tuner.history_
    path = tmp_path / "digits.npz"
    np.savez(path, features=x[:128], labels=np.eye(10, dtype="float32")[y[:128]])
    assert FineTuner(epochs=1, **QUICK).fit(pruned, str(path)).target_ == "categorical"


# choosing the loss ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("activation", "units", "labels", "kind", "loss", "from_logits"),
    [
        ("softmax", 3, np.array([0, 2, 1]), "sparse", keras.losses.SparseCategoricalCrossentropy, False),
        ("softmax", 3, np.array([[0.0], [2.0], [1.0]]), "sparse", keras.losses.SparseCategoricalCrossentropy, False),
        (None, 3, np.array([0, 2, 1]), "sparse", keras.losses.SparseCategoricalCrossentropy, True),
        ("softmax", 3, np.eye(3, dtype="float32"), "categorical", keras.losses.CategoricalCrossentropy, False),
        (None, 3, np.eye(3, dtype="float32"), "categorical", keras.losses.CategoricalCrossentropy, True),
        ("sigmoid", 1, np.array([0, 1, 1]), "binary", keras.losses.BinaryCrossentropy, False),
        (None, 1, np.array([0.3, 1.7, -2.0], "float32"), "regression", keras.losses.MeanSquaredError, None),
        (None, 3, np.full((3, 3), 0.5, "float32"), "regression", keras.losses.MeanSquaredError, None),
    ],
)
def test_loss_auto(activation, units, labels, kind, loss, from_logits):
    model = keras.Sequential([keras.Input((4,)), L.Dense(units, activation=activation, name="out")])
    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    tuner = FineTuner(epochs=1, validation_split=0.0).fit(model, (x, labels))
    assert tuner.target_ == kind == target_kind(model, labels, output_head(model))
    assert isinstance(tuner.loss_, loss)
    if from_logits is not None:
        assert tuner.loss_.get_config()["from_logits"] is from_logits


def test_autoencoder_gets_mse_and_a_named_loss_is_used_as_given():
    model = keras.Sequential([keras.Input((8,)), L.Dense(3, activation="relu"), L.Dense(8)], name="ae")
    x = np.random.default_rng(0).normal(size=(16, 8)).astype("float32")
    assert isinstance(FineTuner(epochs=1).fit(model, (x, x)).loss_, keras.losses.MeanSquaredError)
    assert FineTuner(epochs=1, loss="mae").fit(model, (x, x)).loss_ == "mae"


def test_softmax_layer_and_unusable_labels():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, L.Softmax(name="probs")(L.Dense(3)(inputs)))
    assert output_head(model) == "softmax"
    with pytest.raises(DataError, match=r"labels go up to class 5 but model .* has 3 outputs; expected class ids 0..2"):
        FineTuner().fit(model, (np.zeros((2, 4)), np.array([0, 5])))
    with pytest.raises(DataError, match=r"integer class ids .* such as 0.5"):
        FineTuner().fit(model, (np.zeros((2, 4)), np.array([0.5, 1.0])))


# distillation ---------------------------------------------------------------------------------
def _kl_to(teacher, student, x) -> float:
    p = np.clip(teacher.predict(x, verbose=0), 1e-7, 1)
    q = np.clip(student.predict(x, verbose=0), 1e-7, 1)
    return float(np.mean(np.sum(p * np.log(p / q), axis=1)))


def test_distillation_follows_the_teacher_not_the_labels(digits, trained, pruned):
    x, y, x_test, _ = digits
    noise = np.random.default_rng(0).integers(0, 10, len(y))  # labels carrying no signal
    start = _kl_to(trained, pruned, x_test)
    taught = FineTuner(epochs=4, distill=1.0, **QUICK).fit(pruned, (x, noise), teacher=trained)
    alone = FineTuner(epochs=4, distill=0.0, **QUICK).fit(pruned, (x, noise), teacher=trained)
    assert taught.distilled_ and not alone.distilled_
    assert _kl_to(trained, taught.model_, x_test) < 0.5 * start
    assert _kl_to(trained, taught.model_, x_test) < 0.5 * _kl_to(trained, alone.model_, x_test)


def test_distillation_loss_terms():
    p = np.array([[0.7, 0.2, 0.1]], "float32")
    assert float(distillation_loss(p, p, 2.0, "softmax")) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation_loss(p, p[:, ::-1], 2.0, "softmax")) > 0.1
    logits = np.log(p)
    assert float(distillation_loss(logits, logits[:, ::-1], 2.0, "logits")) == pytest.approx(
        float(distillation_loss(p, p[:, ::-1], 2.0, "softmax")), rel=1e-4
    )
    b = np.array([[0.9], [0.2]], "float32")
    assert float(distillation_loss(b, b, 3.0, "sigmoid")) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation_loss(b, 1 - b, 3.0, "sigmoid")) > 0.1
    assert float(distillation_loss(b, b + 1, 3.0, "regression")) == pytest.approx(1.0)


def test_distill_needs_a_matching_teacher(digits, pruned):
    x, y, _, _ = digits
    with pytest.raises(ParameterError, match=r"distill=0.5 needs a teacher: fit\(model, data, teacher="):
        FineTuner(distill=0.5).fit(pruned, (x, y))
    with pytest.raises(ModelError, match=r"teacher 'mlp3' output shape \(None, 3\) differs"):
        FineTuner(distill=0.5).fit(pruned, (x, y), teacher=_mlp(3, name="mlp3"))


# scikit-learn conventions -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"epochs": 0}, r"epochs must be an integer >= 1, got 0"),
        ({"batch_size": 2.5}, r"batch_size must be an integer >= 1, got 2.5"),
        ({"learning_rate": 0}, r"learning_rate is 0.0; allowed: \(0.0, inf\)"),
        ({"distill": 1.5}, r"distill is 1.5; allowed: \[0.0, 1.0\]"),
        ({"distill": "yes"}, r"distill must be a number, got 'yes'"),
        ({"temperature": -1}, r"temperature is -1.0; allowed: \(0.0, inf\)"),
        ({"validation_split": 1.0}, r"validation_split is 1.0; allowed: \[0.0, 1.0\)"),
        ({"patience": 0}, r"patience must be an integer >= 1, got 0"),
        ({"seed": "x"}, r"seed must be an integer or None, got 'x'"),
        ({"verbose": 5}, r"verbose must be 0, 1 or 2, got 5"),
        ({"optimizer": "adamx"}, r"optimizer 'adamx' is not a Keras optimizer"),
        ({"optimizer": 3}, r"optimizer must be a Keras optimizer name .* got int"),
        ({"loss": "nope"}, r"loss 'nope' is not a Keras loss"),
        ({"loss": 3}, r"loss must be 'auto', a Keras loss name or a loss object, got int"),
    ],
)
def test_bad_parameters(params, message, pruned):
    with pytest.raises(ParameterError, match=message):
        FineTuner(**params).fit(pruned, (np.zeros((4, 64)), np.zeros(4, int)))


def test_bad_model_and_data(pruned):
    with pytest.raises(ModelError, match="model must be a Keras model, got str"):
        FineTuner().fit("model.keras", (np.zeros((4, 64)), np.zeros(4)))
    with pytest.raises(DataError, match=r"FineTuner\.fit needs training data"):
        FineTuner().fit(pruned)
    with pytest.raises(DataError, match=r"expects input of shape \(None, 64\) but the data has shape \(4, 8, 8\)"):
        FineTuner().fit(pruned, (np.zeros((4, 8, 8)), np.zeros(4, int)))
    with pytest.raises(DataError, match=r"4 samples in x but 3 in y"):
        FineTuner().fit(pruned, (np.zeros((4, 64)), np.zeros(3, int)))


def test_params_clone_and_unfitted_transform():
    tuner = FineTuner(epochs=7, distill=0.3, patience=2)
    assert tuner.get_params()["epochs"] == 7 and tuner.get_params()["distill"] == 0.3
    copy = clone(tuner)
    assert copy is not tuner and copy.get_params() == tuner.get_params()
    assert tuner.set_params(epochs=2).epochs == 2
    assert "epochs=2" in repr(tuner)
    with pytest.raises(Exception, match="not fitted"):
        tuner.transform()


def test_transform_checks_the_architecture(digits, pruned, trained):
    x, y, _, _ = digits
    tuner = FineTuner(epochs=1, **QUICK).fit(pruned, (x[:64], y[:64]))
    assert tuner.transform(pruned).count_params() == pruned.count_params()
    with pytest.raises(ModelError, match="does not have the layers and weight shapes of the fine-tuned model"):
        tuner.transform(trained)


def test_pipeline_prune_then_distil(digits, trained):
    x, y, x_test, y_test = digits
    before = _weights_bytes(trained)
    pipeline = Pipeline([("prune", FixedPruner(0.5)), ("tune", FineTuner(epochs=3, distill=0.5, **QUICK))])
    small = pipeline.fit_transform(trained, (x, y), tune__teacher=trained)
    assert pipeline.named_steps["tune"].distilled_
    assert small.get_layer("hidden").units == 16
    assert _accuracy(small, x_test, y_test) > 0.85
    again = pipeline.transform(trained)  # the pruner re-cuts the original; the tuner gives its weights
    np.testing.assert_array_equal(again.get_weights()[0], small.get_weights()[0])
    assert _weights_bytes(trained) == before


def test_batchnorm_statistics_are_recomputed_after_training():
    """After fine-tuning, each BatchNorm holds the exact statistics of its input over the calibration samples."""
    rng = np.random.default_rng(0)
    x = rng.normal(0.5, 2.0, (96, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, 96)
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(6, 3, name="c1")(inputs)
    h = keras.layers.BatchNormalization(name="bn1")(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.Conv2D(5, 3, name="c2")(h)
    h = keras.layers.BatchNormalization(name="bn2")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(h))
    tuned = FineTuner(epochs=1, validation_split=0.0, recalibrate_samples=96).fit(model, (x, y)).model_
    stale = FineTuner(epochs=1, validation_split=0.0, recalibrate_samples=0).fit(model, (x, y)).model_
    for name in ("bn1", "bn2"):
        layer = tuned.get_layer(name)
        seen = np.asarray(keras.Model(tuned.inputs, layer.input)(x))
        np.testing.assert_allclose(layer.moving_mean.numpy(), seen.mean(axis=(0, 1, 2)), atol=1e-4)
        np.testing.assert_allclose(layer.moving_variance.numpy(), seen.var(axis=(0, 1, 2)), rtol=1e-3, atol=1e-4)
        old = stale.get_layer(name)
        assert not np.allclose(old.moving_mean.numpy(), layer.moving_mean.numpy(), atol=1e-3)

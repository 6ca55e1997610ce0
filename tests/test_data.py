"""Reading data (one-line errors naming file, key and value) and the bundled offline data sets."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from gencprunex import DataError, ParameterError
from gencprunex.data import check_data, integer_labels, load_npz, load_split, resolve_data, split_xy
from gencprunex.datasets import HAR_CHANNELS, HAR_CLASSES, digits_images, har_like

L = keras.layers


@pytest.fixture(scope="module")
def har_model():
    return keras.Sequential(
        [keras.Input((128, 9), name="signal"), L.Conv1D(4, 3, name="conv"), L.Flatten(), L.Dense(6, name="classes")],
        name="har",
    )


# load_npz / load_split --------------------------------------------------------------------------
def test_load_npz_reads_features_or_images(tmp_path):
    np.savez(tmp_path / "a.npz", features=np.ones((3, 4)), labels=np.arange(3))
    np.savez(tmp_path / "b.npz", images=np.ones((2, 8, 8, 3)), labels=np.eye(2))
    x, y = load_npz(tmp_path / "a.npz")
    assert x.shape == (3, 4) and y.tolist() == [0, 1, 2]
    assert load_npz(str(tmp_path / "b.npz"))[0].shape == (2, 8, 8, 3)
    assert resolve_data(tmp_path / "a.npz")[0].shape == (3, 4)
    assert split_xy([x, y])[1].tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"data": np.ones(3), "labels": np.ones(3)}, r"has keys \['data', 'labels'\]; expected 'features' or 'images'"),
        ({"features": np.ones((3, 2))}, r"has keys \['features'\]; expected .* and 'labels'"),
        ({"features": np.ones((3, 2)), "labels": np.ones(4)}, r"3 samples in 'features' but 4 in 'labels'"),
        ({"features": np.array([[1.0, np.nan]]), "labels": np.ones(1)}, r"'features' holds 1 NaN .* index \(0, 1\)"),
        ({"images": np.ones((2, 2)), "labels": np.array([np.inf, 1])}, r"'labels' holds 1 NaN or infinite"),
        ({"features": np.zeros((0, 3)), "labels": np.zeros(0)}, r"'features' holds no samples"),
    ],
)
def test_load_npz_errors_name_file_and_key(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=f"data file '.*bad.npz'.*{message}"):
        load_npz(path)


def test_load_npz_missing_or_unreadable_file(tmp_path):
    with pytest.raises(DataError, match=r"data file '.*nothere.npz' does not exist"):
        load_npz(tmp_path / "nothere.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(DataError, match=r"'.*text.npz' is not a readable .npz archive"):
        load_npz(tmp_path / "text.npz")


def test_load_split_uses_the_seed_file_names(tmp_path):
    np.savez(tmp_path / "train_dataset_VWW.npz", images=np.ones((4, 2, 2, 3)), labels=np.zeros(4))
    np.savez(tmp_path / "validation_dataset_VWW.npz", images=np.ones((2, 2, 2, 3)), labels=np.zeros(2))
    (x, _), (x_val, _) = load_split(tmp_path, "VWW")
    assert len(x) == 4 and len(x_val) == 2
    with pytest.raises(DataError, match=r"has no train_data_UCIHAR.npz or .*; .npz files present: \['train_dataset"):
        load_split(tmp_path, "UCIHAR")
    with pytest.raises(DataError, match=r"data folder '.*missing' does not exist"):
        load_split(tmp_path / "missing", "VWW")


def test_split_data_round_trips_through_npz(tmp_path):
    data = har_like(n_per_class=4, subjects=4, seed=1)
    paths = data.save(tmp_path, "HARLIKE")
    assert [p.name for p in paths] == ["train_data_HARLIKE.npz", "test_data_HARLIKE.npz"]
    (x, _), (_, y_test) = load_split(tmp_path, "HARLIKE")
    np.testing.assert_array_equal(x, data.x_train)
    np.testing.assert_array_equal(y_test, data.y_test)
    with np.load(digits_images(size=8, n=40).save(tmp_path, "D")[0]) as archive:
        assert set(archive.keys()) == {"images", "labels"}


# labels and shapes ------------------------------------------------------------------------------
def test_integer_labels():
    assert integer_labels(np.array([2, 0, 1]))[1] == 3
    ids, count = integer_labels(np.eye(4)[[3, 1]])
    assert ids.tolist() == [3, 1] and count == 4
    assert integer_labels(np.array([[1.0], [0.0]]))[0].tolist() == [1, 0]
    with pytest.raises(DataError, match="not one-hot rows"):
        integer_labels(np.array([[0.5, 0.5]]))
    with pytest.raises(DataError, match=r"integer class ids or one-hot rows; got values such as 0\.5"):
        integer_labels(np.array([0.5, 1.0]))
    with pytest.raises(DataError, match="class ids >= 0; got -1"):
        integer_labels(np.array([-1, 1]))


@pytest.mark.parametrize(
    ("x_shape", "y", "message"),
    [
        ((5, 128, 3), None, r"expects input of shape \(None, 128, 9\) but the data has shape \(5, 128, 3\)"),
        ((128, 9), None, r"has shape \(128, 9\); a single sample\? add a batch axis"),
        ((5, 9, 128), None, r"channels-first\?"),
        ((5, 128, 9), np.zeros(4, int), r"5 samples in x but 4 in y"),
        ((5, 128, 9), np.full(5, 6), r"labels go up to class 6 but model 'har' has 6 outputs; expected class ids 0..5"),
        ((5, 128, 9), np.eye(5), r"labels have shape \(5, 5\) but model 'har' outputs \(None, 6\); one-hot rows need"),
        ((5, 128, 9), np.array([0, 1, 2, 3, np.nan]), r"y holds 1 NaN or infinite value\(s\), the first at index \(4,"),
    ],
)
def test_check_data_names_expected_and_got(har_model, x_shape, y, message):
    with pytest.raises(DataError, match=message):
        check_data(har_model, np.zeros(x_shape, "float32"), y)


def test_check_data_accepts_good_data_and_hints_channel_axis(har_model):
    check_data(har_model, np.zeros((5, 128, 9)), np.arange(5))
    check_data(har_model, np.zeros((5, 128, 9)), np.eye(6)[[0, 1, 2, 3, 4]])
    check_data(har_model, tf.data.Dataset.from_tensor_slices(np.zeros((5, 128, 9))))
    check_data(har_model, tf.data.Dataset.from_tensor_slices((np.zeros((5, 128, 9)), np.zeros(5))).batch(2))
    image_model = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(2, 3)], name="img")
    with pytest.raises(DataError, match=r"add a channel axis: x\[\.\.\., None\]"):
        check_data(image_model, np.zeros((3, 8, 8)))
    with pytest.raises(DataError, match=r"the dataset yields x of shape \(None, 128, 3\)"):
        check_data(har_model, tf.data.Dataset.from_tensor_slices(np.zeros((5, 128, 3))).batch(2))
    with pytest.raises(DataError, match=r"x has dtype <U1; expected numbers"):
        check_data(keras.Sequential([keras.Input((1,)), L.Dense(1)]), np.array([["a"]]))


# bundled data sets ------------------------------------------------------------------------------
def _features(x: np.ndarray) -> np.ndarray:
    """Per-channel mean, standard deviation and mean absolute step: cheap summary features."""
    return np.concatenate([x.mean(1), x.std(1), np.abs(np.diff(x, axis=1)).mean(1)], axis=1)


def test_har_like_is_learnable_but_not_trivial():
    data = har_like(seed=0)
    assert data.x_train.shape[1:] == (128, 9) and data.x_train.dtype == np.float32
    assert data.class_names == HAR_CLASSES and set(np.unique(data.y_test)) == set(range(6))
    assert len(data.x_train) + len(data.x_test) == 6 * 200
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(_features(data.x_train), data.y_train)
    predicted = model.predict(_features(data.x_test))
    accuracy = float(np.mean(predicted == data.y_test))
    assert 0.5 < accuracy < 0.95, accuracy  # chance is 1/6
    confused = np.mean(predicted[np.isin(data.y_test, (3, 4))] == data.y_test[np.isin(data.y_test, (3, 4))])
    assert confused < 0.95  # sitting vs standing overlap
    lying = data.y_test == 5
    assert np.mean(predicted[lying] == 5) > 0.9  # gravity on another axis: easy


def test_har_like_channels_and_determinism():
    first, second = har_like(n_per_class=10, seed=4), har_like(n_per_class=10, seed=4)
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)
    assert not np.array_equal(first.x_train, har_like(n_per_class=10, seed=5).x_train)
    three = har_like(n_per_class=10, channels=3, seed=4)
    assert three.input_shape == (128, 3) and len(HAR_CHANNELS[3]) == 3
    np.testing.assert_array_equal(three.x_train, first.x_train[..., 6:])  # total_acc xyz
    assert har_like(n_per_class=3, steps=64, seed=0).input_shape == (64, 9)
    standing = first.x_train[first.y_train == 4]
    assert abs(float(standing[..., 6].mean()) - 1.0) < 0.1  # gravity on x when upright, in g


def test_digits_images_shapes_split_and_determinism():
    data = digits_images(size=24, channels=3, seed=2, n=200)
    assert data.x_train.shape == (150, 24, 24, 3) and data.x_test.shape == (50, 24, 24, 3)
    assert data.x_train.dtype == np.float32 and data.x_train.min() >= 0.0 and data.x_train.max() <= 1.0
    assert data.n_classes == 10 and np.bincount(data.y_test).min() >= 4  # stratified
    again = digits_images(size=24, channels=3, seed=2, n=200)
    np.testing.assert_array_equal(data.x_train, again.x_train)
    assert not np.array_equal(data.x_train, digits_images(size=24, channels=3, seed=3, n=200).x_train)
    grey = digits_images(size=16, channels=1, classes=(3, 8), augment=False, dtype="uint8")
    assert grey.class_names == ("3", "8") and grey.x_train.dtype == np.uint8 and grey.x_train.max() == 255
    assert set(np.unique(grey.y_train)) == {0, 1} and grey.input_shape == (16, 16, 1)


def test_digits_images_are_real_digits():
    plain = digits_images(size=8, channels=1, augment=False)
    flat = [a.reshape(len(a), -1) for a in (plain.x_train, plain.x_test)]
    assert LogisticRegression(max_iter=500).fit(flat[0], plain.y_train).score(flat[1], plain.y_test) > 0.9


def test_digits_positive_class_is_balanced():
    data = digits_images(size=8, channels=3, positive=0)
    assert data.class_names == ("not 0", "0")
    counts = np.bincount(np.concatenate([data.y_train, data.y_test]))
    assert counts[0] == counts[1] == 178


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: digits_images(size=4), r"size must be an integer >= 8, got 4"),
        (lambda: digits_images(channels=2), r"channels must be one of 1, 3, got 2"),
        (lambda: digits_images(classes=(1,)), r"classes must list at least two distinct digits 0-9"),
        (lambda: digits_images(classes="ab"), r"classes must be a list of digits 0-9, got 'ab'"),
        (lambda: digits_images(classes=(1, 2), positive=5), r"positive=5 must be one of the kept digits \[1, 2\]"),
        (lambda: digits_images(dtype="float16"), r"dtype must be one of float32, uint8, got 'float16'"),
        (lambda: digits_images(test_size=1.5), r"test_size must be a fraction strictly between 0 and 1"),
        (lambda: digits_images(n=5), r"n must be an integer >= 20, got 5"),
        (lambda: har_like(channels=4), r"channels must be one of 3, 6, 9, got 4"),
        (lambda: har_like(n_per_class=1), r"n_per_class must be an integer >= 2, got 1"),
    ],
)
def test_dataset_parameter_errors(call, message):
    with pytest.raises(ParameterError, match=message):
        call()

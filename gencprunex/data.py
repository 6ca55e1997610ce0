"""Reading the data users hand to gencprunex: ``(x, y)`` arrays, a ``tf.data.Dataset`` or an ``.npz`` path.

Every problem is reported as a one-line :class:`~gencprunex.errors.DataError` that names the file, key or
value at fault and what is allowed.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from .errors import DataError

FEATURE_KEYS = ("features", "images", "x")
LABEL_KEYS = ("labels", "y")
TRAIN_NAMES = ("train_data_{}.npz", "train_dataset_{}.npz", "train_{}.npz")
TEST_NAMES = (
    "test_data_{}.npz",
    "test_dataset_{}.npz",
    "validation_dataset_{}.npz",
    "validation_data_{}.npz",
    "val_data_{}.npz",
    "test_{}.npz",
)


def load_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from an ``.npz`` file with keys ``features``/``images``/``x`` and ``labels``/``y``.

    Labels may be one-hot or integer class ids; they are returned as stored. Raises :class:`DataError`
    for a missing or unreadable file, missing keys (the keys found are listed), different sample counts,
    and NaN or infinite values.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file '{path}' does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.keys())
            x_key = next((k for k in FEATURE_KEYS if k in keys), None)
            y_key = next((k for k in LABEL_KEYS if k in keys), None)
            if x_key is None or y_key is None:
                raise DataError(f"data file '{path}' has keys {keys}; expected 'features' or 'images', and 'labels'")
            x, y = archive[x_key], archive[y_key]
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"data file '{path}' is not a readable .npz archive ({error})") from None
    check_arrays(x, y, source=f"data file '{path}'", x_name=f"'{x_key}'", y_name=f"'{y_key}'")
    return x, y


def load_split(directory: str | os.PathLike, name: str):
    """``((x_train, y_train), (x_test, y_test))`` from a folder holding the seed's train/test file pair.

    ``name`` is the data set's tag, e.g. ``"UCIHAR"`` for ``train_data_UCIHAR.npz`` + ``test_data_UCIHAR.npz``
    or ``"VWW"`` for ``train_dataset_VWW.npz`` + ``validation_dataset_VWW.npz`` (see ``all_datasets/README.md``).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"data folder '{directory}' does not exist")
    return load_npz(_find(directory, name, TRAIN_NAMES)), load_npz(_find(directory, name, TEST_NAMES))


def _find(directory: Path, name: str, patterns: tuple[str, ...]) -> Path:
    for pattern in patterns:
        path = directory / pattern.format(name)
        if path.is_file():
            return path
    present = sorted(p.name for p in directory.glob("*.npz")) or "none"
    wanted = " or ".join(p.format(name) for p in patterns)
    raise DataError(f"data folder '{directory}' has no {wanted}; .npz files present: {present}")


def resolve_data(data):
    """``data`` as given, except that a path to an ``.npz`` file is loaded into ``(x, y)``."""
    if isinstance(data, str | os.PathLike):
        return load_npz(data)
    return data


def split_xy(data, source: str = "data") -> tuple:
    """``(x, y)`` from ``data`` given as ``(x, y)``, ``[x, y]`` or an ``.npz`` path; ``x`` and ``y`` as arrays."""
    data = resolve_data(data)
    if not isinstance(data, tuple | list) or len(data) != 2:
        kind = f"a {type(data).__name__}" if not isinstance(data, tuple | list) else f"{len(data)} items"
        raise DataError(f"{source} must be (x, y) arrays or a path to an .npz file, got {kind}")
    x, y = data
    return np.asarray(x), np.asarray(y)


def check_arrays(x, y=None, source: str = "data", x_name: str = "x", y_name: str = "y") -> None:
    """Raise :class:`DataError` when ``x`` is empty, ``x`` and ``y`` differ in length, or either holds NaN/inf."""
    x = np.asarray(x)
    if x.ndim == 0 or len(x) == 0:
        raise DataError(f"{source}: {x_name} holds no samples (shape {x.shape})")
    _check_finite(x, source, x_name)
    if y is None:
        return
    y = np.asarray(y)
    if y.ndim == 0 or len(x) != len(y):
        raise DataError(f"{source}: {len(x)} samples in {x_name} but {y.shape[0] if y.ndim else 0} in {y_name}")
    _check_finite(y, source, y_name)


def _check_finite(values: np.ndarray, source: str, name: str) -> None:
    if not np.issubdtype(values.dtype, np.number) and values.dtype != bool:
        raise DataError(f"{source}: {name} has dtype {values.dtype}; expected numbers")
    if not np.issubdtype(values.dtype, np.inexact):
        return
    bad = values.size - int(np.count_nonzero(np.isfinite(values)))
    if bad:
        first = np.unravel_index(int(np.argmin(np.isfinite(values))), values.shape)
        raise DataError(
            f"{source}: {name} holds {bad} NaN or infinite value(s), the first at index {tuple(map(int, first))}"
        )


def integer_labels(y) -> tuple[np.ndarray, int]:
    """``(class ids as int64, number of classes)`` from integer labels, shape ``(n,)``/``(n, 1)``, or one-hot rows.

    The class count is the one-hot width, or the largest id + 1 for integer labels.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        if not _is_one_hot(y):
            raise DataError(f"labels of shape {y.shape} are not one-hot rows (one 1 per row, zeros elsewhere)")
        return np.argmax(y, axis=1).astype(np.int64), int(y.shape[1])
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) == 0:
        raise DataError(f"labels of shape {y.shape}; expected class ids of shape (n,) or one-hot rows (n, classes)")
    if not _is_integral(y):
        raise DataError(f"labels must be integer class ids or one-hot rows; got values such as {_example(y)}")
    ids = y.astype(np.int64)
    if ids.min() < 0:
        raise DataError(f"labels must be class ids >= 0; got {ids.min()}")
    return ids, int(ids.max()) + 1


def _is_integral(y: np.ndarray) -> bool:
    if np.issubdtype(y.dtype, np.integer) or y.dtype == bool:
        return True
    return np.issubdtype(y.dtype, np.floating) and bool(np.all(np.isfinite(y)) and np.all(y == np.round(y)))


def _is_one_hot(y: np.ndarray) -> bool:
    return bool(np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1))


def _example(y: np.ndarray):
    flat = y.ravel()
    odd = flat[flat != np.round(flat)] if np.issubdtype(flat.dtype, np.floating) else flat
    return odd[0] if len(odd) else flat[0]


def check_data(model, x, y=None) -> None:
    """Raise :class:`DataError` unless ``x`` (and ``y``) fit ``model``'s input (and output), naming both shapes.

    ``x`` is an array (a list of arrays for a multi-input model) or a ``tf.data.Dataset`` yielding ``x`` or
    ``(x, y)``, batched or not. Labels may be class ids (``0 .. outputs - 1``), one-hot rows, or targets
    shaped like the output.
    """
    if _is_dataset(x):
        _check_dataset(model, x)
        return
    inputs = list(model.inputs)
    xs = list(x) if len(inputs) > 1 and isinstance(x, tuple | list) else [x]
    if len(xs) != len(inputs):
        raise DataError(f"model '{model.name}' has {len(inputs)} inputs but the data gives {len(xs)} array(s)")
    for tensor, value in zip(inputs, xs, strict=True):
        value = np.asarray(value)
        _check_shape(model, _shape(tensor), tuple(value.shape))
        check_arrays(value, None if y is None else y)
    if y is not None and len(model.outputs) == 1:
        check_labels(model, y)


def check_labels(model, y) -> None:
    """Raise :class:`DataError` unless ``y`` are labels or targets for ``model``'s single output."""
    y = np.asarray(y)
    output = _shape(model.outputs[0])
    units = output[-1]
    if y.shape[1:] == output[1:]:
        return
    if y.ndim == 2 and y.shape[1] > 1:
        raise DataError(
            f"labels have shape {y.shape} but model '{model.name}' outputs {output}; one-hot rows need {units} columns"
        )
    if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1) or len(output) != 2:
        raise DataError(f"labels have shape {y.shape} but model '{model.name}' outputs {output}")
    if units is None or units == 1:
        return
    ids, _ = integer_labels(y)
    if ids.max() >= units:
        raise DataError(
            f"labels go up to class {ids.max()} but model '{model.name}' has {units} outputs; "
            f"expected class ids 0..{units - 1}"
        )


def _check_shape(model, expected: tuple, got: tuple) -> None:
    """``got`` (batch first) must match ``expected`` wherever ``expected`` is fixed."""
    if len(got) == len(expected) and all(e is None or e == g for e, g in zip(expected[1:], got[1:], strict=True)):
        return
    hint = ""
    if len(got) == len(expected) - 1 and (*got[1:], 1) == expected[1:]:
        hint = "; add a channel axis: x[..., None]"
    elif tuple(got) == expected[1:]:
        hint = "; a single sample? add a batch axis: x[None]"
    elif len(got) == len(expected) and sorted(got[1:]) == sorted(d for d in expected[1:] if d is not None):
        hint = "; channels-first? gencprunex models are channels-last"
    raise DataError(
        f"model '{model.name}' expects input of shape {_fmt(expected)} but the data has shape {_fmt(got)}{hint}"
    )


def _check_dataset(model, dataset) -> None:
    spec = dataset.element_spec
    x_spec = spec[0] if isinstance(spec, tuple) else spec
    if isinstance(x_spec, tuple | list | dict):
        return  # multi-input datasets: left to Keras
    expected = _shape(model.inputs[0])
    got = tuple(x_spec.shape)
    batched = len(got) == len(expected)
    if not batched and len(got) != len(expected) - 1:
        raise DataError(
            f"model '{model.name}' expects input of shape {_fmt(expected)} but the dataset yields x of shape "
            f"{_fmt(got)}"
        )
    sample_got = got[1:] if batched else got
    if not all(e is None or g is None or e == g for e, g in zip(expected[1:], sample_got, strict=True)):
        raise DataError(
            f"model '{model.name}' expects input of shape {_fmt(expected)} but the dataset yields x of shape "
            f"{_fmt(got)}"
        )


def is_batched(model, dataset) -> bool:
    """Whether a dataset's ``x`` elements carry a batch axis for ``model`` (rank equals the model input's)."""
    spec = dataset.element_spec
    x_spec = spec[0] if isinstance(spec, tuple) else spec
    return len(tuple(x_spec.shape)) == len(_shape(model.inputs[0]))


def _is_dataset(value) -> bool:
    return type(value).__module__.startswith("tensorflow") and hasattr(value, "element_spec")


def _shape(tensor) -> tuple:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def _fmt(shape: tuple) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"

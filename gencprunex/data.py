"""Reading the data users hand to gencprunex: ``(x, y)`` arrays, a ``tf.data.Dataset`` or an ``.npz`` path."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from .errors import DataError

FEATURE_KEYS = ("features", "images", "x")
LABEL_KEYS = ("labels", "y")


def load_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from an ``.npz`` file with keys ``features``/``images`` and ``labels``.

    Labels may be one-hot or integer class ids; they are returned as stored.
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
    if len(x) != len(y):
        raise DataError(f"data file '{path}': {len(x)} samples in '{x_key}' but {len(y)} in '{y_key}'")
    return x, y


def resolve_data(data):
    """``data`` as given, except that a path to an ``.npz`` file is loaded into ``(x, y)``."""
    if isinstance(data, str | os.PathLike):
        return load_npz(data)
    return data

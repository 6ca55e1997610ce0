"""Loading and saving Keras models without losing what the user gave."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import ModelError

MODEL_SUFFIXES = (".keras", ".h5")


def check_model_suffix(path: Path, role: str) -> None:
    """Refuse a model file name Keras cannot read or write, naming its ``role`` (input, output)."""
    if path.suffix not in MODEL_SUFFIXES:
        raise ModelError(f"{role} model file '{path}' must end in .keras or .h5")


def load_model(path: str | os.PathLike):
    """Load a ``.keras`` or ``.h5`` model, with a one-line error for a missing or corrupt file."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file '{path}' does not exist")
    check_model_suffix(path, "input")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds for a bad file
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"model file '{path}' could not be loaded: {detail}") from None


def save_model_atomic(model, path: str | os.PathLike) -> Path:
    """Save ``model`` to ``path`` (.keras or .h5) through a temporary file, then rename it into place.

    A crash never leaves a half-written file at ``path``.
    """
    path = Path(path)
    check_model_suffix(path, "output")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    os.unlink(temporary)  # Keras refuses nothing, but h5py wants to create the file itself
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.is_file() else 0o644
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)

"""Exporting a Keras model for microcontrollers: a full-integer TFLite flatbuffer, then a C array for TFLite Micro.

:func:`to_tflite` converts with ``tf.lite.TFLiteConverter`` to int8 weights and activations, the batch fixed at 1
so that ``Flatten`` stays a single ``RESHAPE`` (with a dynamic batch, Keras 3 models turn it into
``SHAPE``/``STRIDED_SLICE``/``PACK``/``RESHAPE``, ops that cost memory and that some kernels libraries lack).
:func:`to_c_array` turns the flatbuffer into a ``.cc`` file to compile into the firmware.

TensorFlow is imported only when :func:`to_tflite` runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .data import resolve_data
from .errors import DataError, ModelError, ParameterError
from .saving import write_bytes_atomic

INFERENCE_TYPES = ("int8", "uint8", "float32")
"""Values allowed for ``input_type`` and ``output_type``."""

BYTES_PER_LINE = 12

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TF_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\-/]*")
_CPP_KEYWORD_LIST = """
    alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t char32_t class
    compl concept const consteval constexpr constinit const_cast continue co_await co_return co_yield decltype
    default delete do double dynamic_cast else enum explicit export extern false float for friend goto if inline
    int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public register
    reinterpret_cast requires return short signed sizeof static static_assert static_cast struct switch template
    this thread_local throw true try typedef typeid typename union unsigned using virtual void volatile wchar_t
    while xor xor_eq
"""
_CPP_KEYWORDS = frozenset(_CPP_KEYWORD_LIST.split())


def to_tflite(
    model,
    representative_data=None,
    path: str | os.PathLike | None = None,
    input_type: str = "int8",
    output_type: str = "int8",
    num_samples: int = 100,
    seed: int = 0,
) -> bytes:
    """Convert ``model`` to a full-integer (int8) TFLite flatbuffer with batch size 1.

    Args:
        model: a built, single-input Keras model whose input shape is fixed apart from the batch. It is not modified.
        representative_data: samples that set the quantisation ranges: ``(x, y)`` (or ``(x,)``) arrays, ``x`` alone,
            a ``tf.data.Dataset`` yielding ``x`` or ``(x, y)`` (batched or single samples), or a path to an
            ``.npz`` file with ``features``/``images`` and ``labels``. ``None`` uses standard-normal random inputs
            and warns: the ranges then fit random data, not yours, and accuracy suffers.
        path: when given, the flatbuffer is also written there, through a temporary file in the same folder that is
            renamed into place, so a crash never leaves a half-written file.
        input_type: dtype of the model's input tensor: ``"int8"``, ``"uint8"`` or ``"float32"``.
        output_type: dtype of the model's output tensor(s), from the same choices.
        num_samples: how many representative samples to use at most; arrays with more are subsampled at random
            (seeded), a dataset is read until that many samples came.
        seed: seed of that subsampling and of the random inputs used when ``representative_data`` is ``None``.

    Returns:
        The flatbuffer bytes (also when ``path`` is given).

    Raises:
        ParameterError: bad ``input_type``, ``output_type``, ``num_samples``, ``seed`` or ``path``.
        ModelError: the model is not a built single-input Keras model with a fixed input shape, or conversion failed.
        DataError: the representative data cannot be read, has the wrong sample shape, or holds NaN or inf.

    While the converter runs, its C++ log lines (written to file descriptor 2) are held back and shown only when the
    conversion fails; output from other threads to stderr in that window is held back too.
    """
    import tensorflow as tf

    tf_input_type = _inference_type(tf, "input_type", input_type)
    tf_output_type = _inference_type(tf, "output_type", output_type)
    if isinstance(num_samples, bool) or not isinstance(num_samples, int | np.integer) or num_samples < 1:
        raise ParameterError(f"num_samples must be a positive integer, got {num_samples!r}")
    try:
        rng = np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise ParameterError(f"seed must be an integer, got {seed!r}") from None
    target = _target_path(path) if path is not None else None

    input_shape, input_name = _model_input(model)
    sample_shape = input_shape[1:]
    if representative_data is None:
        warnings.warn(
            "to_tflite: no representative_data given, so the int8 quantisation ranges come from random data and "
            "accuracy will suffer; pass representative_data (a sample of your real inputs)",
            UserWarning,
            stacklevel=2,
        )
        samples = rng.standard_normal((int(num_samples), *sample_shape)).astype(np.float32)
    else:
        samples = _representative_samples(tf, representative_data, sample_shape, input_name, int(num_samples), rng)

    flatbuffer = _convert(tf, model, samples, input_name, tf_input_type, tf_output_type)
    if target is not None:
        write_bytes_atomic(target, flatbuffer)
    return flatbuffer


def to_c_array(tflite_bytes: bytes, name: str = "model_data") -> str:
    """C++ source (a ``.cc`` file) that defines ``tflite_bytes`` as a 16-byte aligned array for TFLite Micro.

    The file defines ``const unsigned char {name}[]`` and ``const unsigned int {name}_len``, both with external
    linkage (they are declared ``extern`` first), so other files reach them through ``extern`` declarations.
    """
    if not isinstance(tflite_bytes, bytes | bytearray | memoryview):
        raise ParameterError(f"tflite_bytes must be bytes, got {type(tflite_bytes).__name__}")
    data = bytes(tflite_bytes)
    if not data:
        raise ParameterError("tflite_bytes is empty")
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name) or name in _CPP_KEYWORDS:
        raise ParameterError(
            f"name {name!r} is not a valid C identifier (letters, digits and '_', not starting with a digit, "
            "not a keyword)"
        )
    rows = []
    for start in range(0, len(data), BYTES_PER_LINE):
        chunk = data[start : start + BYTES_PER_LINE]
        rows.append("    " + ", ".join(f"0x{byte:02x}" for byte in chunk) + ",")
    lines = [
        f"// TensorFlow Lite model as a C array: {len(data)} bytes. Generated by gencprunex; do not edit.",
        f"// Load it with tflite::GetModel({name}); the flatbuffer is 16-byte aligned as TFLite Micro expects.",
        "",
        "#include <cstddef>",
        "#include <cstdint>",
        "",
        f"extern const unsigned char {name}[];",
        f"extern const unsigned int {name}_len;",
        "",
        f"alignas(16) const unsigned char {name}[] = {{",
        *rows,
        "};",
        f"const unsigned int {name}_len = {len(data)};",
        "",
    ]
    return "\n".join(lines)


def _inference_type(tf, argument: str, value):
    """The TensorFlow dtype for ``input_type``/``output_type`` ``value``."""
    if not isinstance(value, str) or value not in INFERENCE_TYPES:
        allowed = ", ".join(repr(v) for v in INFERENCE_TYPES)
        raise ParameterError(f"{argument} {value!r} is not supported; use one of {allowed}")
    return {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}[value]


def _target_path(path) -> Path:
    """``path`` as a :class:`Path`, refused when it names a folder."""
    if not isinstance(path, str | os.PathLike):
        raise ParameterError(f"path must be a file path, got {type(path).__name__}")
    target = Path(path)
    if target.is_dir():
        raise ParameterError(f"cannot write the TFLite model to '{target}': it is a folder")
    return target


def _model_input(model) -> tuple[tuple[int, ...], str]:
    """Shape (batch first) and a TensorFlow-safe name of the single input of ``model``."""
    import keras

    if not isinstance(model, keras.Model):
        raise ModelError(f"to_tflite needs a Keras model, got {type(model).__name__}")
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ModelError(f"model '{model.name}' has no defined inputs; build it from keras.Input before exporting")
    if len(inputs) > 1:
        raise ModelError(f"model '{model.name}' has {len(inputs)} inputs; to_tflite exports single-input models only")
    tensor = inputs[0]
    shape = tuple(tensor.shape)
    if any(dim is None for dim in shape[1:]):
        raise ModelError(
            f"model '{model.name}' input has shape {shape}; every dimension but the batch must be fixed for export"
        )
    if not np.issubdtype(np.dtype(keras.backend.standardize_dtype(tensor.dtype)), np.floating):
        raise ModelError(
            f"model '{model.name}' input has dtype {tensor.dtype}; full-integer export needs a floating-point input"
        )
    name = str(getattr(tensor, "name", "") or "")
    if not _TF_NAME.fullmatch(name):
        name = "input"
    return (None, *(int(dim) for dim in shape[1:])), name


def _representative_samples(tf, data, sample_shape: tuple[int, ...], input_name: str, num_samples: int, rng):
    """At most ``num_samples`` float32 samples of shape ``sample_shape`` from ``data``, stacked on a batch axis."""
    data = resolve_data(data)
    if isinstance(data, tf.data.Dataset):
        samples = _samples_from_dataset(data, sample_shape, input_name, num_samples)
    else:
        if isinstance(data, tuple | list):
            if not data:
                raise DataError("representative_data is an empty sequence; pass x or (x, y)")
            data = data[0]
        samples = _as_samples(data, sample_shape, input_name)
        if len(samples) > num_samples:
            samples = samples[np.sort(rng.choice(len(samples), size=num_samples, replace=False))]
    if len(samples) == 0:
        raise DataError("representative_data holds no samples")
    bad = int(np.size(samples) - np.count_nonzero(np.isfinite(samples)))
    if bad:
        raise DataError(f"representative_data holds {bad} NaN or infinite value(s) in the samples used")
    return samples


def _samples_from_dataset(dataset, sample_shape, input_name: str, num_samples: int) -> np.ndarray:
    """The first ``num_samples`` samples a dataset yields (as ``x`` or ``(x, y)``, batched or not)."""
    parts, count = [], 0
    for element in dataset:
        if isinstance(element, tuple | list):
            if not element:
                raise DataError("representative_data dataset yields empty tuples; yield x or (x, y)")
            element = element[0]
        if isinstance(element, dict):
            raise DataError("representative_data dataset yields a dict; yield x or (x, y) for a single-input model")
        batch = _as_samples(element, sample_shape, input_name)
        parts.append(batch[: num_samples - count])
        count += len(parts[-1])
        if count >= num_samples:
            break
    if not parts:
        return np.zeros((0, *sample_shape), np.float32)
    return np.concatenate(parts, axis=0)


def _as_samples(x, sample_shape, input_name: str) -> np.ndarray:
    """``x`` as a float32 batch of samples; a single sample gets a batch axis."""
    try:
        array = np.asarray(x)
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise TypeError(f"dtype {array.dtype}")
        array = array.astype(np.float32)
    except (TypeError, ValueError) as error:
        raise DataError(f"representative_data cannot be read as numbers ({error})") from None
    if array.shape == tuple(sample_shape):
        array = array[np.newaxis]
    if array.ndim != len(sample_shape) + 1 or array.shape[1:] != tuple(sample_shape):
        got = tuple(array.shape[1:]) if array.ndim > 0 else ()
        raise DataError(
            f"representative_data samples have shape {got} but model input '{input_name}' expects {tuple(sample_shape)}"
        )
    return array


def _convert(tf, model, samples: np.ndarray, input_name: str, input_type, output_type) -> bytes:
    """Run the TFLite converter on a batch-1 trace of ``model``, calibrated on ``samples``."""
    spec = tf.TensorSpec((1, *samples.shape[1:]), tf.float32, name=input_name)

    def serve(x):
        return model(x, training=False)

    function = tf.function(serve)

    def representative_dataset():
        for index in range(len(samples)):
            yield [samples[index : index + 1]]

    with _quiet_conversion():
        try:
            concrete = function.get_concrete_function(spec)
            # Passing the tf.function as trackable object, and turning the SavedModel lowering off, keeps the
            # converter on the freeze-variables path; lowered to a SavedModel, Keras 3 variables come back unbound
            # and calibration fails in READ_VARIABLE.
            converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], function)
            converter.experimental_lower_to_saved_model = False
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = input_type
            converter.inference_output_type = output_type
            converter.representative_dataset = representative_dataset
            return bytes(converter.convert())
        except Exception as error:  # the converter raises many kinds, with long multi-line messages
            raise ModelError(
                f"TFLite conversion of model '{model.name}' failed: {_conversion_detail(error)}"
            ) from error


def _conversion_detail(error: Exception) -> str:
    """One line out of a converter error: the ops TFLite lacks, else the first MLIR error, else the first line."""
    text = str(error)
    missing = re.search(r"^TF Select ops: (.+)$", text, re.MULTILINE)
    if missing:
        ops = missing.group(1).strip()
        return f"ops {ops} are not TFLite builtins (TF Select/Flex ops do not run on microcontrollers)"
    first_error = re.search(r"error: (.+)$", text, re.MULTILINE)
    if first_error:
        return first_error.group(1).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


@contextlib.contextmanager
def _quiet_conversion() -> Iterator[None]:
    """Hold back the converter's chatter for the duration; every setting touched is restored on exit."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), _held_back_stderr():
            warnings.filterwarnings("ignore", message=r"Statistics for quantized inputs", category=UserWarning)
            yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _held_back_stderr() -> Iterator[None]:
    """Send file descriptor 2 (where TensorFlow's C++ logs go) to a temporary file; replay it if the body raises."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to redirect
        saved = None
    if saved is None:
        yield
        return
    with tempfile.TemporaryFile() as buffer:
        os.dup2(buffer.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                buffer.seek(0)
                held = buffer.read()[-65536:]
                with contextlib.suppress(OSError):
                    os.write(2, held)

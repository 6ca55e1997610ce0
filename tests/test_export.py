"""Export to full-integer TFLite and to a C array: types, batch-1 graph, accuracy, data forms, errors, files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from gencprunex import zoo
from gencprunex.errors import DataError, GencPruneXError, ModelError, ParameterError
from gencprunex.export import to_c_array, to_tflite

from .helpers import randomize

NUMPY_DTYPES = {"int8": np.int8, "uint8": np.uint8, "float32": np.float32}


@pytest.fixture(scope="module")
def vgg():
    return randomize(zoo.vgg_small(input_shape=(16, 16, 3)), seed=11)


@pytest.fixture(scope="module")
def autoencoder():
    return randomize(zoo.dense_autoencoder(), seed=12)


def normal(shape, seed):
    return np.random.default_rng(seed).normal(0.0, 1.0, shape).astype("float32")


@pytest.fixture(scope="module")
def vgg_data():
    return normal((120, 16, 16, 3), seed=100)


@pytest.fixture(scope="module")
def autoencoder_data():
    return normal((120, 64), seed=200)


@pytest.fixture(scope="module")
def vgg_int8(vgg, vgg_data):
    return to_tflite(vgg, (vgg_data, np.zeros(len(vgg_data))))


@pytest.fixture(scope="module")
def autoencoder_int8(autoencoder, autoencoder_data):
    return to_tflite(autoencoder, autoencoder_data)


def interpreter(flatbuffer: bytes) -> tf.lite.Interpreter:
    """A reference-kernel interpreter (no XNNPACK delegate, so the op list is the model's own)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter warns that it moves to ai_edge_litert
        result = tf.lite.Interpreter(
            model_content=flatbuffer,
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
    result.allocate_tensors()
    return result


def op_names(flatbuffer: bytes) -> set[str]:
    return {op["op_name"] for op in interpreter(flatbuffer)._get_ops_details()}


def run(flatbuffer: bytes, x: np.ndarray) -> np.ndarray:
    """Run the model one sample at a time, quantising the input and dequantising the output as their types ask."""
    model = interpreter(flatbuffer)
    (source,), (sink,) = model.get_input_details(), model.get_output_details()
    outputs = []
    for sample in x:
        value = sample[np.newaxis]
        if source["dtype"] != np.float32:
            scale, zero = source["quantization"]
            info = np.iinfo(source["dtype"])
            value = np.clip(np.round(value / scale + zero), info.min, info.max).astype(source["dtype"])
        model.set_tensor(source["index"], value)
        model.invoke()
        result = model.get_tensor(sink["index"]).astype(np.float32)
        if sink["dtype"] != np.float32:
            scale, zero = sink["quantization"]
            result = (result - zero) * scale
        outputs.append(result)
    return np.concatenate(outputs)


def one_line_error(error_type, call, match: str | None = None) -> str:
    with pytest.raises(error_type, match=match) as caught:
        call()
    message = str(caught.value)
    assert isinstance(caught.value, GencPruneXError)
    assert message and "\n" not in message
    return message


def test_default_export_is_full_integer_with_batch_one(vgg_int8):
    model = interpreter(vgg_int8)
    (source,), (sink,) = model.get_input_details(), model.get_output_details()
    assert source["dtype"] == np.int8 and sink["dtype"] == np.int8
    assert list(source["shape"]) == [1, 16, 16, 3]
    assert list(source["shape_signature"]) == [1, 16, 16, 3]
    assert list(sink["shape_signature"]) == [1, 10]
    assert source["name"] == "image"  # the Keras input's name survives
    assert {np.dtype(t["dtype"]) for t in model.get_tensor_details()} <= {np.dtype("int8"), np.dtype("int32")}


def test_flatten_stays_a_single_reshape(vgg_int8):
    ops = op_names(vgg_int8)
    assert not ops & {"SHAPE", "PACK", "STRIDED_SLICE"}, ops
    assert ops == {"CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"}


@pytest.mark.parametrize("input_type, output_type", [("uint8", "uint8"), ("float32", "float32"), ("int8", "float32")])
def test_inference_types(autoencoder, autoencoder_data, input_type, output_type):
    flatbuffer = to_tflite(autoencoder, autoencoder_data, input_type=input_type, output_type=output_type)
    model = interpreter(flatbuffer)
    (source,), (sink,) = model.get_input_details(), model.get_output_details()
    assert source["dtype"] == NUMPY_DTYPES[input_type]
    assert sink["dtype"] == NUMPY_DTYPES[output_type]
    assert list(source["shape_signature"]) == [1, 64]
    assert "FULLY_CONNECTED" in op_names(flatbuffer)


def test_int8_classifier_matches_float_model(vgg, vgg_int8):
    x = normal((40, 16, 16, 3), seed=101)  # same distribution as the representative data, other samples
    expected = vgg.predict(x, verbose=0)
    got = run(vgg_int8, x)
    assert np.max(np.abs(got - expected)) < 0.03
    assert np.mean(got.argmax(axis=1) == expected.argmax(axis=1)) >= 0.9


def test_int8_autoencoder_matches_float_model(autoencoder, autoencoder_int8):
    x = normal((40, 64), seed=201)
    expected = autoencoder.predict(x, verbose=0)
    got = run(autoencoder_int8, x)
    error = np.sqrt(np.mean((got - expected) ** 2))
    assert error < 0.1 * np.std(expected), (error, np.std(expected))


def test_float_io_model_matches_float_model(autoencoder, autoencoder_data):
    flatbuffer = to_tflite(autoencoder, autoencoder_data, input_type="float32", output_type="float32")
    x = normal((20, 64), seed=202)
    expected = autoencoder.predict(x, verbose=0)
    assert np.sqrt(np.mean((run(flatbuffer, x) - expected) ** 2)) < 0.1 * np.std(expected)


def test_random_data_warning(autoencoder):
    with pytest.warns(UserWarning, match=r"random data.*representative_data") as record:
        flatbuffer = to_tflite(autoencoder, num_samples=8)
    assert all(w.filename == __file__ for w in record if "random data" in str(w.message))
    assert interpreter(flatbuffer).get_input_details()[0]["dtype"] == np.int8


def test_no_warning_with_representative_data(autoencoder, autoencoder_data):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        to_tflite(autoencoder, autoencoder_data, num_samples=8)
    assert not [w for w in record if issubclass(w.category, UserWarning)], [str(w.message) for w in record]


def test_random_data_is_seeded(autoencoder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = to_tflite(autoencoder, num_samples=8, seed=3)
        second = to_tflite(autoencoder, num_samples=8, seed=3)
    assert first == second


def test_data_forms_give_the_same_model(autoencoder, autoencoder_data, tmp_path):
    x = autoencoder_data[:30]
    y = np.arange(len(x)) % 3
    archive = tmp_path / "sample.npz"
    np.savez(archive, features=x, labels=y)
    forms = {
        "x": x,
        "(x, y)": (x, y),
        "npz": archive,
        "npz str": str(archive),
        "dataset (x, y) batched": tf.data.Dataset.from_tensor_slices((x, y)).batch(7),
        "dataset x unbatched": tf.data.Dataset.from_tensor_slices(x),
        "tensor": tf.constant(x),
    }
    results = {name: to_tflite(autoencoder, data, num_samples=30) for name, data in forms.items()}
    assert len(set(results.values())) == 1, {name: len(b) for name, b in results.items()}


def test_dataset_is_read_only_as_far_as_needed(autoencoder, autoencoder_data):
    endless = tf.data.Dataset.from_tensor_slices(autoencoder_data).batch(4).repeat()
    flatbuffer = to_tflite(autoencoder, endless, num_samples=10)
    assert flatbuffer == to_tflite(autoencoder, autoencoder_data[:10], num_samples=10)


def test_path_is_written_atomically(autoencoder, autoencoder_data, tmp_path):
    target = tmp_path / "out" / "model.tflite"
    flatbuffer = to_tflite(autoencoder, autoencoder_data, path=target, num_samples=10)
    assert target.read_bytes() == flatbuffer
    assert os.listdir(target.parent) == ["model.tflite"]
    target.write_bytes(b"old contents")  # an existing file is replaced, still leaving nothing else behind
    assert to_tflite(autoencoder, autoencoder_data, path=str(target), num_samples=10) == flatbuffer
    assert target.read_bytes() == flatbuffer
    assert os.listdir(target.parent) == ["model.tflite"]


def test_failed_export_leaves_no_file(autoencoder, tmp_path):
    target = tmp_path / "model.tflite"
    one_line_error(DataError, lambda: to_tflite(autoencoder, np.full((4, 64), np.nan), path=target))
    assert not target.exists() and os.listdir(tmp_path) == []


def test_folder_as_path_is_refused(autoencoder, autoencoder_data, tmp_path):
    one_line_error(ParameterError, lambda: to_tflite(autoencoder, autoencoder_data, path=tmp_path), match="folder")


def test_input_model_is_not_modified(vgg, vgg_data):
    before = [w.copy() for w in vgg.get_weights()]
    names = [w.path for w in vgg.weights]
    config = vgg.get_config()
    to_tflite(vgg, vgg_data, num_samples=10)
    after = vgg.get_weights()
    assert [w.path for w in vgg.weights] == names
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert vgg.get_config() == config
    assert tuple(vgg.inputs[0].shape) == (None, 16, 16, 3)


@pytest.mark.parametrize("argument", ["input_type", "output_type"])
@pytest.mark.parametrize("value", ["int16", "float16", "INT8", None])
def test_bad_inference_type(autoencoder, autoencoder_data, argument, value):
    message = one_line_error(ParameterError, lambda: to_tflite(autoencoder, autoencoder_data, **{argument: value}))
    assert argument in message and repr(value) in message
    assert all(repr(allowed) in message for allowed in ("int8", "uint8", "float32"))


@pytest.mark.parametrize("num_samples", [0, -3, 2.5, True])
def test_bad_num_samples(autoencoder, autoencoder_data, num_samples):
    one_line_error(ParameterError, lambda: to_tflite(autoencoder, autoencoder_data, num_samples=num_samples))


def test_wrong_sample_shape(vgg):
    message = one_line_error(DataError, lambda: to_tflite(vgg, normal((8, 8, 8, 3), seed=0)))
    assert "(8, 8, 3)" in message and "(16, 16, 3)" in message
    dataset = tf.data.Dataset.from_tensor_slices(normal((8, 16, 16, 1), seed=0)).batch(2)
    message = one_line_error(DataError, lambda: to_tflite(vgg, dataset))
    assert "(16, 16, 1)" in message and "(16, 16, 3)" in message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_data(autoencoder, autoencoder_data, bad):
    x = autoencoder_data[:10].copy()
    x[3, 5] = bad
    one_line_error(DataError, lambda: to_tflite(autoencoder, x), match="NaN or infinite")


def test_unreadable_data(autoencoder, tmp_path):
    one_line_error(DataError, lambda: to_tflite(autoencoder, np.array([["a"] * 64])))
    one_line_error(DataError, lambda: to_tflite(autoencoder, np.zeros((0, 64))))
    one_line_error(DataError, lambda: to_tflite(autoencoder, tmp_path / "missing.npz"), match="does not exist")


def test_multi_input_model_is_refused():
    left, right = keras.Input((4,), name="left"), keras.Input((4,), name="right")
    model = keras.Model([left, right], keras.layers.Dense(2)(keras.layers.Concatenate()([left, right])))
    one_line_error(ModelError, lambda: to_tflite(model, normal((4, 4), seed=0)), match="2 inputs")


def test_variable_input_shape_is_refused():
    inputs = keras.Input((None, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(keras.layers.Conv1D(4, 3)(inputs)))
    one_line_error(ModelError, lambda: to_tflite(model, normal((4, 10, 3), seed=0)), match="fixed")


def test_not_a_model_is_refused():
    one_line_error(ModelError, lambda: to_tflite(lambda x: x, normal((4, 4), seed=0)))


def parse_c_array(source: str) -> bytes:
    body = source[source.index("= {") : source.index("};")]
    return bytes(int(value, 16) for value in re.findall(r"0x([0-9a-f]{2})", body))


def test_c_array_layout(autoencoder_int8):
    source = to_c_array(autoencoder_int8, name="g_model")
    assert source.startswith("//")
    assert "#include <cstdint>" in source and "#include <cstddef>" in source
    assert "alignas(16) const unsigned char g_model[] = {" in source
    assert f"const unsigned int g_model_len = {len(autoencoder_int8)};" in source.splitlines()
    rows = [line for line in source.splitlines() if line.startswith("    0x")]
    assert all(line.count("0x") == 12 for line in rows[:-1]) and 1 <= rows[-1].count("0x") <= 12
    assert parse_c_array(source) == autoencoder_int8


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
def test_c_array_compiles_and_links(autoencoder_int8, tmp_path):
    (tmp_path / "model_data.cc").write_text(to_c_array(autoencoder_int8))
    (tmp_path / "main.cc").write_text(
        "#include <cstdint>\n#include <cstdio>\n"
        "extern const unsigned char model_data[];\nextern const unsigned int model_data_len;\n"
        "int main() {\n"
        "  unsigned long sum = 0;\n"
        "  for (unsigned int i = 0; i < model_data_len; ++i) sum += model_data[i];\n"
        '  std::printf("%u %lu %lu\\n", model_data_len, sum,\n'
        "              static_cast<unsigned long>(reinterpret_cast<std::uintptr_t>(model_data) % 16));\n"
        "}\n"
    )
    compile_only = ["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-c", "model_data.cc", "-o", "model_data.o"]
    subprocess.run(compile_only, cwd=tmp_path, check=True, capture_output=True, text=True)
    link = ["g++", "-std=c++17", "main.cc", "model_data.o", "-o", "check"]
    subprocess.run(link, cwd=tmp_path, check=True, capture_output=True, text=True)
    output = subprocess.run([str(tmp_path / "check")], check=True, capture_output=True, text=True).stdout.split()
    assert output == [str(len(autoencoder_int8)), str(sum(autoencoder_int8)), "0"]


@pytest.mark.parametrize("name", ["", "1model", "my-model", "model data", "int", "class", "naïve", 7])
def test_c_array_bad_name(name):
    one_line_error(ParameterError, lambda: to_c_array(b"\x00\x01", name=name))


def test_c_array_bad_bytes():
    one_line_error(ParameterError, lambda: to_c_array(b""))
    one_line_error(ParameterError, lambda: to_c_array("not bytes"))
    assert parse_c_array(to_c_array(bytearray(range(25)), name="_m2")) == bytes(range(25))


def test_unsupported_op_is_a_model_error(capfd):
    inputs = keras.Input((8,), name="signal")
    outputs = keras.layers.Lambda(keras.ops.erf)(keras.layers.Dense(8)(inputs))
    model = keras.Model(inputs, outputs, name="with_erf")
    message = one_line_error(ModelError, lambda: to_tflite(model, normal((6, 8), seed=0)), match="Erf")
    assert "with_erf" in message and "builtin" in message
    capfd.readouterr()


def test_conversion_is_quiet(autoencoder, autoencoder_data, capfd):
    capfd.readouterr()
    to_tflite(autoencoder, autoencoder_data, num_samples=8)
    captured = capfd.readouterr()
    assert "fully_quantize" not in captured.err and "Statistics for quantized inputs" not in captured.err
    assert captured.out == ""

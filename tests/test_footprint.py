"""estimate() and measure(): RAM, Flash and MACs of zoo models, pruned and unpruned."""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest

from gencprunex import FixedPruner, HardwareProfile, LayerGraph, zoo
from gencprunex.errors import ParameterError, UnsupportedLayerError
from gencprunex.export import to_tflite
from gencprunex.hardware.measure import measure_tflite
from gencprunex.hardware.tflite_file import read_tflite
from gencprunex.macs import total_macs
from tests.helpers import randomize

HW = HardwareProfile()
ZOO = [
    "seed_mobilenet",
    "ds_cnn_kws",
    "small_cnn",
    "vgg_small",
    "dense_autoencoder",
    "time_series_cnn",
    "resnet8",
    "se_cnn",
    "inception_cnn",
]


def _sample(model, n=8):
    return np.random.default_rng(0).normal(0.0, 1.0, (n, *model.inputs[0].shape[1:])).astype("float32")


@pytest.fixture(scope="module", params=ZOO)
def zoo_case(request):
    """(model, pruned model, pruner, exported bytes of both) with random non-zero biases, like a trained model."""
    keras.utils.set_random_seed(0)
    model = randomize(getattr(zoo, request.param)())
    pruner = FixedPruner(0.5).fit(model)
    pruned = pruner.transform()
    data = _sample(model)
    return model, pruned, pruner, to_tflite(model, data), to_tflite(pruned, data)


def test_measure_flash_is_file_size_and_macs_are_exact(zoo_case):
    model, pruned, _, original_bytes, pruned_bytes = zoo_case
    for keras_model, data in ((model, original_bytes), (pruned, pruned_bytes)):
        footprint = measure_tflite(data)
        assert footprint.flash == len(data)
        assert footprint.macs == total_macs(keras_model)
        assert footprint.ram == footprint.details["arena_head"] + footprint.details["arena_tail"]


def test_estimate_predicts_the_converted_graph(zoo_case):
    model, _pruned, pruner, original_bytes, pruned_bytes = zoo_case
    for footprint, data in (
        (HW.estimate(model), original_bytes),
        (HW.estimate(pruner.graph_, pruner.plan_), pruned_bytes),
    ):
        real = measure_tflite(data)
        assert [r["op"] for r in footprint.layers] == [r["op"] for r in real.layers]
        assert footprint.macs == real.macs
        assert footprint.params == real.params
        assert footprint.details["arena_head"] == real.details["arena_head"]
        assert abs(footprint.ram - real.ram) <= 0.01 * real.ram
        assert abs(footprint.flash - real.flash) <= 0.05 * real.flash


def test_estimate_of_a_plan_equals_estimate_of_the_pruned_model(zoo_case):
    _, pruned, pruner, _, _ = zoo_case
    from_plan = HW.estimate(pruner.graph_, pruner.plan_)
    from_model = HW.estimate(pruned)
    assert (from_plan.ram, from_plan.macs, from_plan.params) == (from_model.ram, from_model.macs, from_model.params)
    counts = {name: len(kept) for name, kept in pruner.plan_.items()}
    assert HW.estimate(pruner.graph_, counts).ram == from_plan.ram


def test_seed_mobilenet_matches_the_reference_figures():
    """Reference (notes): MACs 7,507,648; Flash 313,120 B; RAM 101,828 B (uint8 in, float out, weights=None)."""
    keras.utils.set_random_seed(0)
    model = zoo.seed_mobilenet()
    data = to_tflite(model, _sample(model, 4), input_type="uint8", output_type="float32")
    measured = measure_tflite(data)
    estimated = HW.estimate(model, input_type="uint8", output_type="float32")
    assert measured.macs == estimated.macs == 7_507_648
    assert abs(measured.flash - 313_120) <= 0.01 * 313_120
    # Untrained weights: the converter shares identical all-zero bias buffers and shortens fused names, which
    # the estimator (made for trained models) does not predict; it stays on the safe side, within 6 %.
    assert 0 <= estimated.flash - measured.flash <= 0.06 * measured.flash
    for footprint in (measured, estimated):
        assert abs(footprint.ram - 101_828) <= 0.02 * 101_828


def test_pruning_shrinks_every_budget(zoo_case):
    model, _, pruner, _, _ = zoo_case
    before, after = HW.estimate(model), HW.estimate(pruner.graph_, pruner.plan_)
    assert after.macs < before.macs and after.flash < before.flash and after.ram <= before.ram


def test_float_io_adds_quantize_ops_and_io_bytes():
    model = randomize(zoo.small_cnn())
    int8 = HW.estimate(model)
    floats = HW.estimate(model, input_type="float32", output_type="float32")
    assert next(r["op"] for r in floats.layers) == "QUANTIZE"
    assert [r["op"] for r in floats.layers][-1] == "DEQUANTIZE"
    assert floats.ram > int8.ram


def test_estimate_is_fast_on_the_seed_mobilenet():
    model = zoo.seed_mobilenet()
    pruner = FixedPruner(0.5).fit(model)
    HW.estimate(pruner.graph_, pruner.plan_, layers=False)
    start = time.perf_counter()
    for _ in range(20):
        HW.estimate(pruner.graph_, pruner.plan_, layers=False)
    per_call = (time.perf_counter() - start) / 20
    assert per_call < 0.05  # the benchmark checks the 5 ms target; this only catches gross regressions


def test_unknown_layers_are_named_unless_strict_is_off():
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    inputs = keras.Input((16,))
    hidden = keras.layers.Dense(8, activation="relu", name="fc")(inputs)
    outputs = keras.layers.Dense(2, name="out")(Doubler(name="doubler")(hidden))
    model = keras.Model(inputs, outputs)
    with pytest.raises(UnsupportedLayerError, match="doubler"):
        HW.estimate(model)
    footprint = HW.estimate(model, strict=False)
    assert footprint.details["skipped"] == ["doubler"]
    assert footprint.macs == 16 * 8 + 8 * 2


def test_bad_arguments_are_refused():
    model = zoo.small_cnn()
    with pytest.raises(ParameterError, match="input_type"):
        HW.estimate(model, input_type="int4")
    graph = LayerGraph(model)
    with pytest.raises(ParameterError, match="keeps 0 channels"):
        HW.estimate(graph, {"conv1": 0})
    with pytest.raises(ParameterError, match="backend"):
        HW.measure(model, backend="mltk")


def test_measure_runs_the_export(zoo_case):
    model, *_ = zoo_case
    if model.name != "small_cnn":
        pytest.skip("one export round trip is enough")
    footprint = HW.measure(model, _sample(model))
    assert footprint.macs == total_macs(model)
    assert read_tflite(to_tflite(model, _sample(model))).op_types() == [r["op"] for r in footprint.layers]

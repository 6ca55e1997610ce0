"""MACs per layer, as TFLite Micro executes the model, checked against hand counts."""

from __future__ import annotations

import keras

from gencprunex.macs import count_macs, total_macs

L = keras.layers


def test_hand_counted_layers():
    inputs = keras.Input((10, 10, 3))
    x = L.Conv2D(8, 3, name="conv")(inputs)  # 8x8 out
    x = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(x)  # 8x8x16
    x = L.SeparableConv2D(4, 3, strides=2, padding="same", name="sep")(x)  # 4x4x4
    x = L.MaxPooling2D(name="pool")(x)
    x = L.Flatten()(x)
    outputs = L.Dense(5, name="fc")(x)
    macs = count_macs(keras.Model(inputs, outputs))
    assert macs == {
        "conv": 8 * 8 * 8 * 3 * 3 * 3,
        "dw": 8 * 8 * 16 * 3 * 3,
        "sep": 4 * 4 * 16 * 3 * 3 + 4 * 4 * 16 * 4,
        "fc": 5 * 16,
    }


def test_one_dimensional_layers():
    model = keras.Sequential(
        [keras.Input((32, 4)), L.Conv1D(6, 5, name="c"), L.SeparableConv1D(3, 3, name="s"), L.Dense(2, name="d")]
    )
    assert count_macs(model) == {"c": 28 * 6 * 5 * 4, "s": 26 * 6 * 3 + 26 * 6 * 3, "d": 26 * 2 * 3}


def test_seed_mobilenet_total(mobilenet):
    assert total_macs(mobilenet) == 7_507_648

"""Reference models: the seed's MobileNet and small TinyML architectures used by the demo,
the benchmarks and the tests. All are built untrained (``weights=None``); nothing is downloaded."""

from __future__ import annotations

import keras

L = keras.layers


def seed_mobilenet(input_shape=(96, 96, 3), alpha: float = 0.25, num_classes: int = 2, name: str = "seed_mobilenet"):
    """MobileNetV1 (alpha 0.25) with the seed's classification head: GAP → 64 → 32 → classes.

    Same layers as the original tool's base model, without its training-time augmentation.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    backbone = keras.applications.MobileNet(input_tensor=inputs, include_top=False, alpha=alpha, weights=None)
    x = L.GlobalAveragePooling2D(name="pool")(backbone.output)
    x = L.Dropout(0.2, name="drop_1")(x)
    x = L.Dense(64, activation="relu", name="fc_64")(x)
    x = L.Dropout(0.3, name="drop_2")(x)
    x = L.Dense(32, activation="relu", name="fc_32")(x)
    x = L.Dropout(0.3, name="drop_3")(x)
    outputs = L.Dense(num_classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name=name)


def vgg_small(input_shape=(32, 32, 3), num_classes: int = 10, name: str = "vgg_small"):
    """A VGG-style Sequential CNN ending in Flatten → Dense."""
    return keras.Sequential(
        [
            keras.Input(shape=input_shape, name="image"),
            L.Conv2D(16, 3, padding="same", use_bias=False, name="block1_conv1"),
            L.BatchNormalization(name="block1_bn1"),
            L.ReLU(name="block1_relu1"),
            L.Conv2D(16, 3, padding="same", activation="relu", name="block1_conv2"),
            L.MaxPooling2D(name="block1_pool"),
            L.Conv2D(32, 3, padding="same", name="block2_conv1"),
            L.BatchNormalization(name="block2_bn1"),
            L.Activation("relu", name="block2_relu1"),
            L.Conv2D(32, 3, padding="same", activation="relu", name="block2_conv2"),
            L.MaxPooling2D(name="block2_pool"),
            L.Conv2D(48, 3, padding="same", activation="relu", name="block3_conv1"),
            L.MaxPooling2D(name="block3_pool"),
            L.Flatten(name="flatten"),
            L.Dense(64, activation="relu", name="fc1"),
            L.Dropout(0.5, name="fc1_drop"),
            L.Dense(num_classes, activation="softmax", name="predictions"),
        ],
        name=name,
    )


def time_series_cnn(input_shape=(128, 9), num_classes: int = 6, name: str = "har_cnn1d"):
    """A 1-D CNN for sensor time series that uses every 1-D layer kind gencprunex supports."""
    inputs = keras.Input(shape=input_shape, name="signal")
    x = L.ZeroPadding1D(2, name="pad")(inputs)
    x = L.Conv1D(24, 5, name="conv1")(x)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.ReLU(max_value=6.0, name="relu6_1")(x)
    x = L.MaxPooling1D(2, name="pool1")(x)
    x = L.DepthwiseConv1D(3, padding="same", name="dw1")(x)
    x = L.BatchNormalization(name="bn_dw1")(x)
    x = L.LeakyReLU(negative_slope=0.1, name="leaky1")(x)
    x = L.Conv1D(32, 1, name="pw1")(x)
    x = L.PReLU(name="prelu1")(x)
    x = L.SpatialDropout1D(0.1, name="sdrop1")(x)
    x = L.SeparableConv1D(40, 3, padding="same", activation="relu", name="sep1")(x)
    x = L.AveragePooling1D(2, name="pool2")(x)
    x = L.DepthwiseConv1D(3, depth_multiplier=2, padding="same", name="dw2")(x)
    x = L.Activation("swish", name="swish2")(x)
    x = L.Cropping1D((1, 1), name="crop")(x)
    x = L.UpSampling1D(2, name="up")(x)
    x = L.SeparableConv1D(32, 3, depth_multiplier=2, padding="same", name="sep2")(x)
    x = L.ELU(name="elu2")(x)
    x = L.GlobalMaxPooling1D(name="gmp")(x)
    x = L.Dense(32, activation="relu", name="fc")(x)
    x = L.Dropout(0.2, name="fc_drop")(x)
    outputs = L.Dense(num_classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name=name)


def dense_autoencoder(input_dim: int = 64, name: str = "fc_autoencoder"):
    """A fully connected autoencoder (anomaly detection style): 64 → 32 → 16 → 8 → 16 → 32 → 64."""
    return keras.Sequential(
        [
            keras.Input(shape=(input_dim,), name="features"),
            L.Dense(32, activation="relu", name="enc_1"),
            L.Dense(16, activation="relu", name="enc_2"),
            L.Dense(8, activation="relu", name="bottleneck"),
            L.Dense(16, activation="relu", name="dec_1"),
            L.Dense(32, activation="relu", name="dec_2"),
            L.Dense(input_dim, name="reconstruction"),
        ],
        name=name,
    )


def ds_cnn_kws(input_shape=(49, 10, 1), filters: int = 64, num_classes: int = 12, name: str = "ds_cnn_kws"):
    """The MLPerf Tiny keyword-spotting DS-CNN: a strided 10x4 conv, four depthwise-separable blocks
    (depthwise 3x3 + BN + ReLU, pointwise 1x1 + BN + ReLU), average pooling over the whole map, Flatten, Dense."""
    inputs = keras.Input(shape=input_shape, name="mfcc")
    x = L.Conv2D(filters, (10, 4), strides=2, padding="same", use_bias=False, name="conv1")(inputs)
    x = L.BatchNormalization(name="conv1_bn")(x)
    x = L.ReLU(name="conv1_relu")(x)
    x = L.Dropout(0.2, name="conv1_drop")(x)
    for block in range(1, 5):
        x = L.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"dw{block}")(x)
        x = L.BatchNormalization(name=f"dw{block}_bn")(x)
        x = L.ReLU(name=f"dw{block}_relu")(x)
        x = L.Conv2D(filters, 1, use_bias=False, name=f"pw{block}")(x)
        x = L.BatchNormalization(name=f"pw{block}_bn")(x)
        x = L.ReLU(name=f"pw{block}_relu")(x)
    x = L.Dropout(0.4, name="drop")(x)
    x = L.AveragePooling2D(pool_size=tuple(x.shape[1:3]), name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    outputs = L.Dense(num_classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name=name)


def small_cnn(input_shape=(28, 28, 1), num_classes: int = 10, name: str = "small_cnn"):
    """A two-conv image classifier of the kind found in microcontroller tutorials."""
    return keras.Sequential(
        [
            keras.Input(shape=input_shape, name="image"),
            L.Conv2D(8, 3, activation="relu", name="conv1"),
            L.MaxPooling2D(name="pool1"),
            L.Conv2D(16, 3, activation="relu", name="conv2"),
            L.MaxPooling2D(name="pool2"),
            L.Flatten(name="flatten"),
            L.Dense(32, activation="relu", name="fc"),
            L.Dense(num_classes, activation="softmax", name="classes"),
        ],
        name=name,
    )

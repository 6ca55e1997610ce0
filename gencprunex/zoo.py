"""Reference models: the seed's MobileNet and small TinyML architectures used by the demo,
the benchmarks and the tests. All are built untrained (``weights=None``); nothing is downloaded."""

from __future__ import annotations

import keras
import numpy as np

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


def har_cnn(input_shape=(128, 9), num_classes: int = 6, name: str = "har_cnn"):
    """A plain 1-D CNN for inertial activity windows (UCI-HAR's 128 steps x 9 channels).

    Three Conv1D-BatchNorm-ReLU blocks (32, 64, 64 filters), global average pooling, a 64-unit head:
    the kind of model a TinyML activity classifier ships with (about 1.2M MACs, 29k weights).
    """
    inputs = keras.Input(shape=input_shape, name="signal")
    x = inputs
    for index, (filters, width) in enumerate(((32, 5), (64, 5), (64, 3)), start=1):
        x = L.Conv1D(filters, width, padding="same", use_bias=False, name=f"conv{index}")(x)
        x = L.BatchNormalization(name=f"bn{index}")(x)
        x = L.ReLU(name=f"relu{index}")(x)
        if index < 3:
            x = L.MaxPooling1D(2, name=f"pool{index}")(x)
    x = L.GlobalAveragePooling1D(name="gap")(x)
    x = L.Dense(64, activation="relu", name="fc_64")(x)
    x = L.Dropout(0.3, name="drop")(x)
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


def _conv_bn(x, filters: int, kernel_size: int, name: str, strides: int = 1, relu: bool = True):
    """Conv2D (same padding, L2 weight decay) → BatchNormalization → optional ReLU."""
    x = L.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        kernel_initializer="he_normal",
        kernel_regularizer=keras.regularizers.L2(1e-4),
        name=name,
    )(x)
    x = L.BatchNormalization(name=f"{name}_bn")(x)
    return L.ReLU(name=f"{name}_relu")(x) if relu else x


def resnet8(input_shape=(32, 32, 3), num_classes: int = 10, name: str = "resnet8"):
    """MLPerf Tiny's image-classification ResNet-8: a 16-filter stem and three residual stacks of
    16, 32 and 64 filters (two 3x3 conv + BN, ReLU between; the last two stacks halve the map and take a
    strided 1x1 projection shortcut), average pooling over the whole map, Flatten, Dense softmax."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn(inputs, 16, 3, "stem")
    for stack, filters in enumerate((16, 32, 64), start=1):
        strides = 1 if stack == 1 else 2
        y = _conv_bn(x, filters, 3, f"stack{stack}_conv1", strides=strides)
        y = _conv_bn(y, filters, 3, f"stack{stack}_conv2", relu=False)
        if strides != 1 or x.shape[-1] != filters:
            x = L.Conv2D(
                filters,
                1,
                strides=strides,
                padding="same",
                kernel_initializer="he_normal",
                kernel_regularizer=keras.regularizers.L2(1e-4),
                name=f"stack{stack}_shortcut",
            )(x)
        x = L.Add(name=f"stack{stack}_add")([x, y])
        x = L.ReLU(name=f"stack{stack}_relu")(x)
    x = L.AveragePooling2D(pool_size=tuple(x.shape[1:3]), name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    outputs = L.Dense(num_classes, activation="softmax", kernel_initializer="he_normal", name="classes")(x)
    return keras.Model(inputs, outputs, name=name)


def mobilenet_v2(alpha: float = 0.35, input_shape=(96, 96, 3), num_classes: int = 2, name: str = "mobilenet_v2"):
    """keras.applications.MobileNetV2 (inverted residual blocks joined by Add, untrained) with a
    GlobalAveragePooling → Dropout → Dense softmax head."""
    inputs = keras.Input(shape=input_shape, name="image")
    backbone = keras.applications.MobileNetV2(input_tensor=inputs, include_top=False, alpha=alpha, weights=None)
    x = L.GlobalAveragePooling2D(name="pool")(backbone.output)
    x = L.Dropout(0.2, name="drop")(x)
    outputs = L.Dense(num_classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name=name)


def se_cnn(input_shape=(32, 32, 3), num_classes: int = 10, ratio: int = 4, name: str = "se_cnn"):
    """A small CNN with a squeeze-and-excitation block: the feature map is scaled channel by channel by a
    (1, 1, C) sigmoid gate computed from its global average (GAP → Reshape → Dense → Dense → Multiply)."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn(inputs, 16, 3, "conv1", strides=2)
    x = _conv_bn(x, 32, 3, "conv2", strides=2)
    channels = int(x.shape[-1])
    gate = L.GlobalAveragePooling2D(name="se_squeeze")(x)
    gate = L.Reshape((1, 1, channels), name="se_reshape")(gate)
    gate = L.Dense(channels // ratio, activation="relu", name="se_reduce")(gate)
    gate = L.Dense(channels, activation="sigmoid", name="se_expand")(gate)
    x = L.Multiply(name="se_excite")([x, gate])
    x = _conv_bn(x, 48, 3, "conv3", strides=2)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    outputs = L.Dense(num_classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name=name)


def inception_cnn(input_shape=(32, 32, 3), num_classes: int = 10, name: str = "inception_cnn"):
    """A small CNN with an Inception-style block: a 1x1 branch, a 1x1 → 3x3 branch and a max-pooling branch
    (which carries the block's input channels) concatenated on the channel axis and read by a 1x1 conv."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn(inputs, 16, 3, "stem", strides=2)
    a = _conv_bn(x, 8, 1, "branch_1x1")
    b = _conv_bn(x, 8, 1, "branch_3x3_reduce")
    b = _conv_bn(b, 16, 3, "branch_3x3")
    c = L.MaxPooling2D(3, strides=1, padding="same", name="branch_pool")(x)
    x = L.Concatenate(name="mixed")([a, b, c])
    x = _conv_bn(x, 32, 1, "mixed_project")
    x = L.MaxPooling2D(name="pool1")(x)
    x = _conv_bn(x, 32, 3, "conv2")
    x = L.GlobalAveragePooling2D(name="pool")(x)
    outputs = L.Dense(num_classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name=name)


def with_trained_statistics(model, seed: int = 0):
    """Give ``model``'s biases, BatchNorm parameters/statistics and PReLU slopes random non-trivial values.

    An untrained model has all-zero biases, which the TFLite converter drops or shares, so its file is
    not representative of a trained one; kernels keep their (random, fan-in scaled) initial values.
    Modifies ``model`` in place and returns it. For benchmarks and tests only.
    """
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for weight in layer.weights:
            if weight.name in ("kernel", "depthwise_kernel", "pointwise_kernel") or "seed" in weight.path:
                continue
            shape = tuple(weight.shape)
            if weight.name in ("gamma", "moving_variance"):
                value = rng.uniform(0.5, 1.5, shape)
            elif weight.name == "alpha":
                value = rng.uniform(0.05, 0.3, shape)
            else:
                value = rng.normal(0.0, 0.1, shape)
            weight.assign(value.astype(weight.dtype))
    return model

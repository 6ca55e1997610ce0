"""Shared fixtures: quiet TensorFlow, deterministic ops, the reference models with random weights."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import pytest

from gencprunex import zoo

from .helpers import randomize

BUILDERS = {
    "seed_mobilenet": zoo.seed_mobilenet,
    "vgg_small": zoo.vgg_small,
    "time_series_cnn": zoo.time_series_cnn,
    "dense_autoencoder": zoo.dense_autoencoder,
}


@pytest.fixture(scope="session", autouse=True)
def _seeded():
    keras.utils.set_random_seed(1234)


@pytest.fixture(scope="session")
def reference_models():
    """Each reference model once per session, with random biases and BatchNorm statistics."""
    return {name: randomize(build(), seed=i) for i, (name, build) in enumerate(BUILDERS.items())}


@pytest.fixture(scope="session")
def mobilenet(reference_models):
    return reference_models["seed_mobilenet"]

"""A pruned model computes exactly what the original computes with the dropped channels cut out."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from gencprunex import DynamicPruner, FixedPruner
from gencprunex.macs import total_macs

from .conftest import BUILDERS
from .helpers import (
    assert_input_model_untouched,
    assert_ratio_zero_is_identity,
    find_layer,
    masked_reference,
    max_abs_diff,
    random_input,
    randomize,
)

TOLERANCE = 1e-5


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize("ratio", [0.3, 0.5])
def test_pruned_equals_masked_original(reference_models, name, ratio):
    model = reference_models[name]
    pruner = FixedPruner(ratio=ratio).fit(model)
    pruned = pruner.transform()
    x = random_input(model)
    reference = masked_reference(model, pruner.graph_, pruner.plan_)
    assert max_abs_diff(pruned(x), reference(x)) <= TOLERANCE
    # the property is not vacuous: cutting channels does change the unmasked model's output
    assert max_abs_diff(model(x), reference(x)) > 1e-4
    assert pruned.count_params() < model.count_params()


@pytest.mark.parametrize("name", list(BUILDERS))
def test_ratio_zero_is_identity(reference_models, name):
    model = reference_models[name]
    assert_ratio_zero_is_identity(model)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_input_model_is_never_modified(reference_models, name):
    model = reference_models[name]
    assert_input_model_untouched(model)


def test_layer_names_and_configs_are_kept(mobilenet):
    pruned = FixedPruner(0.5).fit_transform(mobilenet)
    assert [layer.name for layer in pruned.layers] == [layer.name for layer in mobilenet.layers]
    old, new = mobilenet.get_layer("conv_pw_3").get_config(), pruned.get_layer("conv_pw_3").get_config()
    assert new["filters"] == old["filters"] // 2
    assert {k: v for k, v in new.items() if k != "filters"} == {k: v for k, v in old.items() if k != "filters"}


def test_seed_mobilenet_figures(mobilenet):
    """The reference figures of the original tool: 7,507,648 → 2,200,928 MACs, 237,138 → ~65k params."""
    pruned = FixedPruner(0.5).fit_transform(mobilenet)
    assert total_macs(mobilenet) == 7_507_648
    assert total_macs(pruned) == 2_200_928
    assert mobilenet.count_params() == 237_138
    assert 64_000 <= pruned.count_params() <= 66_000


def test_keep_lists_shrunk_layers_with_top_scoring_channels(mobilenet):
    scores = {}

    def by_index(group, model, data):
        scores[group.name] = np.arange(group.size, dtype=float)[::-1]  # lower index = more important
        return scores[group.name]

    pruner = FixedPruner(0.5, importance=by_index).fit(mobilenet)
    np.testing.assert_array_equal(pruner.keep_["conv_pw_5"], np.arange(32))
    np.testing.assert_array_equal(pruner.keep_["conv_pw_5_bn"], np.arange(32))  # carried by BN too
    np.testing.assert_array_equal(pruner.keep_["conv_dw_6"], np.arange(32))  # and by the depthwise conv
    assert "classes" not in pruner.keep_


def test_flatten_rows_are_interleaved():
    """Channels-last Flatten: channel c of position p is row p·C + c of the Dense kernel."""
    model = keras.Sequential(
        [
            keras.Input((2, 2, 1)),
            keras.layers.Conv2D(4, 1, name="conv"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(3),
        ]
    )
    randomize(model)
    pruner = DynamicPruner({"conv": 0.5}, importance=lambda g, m, d: np.array([0.0, 1.0, 0.0, 1.0])).fit(model)
    pruned = pruner.transform()
    dense_old = model.layers[-1].get_weights()[0]
    dense_new = pruned.layers[-1].get_weights()[0]
    rows = [p * 4 + c for p in range(4) for c in (1, 3)]
    np.testing.assert_array_equal(dense_new, dense_old[rows])
    np.testing.assert_array_equal(pruner.keep_["flatten"], rows)


def test_reshape_merging_trailing_axes_is_followed():
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inputs)
    x = keras.layers.Reshape((4, 32), name="merge")(x)
    x = keras.layers.Conv1D(6, 2, name="conv1d")(x)
    x = keras.layers.Reshape((3, 6), name="same_channels")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = randomize(keras.Model(inputs, keras.layers.Dense(2, name="out")(x)))
    pruner = FixedPruner(0.5).fit(model)
    assert [g.name for g in pruner.graph_.prunable] == ["conv", "conv1d"]
    pruned = pruner.transform()
    assert pruned.get_layer("merge").get_config()["target_shape"] == (4, 16)
    assert pruned.get_layer("same_channels").get_config()["target_shape"] == (3, 3)
    x = random_input(model)
    assert max_abs_diff(pruned(x), masked_reference(model, pruner.graph_, pruner.plan_)(x)) <= TOLERANCE


def test_nested_backbone_and_sequential_head():
    backbone = keras.applications.MobileNet(input_shape=(32, 32, 3), alpha=0.25, include_top=False, weights=None)
    head = keras.Sequential(
        [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)],
        name="head",
    )
    inputs = keras.Input((32, 32, 3))
    model = randomize(keras.Model(inputs, head(backbone(inputs))))
    pruner = FixedPruner(0.5).fit(model)
    assert len(pruner.graph_.prunable) == 15  # conv1, 13 pointwise, the hidden Dense
    pruned = pruner.transform()
    assert [layer.name for layer in pruned.layers] == [layer.name for layer in model.layers]
    assert isinstance(pruned.get_layer("head"), keras.Sequential)
    x = random_input(model)
    assert max_abs_diff(pruned(x), masked_reference(model, pruner.graph_, pruner.plan_)(x)) <= TOLERANCE


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_pruned_model_saves_and_loads(tmp_path, mobilenet, suffix):
    from gencprunex.saving import save_model_atomic

    pruned = FixedPruner(0.5).fit_transform(mobilenet)
    path = save_model_atomic(pruned, tmp_path / f"pruned{suffix}")
    loaded = keras.models.load_model(path, compile=False)
    x = random_input(mobilenet)
    np.testing.assert_array_equal(loaded(x), pruned(x))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"pruned{suffix}"]  # no temporary left behind


def test_compiled_model_stays_compiled(reference_models):
    model = keras.models.clone_model(reference_models["dense_autoencoder"])
    model.compile(optimizer="adam", loss="mse")
    pruned = FixedPruner(0.5).fit_transform(model)
    assert pruned.compiled and pruned.loss == "mse"


def test_transform_applies_plan_to_another_copy(reference_models):
    model = reference_models["vgg_small"]
    twin = keras.models.clone_model(model)
    twin.set_weights([w * 2 for w in model.get_weights()])
    pruner = FixedPruner(0.5).fit(model)
    pruned_twin = pruner.transform(twin)
    np.testing.assert_array_equal(
        pruned_twin.get_layer("fc1").get_weights()[0], pruner.transform().get_layer("fc1").get_weights()[0] * 2
    )


def test_pruned_layer_weights_are_slices_of_originals(mobilenet):
    pruner = FixedPruner(0.5).fit(mobilenet)
    pruned = pruner.transform()
    keep_in, keep_out = pruner.keep_["conv_pw_4"], pruner.keep_["conv_pw_5"]
    old = find_layer(mobilenet, "conv_pw_5").get_weights()[0]
    new = find_layer(pruned, "conv_pw_5").get_weights()[0]
    np.testing.assert_array_equal(new, old[:, :, keep_in][:, :, :, keep_out])
    bn_old = find_layer(mobilenet, "conv_pw_5_bn").get_weights()
    bn_new = find_layer(pruned, "conv_pw_5_bn").get_weights()
    for a, b in zip(bn_old, bn_new, strict=True):
        np.testing.assert_array_equal(b, a[keep_out])

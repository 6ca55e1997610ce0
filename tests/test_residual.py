"""Residual, squeeze-and-excitation and concatenated graphs: channel groups joined across merges."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from gencprunex import DynamicPruner, FixedPruner, LayerGraph, RatioError, UnsupportedLayerError, zoo
from gencprunex.macs import total_macs
from gencprunex.plan import plan_by_index

from .helpers import (
    assert_input_model_untouched,
    assert_ratio_zero_is_identity,
    find_layer,
    masked_reference,
    max_abs_diff,
    random_input,
    randomize,
)

L = keras.layers
TOLERANCE = 1e-5


def concat_self(name: str = "concat_self") -> keras.Model:
    """A tensor concatenated with itself, carried by BN and a depthwise conv, then concatenated with
    another group and flattened into a Dense layer."""
    inputs = keras.Input((8, 8, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", name="conv")(inputs)
    x = L.BatchNormalization(name="bn")(x)
    twice = L.Concatenate(name="twice")([x, x])
    y = L.BatchNormalization(name="twice_bn")(twice)
    y = L.DepthwiseConv2D(3, padding="same", name="dw")(y)
    y = L.Conv2D(6, 1, activation="relu", name="after")(y)
    y = L.Concatenate(name="mixed")([y, x])
    y = L.MaxPooling2D(4, name="pool")(y)
    y = L.Flatten(name="flatten")(y)
    y = L.Dense(8, activation="relu", name="fc")(y)
    return keras.Model(inputs, L.Dense(2, name="out")(y), name=name)


BUILDERS = {
    "resnet8": zoo.resnet8,
    "mobilenet_v2": zoo.mobilenet_v2,
    "se_cnn": zoo.se_cnn,
    "inception_cnn": zoo.inception_cnn,
    "concat_self": concat_self,
}


@pytest.fixture(scope="module")
def models():
    """Each model once per module, with random biases and BatchNorm statistics."""
    return {name: randomize(build(), seed=i) for i, (name, build) in enumerate(BUILDERS.items())}


# the masked-equivalence property -------------------------------------------------------------
@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize("ratio", [0.3, 0.5])
def test_pruned_equals_masked_original(models, name, ratio):
    model = models[name]
    pruner = FixedPruner(ratio).fit(model)
    pruned = pruner.transform()
    x = random_input(model)
    reference = masked_reference(model, pruner.graph_, pruner.plan_)
    assert max_abs_diff(pruned(x), reference(x)) <= TOLERANCE
    assert max_abs_diff(model(x), reference(x)) > 1e-4  # not vacuous: the cut channels mattered
    assert pruned.count_params() < model.count_params()
    assert [layer.name for layer in pruned.layers] == [layer.name for layer in model.layers]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_ratio_zero_is_identity(models, name):
    model = models[name]
    assert_ratio_zero_is_identity(model)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_input_model_is_never_modified(models, name):
    model = models[name]
    assert_input_model_untouched(model)


@pytest.mark.parametrize(("name", "most"), [("resnet8", 0.6), ("mobilenet_v2", 0.6)])
def test_half_ratio_cuts_macs(models, name, most):
    model = models[name]
    pruned = FixedPruner(0.5).fit_transform(model)
    assert total_macs(pruned) <= most * total_macs(model)


# residual groups ----------------------------------------------------------------------------
def test_resnet8_groups(models):
    graph = LayerGraph(models["resnet8"])
    assert [g.name for g in graph.prunable] == [
        "stem",
        "stack1_conv1",
        "stack2_conv1",
        "stack2_conv2",
        "stack3_conv1",
        "stack3_conv2",
    ]
    stem = graph.group("stem")
    assert stem.producers == ["stem", "stack1_conv2"]
    assert stem.consumers == ["stack1_conv1", "stack2_conv1", "stack2_shortcut"]
    assert graph.group("stack2_shortcut") is graph.group("stack2_add") is graph.group("stack2_conv2")
    assert graph.group("stack3_conv2").consumers == ["classes"]


@pytest.mark.parametrize("name", ["resnet8", "mobilenet_v2", "se_cnn"])
def test_all_producers_of_a_joined_group_keep_the_same_channels(models, name):
    model = models[name]
    pruner = FixedPruner(0.5).fit(model)
    pruned = pruner.transform()
    joined = [g for g in pruner.graph_.prunable if len(g.producers) > 1]
    assert joined
    for group in joined:
        kept = pruner.plan_[group.name]
        for layer in [*group.producers, *group.layers]:
            np.testing.assert_array_equal(pruner.keep_[layer], kept, err_msg=layer)
        for producer in group.producers:
            call = next(c for c in pruner.graph_.nodes if c.name == producer)
            in_rows = pruner.graph_.kept_rows(call.inputs[0], plan_by_index(pruner.graph_, pruner.plan_))
            old = find_layer(model, producer).get_weights()[0]
            new = find_layer(pruned, producer).get_weights()[0]
            np.testing.assert_array_equal(new, np.take(old[..., kept], in_rows, axis=-2), err_msg=producer)


def test_importance_sums_over_all_producers(models):
    model = models["resnet8"]
    scores = {}
    for producer in ("stem", "stack1_conv2"):
        kernel = model.get_layer(producer).get_weights()[0]
        scores[producer] = np.abs(kernel).reshape(-1, 16).sum(axis=0)
    expected = np.sort(np.argsort(-(scores["stem"] + scores["stack1_conv2"]), kind="stable")[:8])
    np.testing.assert_array_equal(FixedPruner(0.5).fit(model).plan_["stem"], expected)


def test_round_to_applies_per_group(models):
    model = models["resnet8"]
    pruner = FixedPruner(0.7, round_to=8).fit(model)
    assert pruner.channels_ == {
        "stem": (16, 8),
        "stack1_conv1": (16, 8),
        "stack2_conv1": (32, 16),
        "stack2_conv2": (32, 16),
        "stack3_conv1": (64, 24),
        "stack3_conv2": (64, 24),
    }
    x = random_input(model)
    assert max_abs_diff(pruner.transform()(x), masked_reference(model, pruner.graph_, pruner.plan_)(x)) <= TOLERANCE


@pytest.mark.parametrize("layer", ["stack2_shortcut", "stack2_add", "stack2_conv2_bn"])
def test_ignore_one_layer_keeps_its_whole_residual_group(models, layer):
    pruner = FixedPruner(0.5, ignore=[layer]).fit(models["resnet8"])
    assert "stack2_conv2" not in pruner.ratios_
    assert f"layer '{layer}' is in ignore=" in pruner.graph_.group("stack2_conv2").reason
    pruned = pruner.transform()
    assert pruned.get_layer("stack2_shortcut").filters == pruned.get_layer("stack2_conv2").filters == 32
    assert pruned.get_layer("stack3_conv1").filters == 32


def test_ratios_and_caps_by_any_layer_of_a_residual_group(models):
    model = models["resnet8"]
    pruner = DynamicPruner({"stack2_shortcut": 0.75, "stem": 0.5}, max_ratio={"stack2_add": 0.5}).fit(model)
    assert pruner.ratios_["stack2_conv2"] == 0.5 and pruner.ratios_["stem"] == 0.5
    pruned = pruner.transform()
    assert pruned.get_layer("stack2_shortcut").filters == pruned.get_layer("stack2_conv2").filters == 16
    assert pruned.get_layer("stack1_conv2").filters == pruned.get_layer("stem").filters == 8


def test_unsupported_layer_on_a_shortcut_blocks_and_explains():
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", name="conv")(inputs)
    y = L.Conv2D(8, 3, padding="same", name="branch")(x)
    shortcut = L.Lambda(lambda t: t * 2.0, name="scale")(x)
    x = L.Add(name="add")([shortcut, y])
    x = L.Conv2D(4, 1, name="after")(x)
    model = randomize(keras.Model(inputs, L.Dense(2, name="out")(L.GlobalAveragePooling2D()(x))))
    graph = LayerGraph(model)
    assert "crosses unsupported layer 'scale' (Lambda)" in graph.group("conv").reason
    assert graph.group("branch").reason.startswith("joined by Add 'add' to 'scale', which is not prunable: ")
    with pytest.raises(UnsupportedLayerError, match=r"ignore=\['scale'\]"):
        FixedPruner(0.5).fit(model)
    pruner = FixedPruner(0.5, ignore=["scale"]).fit(model)
    assert list(pruner.ratios_) == ["after"]
    assert pruner.transform().get_layer("branch").filters == 8


# squeeze-and-excitation ---------------------------------------------------------------------
def test_se_gate_joins_the_feature_map(models):
    graph = LayerGraph(models["se_cnn"])
    group = graph.group("conv2")
    assert group.producers == ["conv2", "se_expand"]
    assert group.consumers == ["se_reduce", "conv3"]
    assert graph.group("se_excite") is group and graph.group("se_reduce").prunable
    pruned = FixedPruner(0.5).fit_transform(models["se_cnn"])
    assert pruned.get_layer("se_reshape").get_config()["target_shape"] == (1, 1, 16)
    assert pruned.get_layer("se_expand").units == 16


# concatenation ------------------------------------------------------------------------------
def test_concat_inputs_keep_their_own_ratios(models):
    model = models["inception_cnn"]
    ratios = {"stem": 0.5, "branch_1x1": 0.25, "branch_3x3": 0.75}
    pruner = DynamicPruner(ratios).fit(model)
    plan = pruner.plan_
    assert [len(plan[n]) for n in ratios] == [8, 6, 4]
    expected = np.concatenate([plan["branch_1x1"], 8 + plan["branch_3x3"], 24 + plan["stem"]])
    np.testing.assert_array_equal(pruner.keep_["mixed"], expected)
    pruned = pruner.transform()
    old = model.get_layer("mixed_project").get_weights()[0]
    np.testing.assert_array_equal(pruned.get_layer("mixed_project").get_weights()[0], old[:, :, expected, :])
    x = random_input(model)
    assert max_abs_diff(pruned(x), masked_reference(model, pruner.graph_, pruner.plan_)(x)) <= TOLERANCE


def test_concat_of_a_tensor_with_itself(models):
    model = models["concat_self"]
    graph = LayerGraph(model)
    assert [g.name for g in graph.prunable] == ["conv", "after", "fc"]
    assert graph.group("conv").consumers == ["after", "fc"]
    kept = np.array([1, 2, 5, 7])
    pruner = DynamicPruner({"conv": 0.5}, importance=lambda g, m, d: np.isin(np.arange(g.size), kept) * 1.0)
    pruner.fit(model)
    np.testing.assert_array_equal(pruner.keep_["twice"], np.concatenate([kept, 8 + kept]))
    np.testing.assert_array_equal(pruner.keep_["dw"], np.concatenate([kept, 8 + kept]))
    mixed = np.concatenate([np.arange(6), 6 + kept])  # 'after' keeps all 6, then the group at offset 6
    np.testing.assert_array_equal(pruner.keep_["mixed"], mixed)
    np.testing.assert_array_equal(pruner.keep_["flatten"], np.concatenate([p * 14 + mixed for p in range(4)]))
    pruned = pruner.transform()
    assert pruned.get_layer("twice_bn").get_weights()[0].shape == (8,)
    x = random_input(model)
    assert max_abs_diff(pruned(x), masked_reference(model, pruner.graph_, pruner.plan_)(x)) <= TOLERANCE


def test_bn_scale_reads_the_groups_slice_after_a_concatenation(models):
    model = models["concat_self"]
    graph = LayerGraph(model)
    group = graph.group("conv")
    np.testing.assert_array_equal(group.channel_rows("twice_bn"), np.arange(8))  # the first copy
    assert group.channel_rows("flatten") is None  # spread over positions
    gamma = np.abs(model.get_layer("bn").get_weights()[0]) + np.abs(model.get_layer("twice_bn").get_weights()[0][:8])
    pruner = DynamicPruner({"conv": 0.5}, importance="bn_scale").fit(model)
    np.testing.assert_array_equal(pruner.plan_["conv"], np.sort(np.argsort(-gamma)[:4]))
    mixed = LayerGraph(models["inception_cnn"]).group("branch_3x3")
    np.testing.assert_array_equal(mixed.channel_rows("mixed"), 8 + np.arange(16))


def test_a_concatenation_is_named_by_its_groups(models):
    model = models["inception_cnn"]
    graph = LayerGraph(model)
    assert [g.name for g in graph.output_groups("mixed")] == ["branch_1x1", "branch_3x3", "stem"]
    with pytest.raises(KeyError, match=r"layer 'mixed' outputs the channels of several groups"):
        graph.group("mixed")
    with pytest.raises(RatioError, match=r"names layer 'mixed', .*several groups \(branch_1x1, branch_3x3, stem\)"):
        DynamicPruner({"mixed": 0.5}).fit(model)


def test_concat_on_another_axis_joins_its_inputs():
    inputs = keras.Input((8, 8, 3))
    a = L.Conv2D(6, 3, padding="same", name="a")(inputs)
    b = L.Conv2D(6, 1, name="b")(inputs)
    x = L.Concatenate(axis=1, name="stack")([a, b])
    x = L.Conv2D(4, 1, name="after")(x)
    model = randomize(keras.Model(inputs, L.Dense(2)(L.GlobalAveragePooling2D()(x))))
    graph = LayerGraph(model)
    assert graph.group("b") is graph.group("a") and graph.group("a").prunable
    pruner = FixedPruner(0.5).fit(model)
    x = random_input(model)
    assert max_abs_diff(pruner.transform()(x), masked_reference(model, pruner.graph_, pruner.plan_)(x)) <= TOLERANCE


def test_pruned_residual_model_saves_and_loads(tmp_path, models):
    pruned = FixedPruner(0.5).fit_transform(models["resnet8"])
    pruned.save(tmp_path / "resnet8.keras")
    loaded = keras.models.load_model(tmp_path / "resnet8.keras", compile=False)
    x = random_input(pruned)
    np.testing.assert_array_equal(loaded(x), pruned(x))


def test_nested_residual_backbone():
    inner_in = keras.Input((8, 8, 4), name="features")
    x = L.Conv2D(8, 3, padding="same", name="conv_a")(inner_in)
    y = L.ReLU(name="relu_a")(L.BatchNormalization(name="bn_a")(L.Conv2D(8, 3, padding="same", name="conv_b")(x)))
    y = L.Conv2D(8, 1, name="conv_c")(y)
    backbone = keras.Model(inner_in, L.Add(name="skip")([x, y]), name="backbone")
    head = keras.Sequential([L.GlobalAveragePooling2D(), L.Dense(6, activation="relu", name="hidden"), L.Dense(2)])
    inputs = keras.Input((8, 8, 4))
    model = randomize(keras.Model(inputs, head(backbone(inputs))))
    pruner = FixedPruner(0.5).fit(model)
    assert [g.name for g in pruner.graph_.prunable] == ["conv_a", "conv_b", "hidden"]
    assert pruner.graph_.group("conv_c").name == "conv_a"
    pruned = pruner.transform()
    assert isinstance(pruned.get_layer("backbone"), keras.Model)
    assert pruned.get_layer("backbone").get_layer("conv_c").filters == 4
    x = random_input(model)
    assert max_abs_diff(pruned(x), masked_reference(model, pruner.graph_, pruner.plan_)(x)) <= TOLERANCE


@pytest.mark.parametrize("name", ["resnet8", "inception_cnn"])
def test_genetic_search_fits_a_budget_on_branchy_graphs(models, name):
    """One gene per group (a residual group is one); the chosen model fits and has the channels of its ratios."""
    from gencprunex import GeneticPruner, HardwareProfile
    from gencprunex.hardware.estimate import estimate

    model = models[name]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, *model.input_shape[1:])).astype("float32")
    y = rng.integers(0, model.output_shape[-1], 96)
    full = estimate(model)
    budget = HardwareProfile(ram=int(full.ram * 0.7), flash=int(full.flash * 0.6), macs=int(full.macs * 0.5))
    search = GeneticPruner(budget, population=8, generations=1, finetune_epochs=0, calibration_samples=32, verbose=0)
    search.fit(model, (x, y))
    assert budget.fits(search.footprint_) and budget.fits(estimate(search.transform()))
    graph = LayerGraph(model)
    assert set(search.best_ratios_) == {g.name for g in graph.prunable}  # one ratio (gene) per group
    pruner = DynamicPruner(search.best_ratios_).fit(model)
    assert pruner.channels_ == search.channels_
    assert search.transform().count_params() == pruner.transform().count_params()

"""Estimator behaviour: ratios, plans, importance criteria, scikit-learn conventions, bad input."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from gencprunex import (
    DynamicPruner,
    FixedPruner,
    LayerGraph,
    ModelError,
    ParameterError,
    RatioError,
)
from gencprunex.plan import cap_ratios, group_caps, kept_count, select_channels

from .helpers import masked_reference, max_abs_diff, random_input


# plan ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("size", "ratio", "min_channels", "round_to", "expected"),
    [
        (64, 0.5, 1, 1, 32),
        (10, 0.15, 1, 1, 8),  # 1.5 removed rounds up to 2
        (5, 0.1, 1, 1, 4),  # 0.5 removed rounds up to 1
        (10, 0.0, 1, 1, 10),
        (3, 0.9, 1, 1, 1),
        (3, 0.9, 2, 1, 2),
        (64, 0.7, 1, 8, 24),  # 19 kept → next multiple of 8
        (20, 0.5, 1, 16, 16),
        (8, 0.5, 1, 16, 8),  # never more than the group has
    ],
)
def test_kept_count(size, ratio, min_channels, round_to, expected):
    assert kept_count(size, ratio, min_channels, round_to) == expected


def test_select_channels_keeps_top_scores_in_original_order():
    np.testing.assert_array_equal(select_channels(np.array([0.1, 5, 3, 0.2, 4]), 3), [1, 2, 4])
    np.testing.assert_array_equal(select_channels(np.ones(4), 2), [0, 1])  # ties: lower index first


def test_round_to_and_min_channels_reach_the_model(mobilenet):
    pruner = FixedPruner(0.9, round_to=8, min_channels=4).fit(mobilenet)
    kept = dict(pruner.channels_.values())
    assert all(after % 8 == 0 or after == before for before, after in pruner.channels_.values()), kept
    assert pruner.channels_["conv1"] == (8, 8)  # max(1, 4) rounded up to 8
    assert pruner.channels_["conv_pw_13"] == (256, 32)  # 26 → 32


# importance ----------------------------------------------------------------------------------
def _kernel_norms(model, layer, order):
    kernel = model.get_layer(layer).get_weights()[0]
    return np.linalg.norm(kernel.reshape(-1, kernel.shape[-1]), ord=order, axis=0)


@pytest.mark.parametrize(("importance", "order"), [("l1", 1), ("l2", 2)])
def test_norm_criteria_keep_largest_kernels(reference_models, importance, order):
    model = reference_models["vgg_small"]
    pruner = FixedPruner(0.5, importance=importance).fit(model)
    norms = _kernel_norms(model, "block2_conv1", order)
    np.testing.assert_array_equal(pruner.plan_["block2_conv1"], np.sort(np.argsort(-norms)[:16]))


def test_l1_and_l2_can_disagree():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d"), keras.layers.Dense(1)])
    model.get_layer("d").set_weights([np.array([[1.0, 2.5], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]), np.zeros(2)])
    assert FixedPruner(0.5, importance="l1").fit(model).plan_["d"].tolist() == [0]
    assert FixedPruner(0.5, importance="l2").fit(model).plan_["d"].tolist() == [1]


def test_bn_scale_uses_gamma(reference_models):
    model = reference_models["vgg_small"]
    with pytest.warns(UserWarning):
        pruner = FixedPruner(0.5, importance="bn_scale").fit(model)
    gamma = np.abs(model.get_layer("block1_bn1").get_weights()[0])
    np.testing.assert_array_equal(pruner.plan_["block1_conv1"], np.sort(np.argsort(-gamma)[:8]))
    with pytest.warns(UserWarning, match="4 groups have no BatchNormalization.*block1_conv2, block2_conv2"):
        FixedPruner(0.5, importance="bn_scale").fit(model)  # block1_conv2 has none


def test_random_is_seeded_and_differs_from_l1(mobilenet):
    a = FixedPruner(0.5, importance="random").fit(mobilenet).plan_
    b = FixedPruner(0.5, importance="random").fit(mobilenet).plan_
    l1 = FixedPruner(0.5).fit(mobilenet).plan_
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], l1[k]) for k in a)


def test_callable_importance_gets_group_model_and_data(mobilenet):
    seen = []

    def criterion(group, model, data):
        seen.append((group.name, model is mobilenet, data))
        return np.arange(group.size)

    FixedPruner(0.5, importance=criterion).fit(mobilenet, data=(np.zeros(1), np.zeros(1)))
    assert len(seen) == 16 and all(flag for _, flag, _ in seen)
    assert isinstance(seen[0][2], tuple)


@pytest.mark.parametrize(
    ("criterion", "message"),
    [
        (lambda g, m, d: np.ones(3), "returned 3 scores for group 'conv1', which has 8 channels"),
        (lambda g, m, d: np.full(g.size, np.nan), "NaN or infinite scores for group 'conv1'"),
        ("taylor", "importance='taylor' is unknown"),
        (42, "importance must be a name or a callable"),
    ],
)
def test_bad_importance(mobilenet, criterion, message):
    with pytest.raises(ParameterError, match=message):
        FixedPruner(0.5, importance=criterion).fit(mobilenet)


# dynamic mode ---------------------------------------------------------------------------------
def test_dynamic_list_follows_prunable_order(reference_models):
    model = reference_models["dense_autoencoder"]
    names = [g.name for g in LayerGraph(model).prunable]
    ratios = [0.5, 0.25, 0.0, 0.5, 0.75]
    pruner = DynamicPruner(ratios).fit(model)
    assert pruner.ratios_ == dict(zip(names, ratios, strict=True))
    assert [after for _, after in pruner.channels_.values()] == [16, 12, 8, 8, 8]
    x = random_input(model)
    assert max_abs_diff(pruner.transform()(x), masked_reference(model, pruner.graph_, pruner.plan_)(x)) <= 1e-5


def test_dynamic_dict_by_group_or_layer_name(mobilenet):
    pruner = DynamicPruner({"conv_pw_1": 0.5, "conv_pw_2_bn": 0.25, "fc_64": 0.5}).fit(mobilenet)
    assert pruner.ratios_["conv_pw_2"] == 0.25
    assert pruner.ratios_["conv_pw_3"] == 0.0  # absent → 0
    assert pruner.channels_["conv_pw_1"] == (16, 8) and pruner.channels_["conv_pw_3"] == (32, 32)


def test_dynamic_wrong_length_lists_expected_groups(mobilenet):
    with pytest.raises(RatioError) as info:
        DynamicPruner([0.5] * 56).fit(mobilenet)
    message = str(info.value)
    assert "got 56 ratios" in message and "expected 16 ratios" in message
    assert "conv1, conv_pw_1, conv_pw_2" in message and message.endswith("fc_64, fc_32")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("ratios", "message"),
    [
        ({"conv_pw_99": 0.5}, "'conv_pw_99', which is no group or layer"),
        ({"classes": 0.5}, "'classes'.*cannot be pruned: .*model output"),
        ({"conv_pw_1": 0.5, "conv_pw_1_bn": 0.25}, "different ratios"),
        ({"conv_pw_1": 1.0}, r"ratio for 'conv_pw_1' is 1.0; allowed: 0 <= ratio < 1"),
        ("0.5", "ratios must be a list"),
    ],
)
def test_dynamic_bad_ratios(mobilenet, ratios, message):
    with pytest.raises(RatioError, match=message):
        DynamicPruner(ratios).fit(mobilenet)


# max_ratio -----------------------------------------------------------------------------------
def test_max_ratio_caps_every_group(mobilenet):
    pruner = FixedPruner(0.75, max_ratio=0.5).fit(mobilenet)
    assert set(pruner.ratios_.values()) == {0.5}
    assert pruner.channels_["conv_pw_13"] == (256, 128)
    assert FixedPruner(0.25, max_ratio=0.5).fit(mobilenet).channels_["conv_pw_13"] == (256, 192)  # below the cap
    assert all(a == b for a, b in FixedPruner(0.5, max_ratio=0.0).fit(mobilenet).channels_.values())


def test_max_ratio_dict_caps_named_groups_only(mobilenet):
    pruner = DynamicPruner({"conv_pw_1": 0.75, "fc_64": 0.5}, max_ratio={"conv_pw_1_bn": 0.25}).fit(mobilenet)
    assert pruner.ratios_["conv_pw_1"] == 0.25 and pruner.ratios_["fc_64"] == 0.5
    assert pruner.channels_["conv_pw_1"] == (16, 12)
    assert pruner.get_params()["max_ratio"] == {"conv_pw_1_bn": 0.25}  # stored as given


def test_cap_ratios_helper(mobilenet):
    graph = LayerGraph(mobilenet)
    ratios = {g.name: 0.9 for g in graph.prunable}
    assert cap_ratios(graph, ratios, None) == ratios
    assert set(cap_ratios(graph, ratios, 0.6).values()) == {0.6}
    capped = cap_ratios(graph, ratios, {"conv_pw_2_relu": 0.3})
    assert capped["conv_pw_2"] == 0.3 and capped["conv_pw_3"] == 0.9
    assert group_caps(graph, {"conv_pw_2_relu": 0.3}) == {"conv_pw_2": 0.3}


@pytest.mark.parametrize(
    ("max_ratio", "error", "message"),
    [
        (1.0, RatioError, r"max_ratio is 1.0; allowed: 0 <= ratio < 1"),
        (-0.5, RatioError, r"max_ratio is -0.5; allowed: 0 <= ratio < 1"),
        ("0.5", ParameterError, r"max_ratio must be None, a number in \[0, 1\) or a dict .* got '0.5'"),
        ([0.5], ParameterError, r"max_ratio must be None, .* got \[0.5\]"),
        (True, ParameterError, "max_ratio must be None"),
        ({"conv_pw_99": 0.5}, RatioError, "max_ratio names 'conv_pw_99', which is no group or layer"),
        ({"classes": 0.5}, RatioError, "max_ratio names 'classes'.*cannot be pruned: .*model output"),
        ({"conv_pw_1": 0.5, "conv_pw_1_bn": 0.25}, RatioError, "two caps: 0.5 .* and 0.25"),
        ({"conv_pw_1": 2}, RatioError, r"max_ratio for 'conv_pw_1' is 2.0; allowed: 0 <= ratio < 1"),
        ({3: 0.5}, RatioError, "max_ratio keys must be group or layer names, got 3"),
    ],
)
def test_bad_max_ratio(mobilenet, max_ratio, error, message):
    for pruner in (FixedPruner(0.5, max_ratio=max_ratio), DynamicPruner({}, max_ratio=max_ratio)):
        with pytest.raises(error, match=message) as info:
            pruner.fit(mobilenet)
        assert "\n" not in str(info.value)


# bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5, float("nan"), "0.5", None, True])
def test_fixed_ratio_out_of_range(mobilenet, ratio):
    with pytest.raises(RatioError, match="ratio"):
        FixedPruner(ratio).fit(mobilenet)


@pytest.mark.parametrize(
    ("params", "message"),
    [({"min_channels": 0}, "min_channels must be an integer >= 1, got 0"), ({"round_to": 2.5}, "round_to")],
)
def test_bad_parameters(mobilenet, params, message):
    with pytest.raises(ParameterError, match=message):
        FixedPruner(0.5, **params).fit(mobilenet)


def test_unbuilt_empty_and_subclassed_models():
    with pytest.raises(ModelError, match="is not built"):
        FixedPruner().fit(keras.Sequential([keras.layers.Dense(3)]))
    with pytest.raises(ModelError, match="has no layers"):
        FixedPruner().fit(keras.Sequential())

    class Custom(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ModelError, match="subclassed model"):
        FixedPruner().fit(Custom())
    with pytest.raises(ModelError, match=r"must be a keras\.Model"):
        FixedPruner().fit("model.keras")


def test_error_messages_are_one_line(mobilenet):
    for pruner in (FixedPruner(2.0), DynamicPruner([0.1]), FixedPruner(0.5, min_channels=-1)):
        with pytest.raises(ValueError) as info:
            pruner.fit(mobilenet)
        assert "\n" not in str(info.value)


# scikit-learn conventions ---------------------------------------------------------------------
def test_params_clone_and_unfitted_transform():
    pruner = DynamicPruner({"a": 0.5}, round_to=4)
    assert pruner.get_params() == {
        "ratios": {"a": 0.5},
        "importance": "l1",
        "round_to": 4,
        "min_channels": 1,
        "ignore": (),
        "max_ratio": None,
    }
    copy = clone(pruner)
    assert copy.get_params() == pruner.get_params() and copy is not pruner
    assert FixedPruner().set_params(ratio=0.2).ratio == 0.2
    with pytest.raises(ValueError, match="not fitted"):
        FixedPruner().transform()


def test_fitted_attributes_and_refit(mobilenet):
    pruner = FixedPruner(0.5).fit(mobilenet)
    assert set(pruner.ratios_) == {g.name for g in pruner.graph_.prunable}
    assert all(np.all(np.diff(v) > 0) for v in pruner.keep_.values())  # sorted, unique
    pruner.set_params(ratio=0.25).fit(mobilenet)
    assert pruner.channels_["conv_pw_13"] == (256, 192)


def test_pipeline_of_two_pruners(reference_models):
    model = reference_models["vgg_small"]
    pipeline = Pipeline([("coarse", FixedPruner(0.25)), ("fine", DynamicPruner({"fc1": 0.5}))])
    pruned = pipeline.fit_transform(model)
    assert pruned.get_layer("block1_conv1").filters == 12
    assert pruned.get_layer("fc1").units == 24  # 64 → 48 → 24
    assert model.get_layer("fc1").units == 64


def test_ignore_must_be_layer_names(mobilenet):
    with pytest.raises(ParameterError, match="ignore must be a list of layer names"):
        FixedPruner(0.5, ignore=[3]).fit(mobilenet)
    assert FixedPruner(0.5, ignore="fc_32").fit(mobilenet).channels_.keys().isdisjoint({"fc_32"})

"""The gencprunex command line: pruning saved models, one-line errors, the demo."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from gencprunex.cli import main

from .helpers import random_input


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, reference_models):
    path = tmp_path_factory.mktemp("models") / "vgg.keras"
    reference_models["vgg_small"].save(path)
    return path


def test_prune_fixed_writes_a_smaller_model(saved_model, tmp_path, capsys):
    out = tmp_path / "pruned.keras"
    assert main(["prune", "fixed", str(saved_model), "--ratio", "0.5", "-o", str(out)]) == 0
    pruned = keras.models.load_model(out)
    assert pruned.get_layer("fc1").units == 32
    printed = capsys.readouterr().out
    assert "block1_conv1" in printed and "written to" in printed


def test_prune_dynamic_by_name_and_by_position(saved_model, tmp_path):
    out = tmp_path / "named.h5"
    assert main(["prune", "dynamic", str(saved_model), "--ratios", "fc1=0.5,block1_conv1=0.25", "-o", str(out)]) == 0
    pruned = keras.models.load_model(out)
    assert pruned.get_layer("fc1").units == 32 and pruned.get_layer("block1_conv1").filters == 12
    out2 = tmp_path / "positional.keras"
    assert main(["prune", "dynamic", str(saved_model), "--ratios", "0,0,0,0,0,0.5", "-o", str(out2)]) == 0
    assert keras.models.load_model(out2).get_layer("fc1").units == 32


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--ratio", "1.5"], "ratio is 1.5; allowed: 0 <= ratio < 1"),
        (["--ratio", "0.5", "--min-channels", "0"], "min_channels must be an integer >= 1"),
        (["--ratio", "0.5", "--ignore", "nope"], "ignore= names layer 'nope'"),
    ],
)
def test_bad_input_is_one_line(saved_model, tmp_path, capsys, arguments, message):
    out = tmp_path / "x.keras"
    assert main(["prune", "fixed", str(saved_model), *arguments, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_missing_corrupt_and_protected_files(saved_model, tmp_path, capsys):
    assert (
        main(["prune", "fixed", str(tmp_path / "absent.keras"), "--ratio", "0.5", "-o", str(tmp_path / "o.keras")]) == 2
    )
    assert "does not exist" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"not a model")
    assert main(["prune", "fixed", str(corrupt), "--ratio", "0.5", "-o", str(tmp_path / "o.keras")]) == 2
    assert "could not be loaded" in capsys.readouterr().err
    before = saved_model.read_bytes()
    assert main(["prune", "fixed", str(saved_model), "--ratio", "0.5", "-o", str(saved_model)]) == 2
    assert "is the input model" in capsys.readouterr().err
    assert saved_model.read_bytes() == before
    existing = tmp_path / "existing.keras"
    existing.write_bytes(b"keep me")
    assert main(["prune", "fixed", str(saved_model), "--ratio", "0.5", "-o", str(existing)]) == 2
    assert existing.read_bytes() == b"keep me"
    assert main(["prune", "fixed", str(saved_model), "--ratio", "0.5", "-o", str(existing), "--force"]) == 0
    x = random_input(keras.models.load_model(saved_model))
    assert np.all(np.isfinite(keras.models.load_model(existing)(x)))


def test_demo_prints_channels_before_and_after(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "conv_pw_13" in out and "256" in out and "128" in out
    assert "7,507,648 -> 2,200,928" in out

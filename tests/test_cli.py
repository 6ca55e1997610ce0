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


@pytest.fixture(scope="module")
def genetic_inputs(tmp_path_factory):
    """A small trained CNN saved as .keras and its data as .npz."""
    from gencprunex.zoo import small_cnn

    folder = tmp_path_factory.mktemp("genetic")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 240)
    x = rng.normal(0.0, 0.3, (240, 12, 12, 1)).astype("float32")
    x[np.arange(240), 3 * y, 3 * y, 0] += 3.0  # class = where the bright pixel is
    keras.utils.set_random_seed(0)
    model = small_cnn(input_shape=(12, 12, 1), num_classes=4)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, verbose=0)
    model.save(folder / "cnn.keras")
    np.savez(folder / "data.npz", features=x, labels=y)
    return folder / "cnn.keras", folder / "data.npz", model


def test_prune_genetic_fits_the_budget(genetic_inputs, tmp_path, capsys):
    import json

    from gencprunex.hardware.estimate import estimate

    model_path, data_path, model = genetic_inputs
    full = estimate(model)
    out = tmp_path / "g.keras"
    budget = ["--ram", str(int(full.ram * 0.8)), "--macs", f"{full.macs * 0.5 / 1000:.3f}k"]
    arguments = ["prune", "genetic", str(model_path), "--data", str(data_path), *budget, "-o", str(out)]
    assert main([*arguments, "--population", "8", "--generations", "1", "--finetune-epochs", "0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fits"] and report["estimate"]["macs"] <= full.macs * 0.5
    pruned = keras.models.load_model(out)
    assert estimate(pruned).macs == report["estimate"]["macs"]


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ([], "give a budget"),
        (["--preset", "nano33ble", "--ram", "1000"], "either --preset or"),
        (["--preset", "nano33"], "unknown preset 'nano33'"),
        (["--ram", "100"], "no candidate fits"),
    ],
)
def test_prune_genetic_bad_budgets_are_one_line(genetic_inputs, tmp_path, capsys, budget, message):
    model_path, data_path, _ = genetic_inputs
    out = tmp_path / "g.keras"
    assert main(["prune", "genetic", str(model_path), "--data", str(data_path), *budget, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not out.exists()


def test_amounts_take_units():
    from gencprunex.cli import _amount

    assert (_amount("76800"), _amount("75KiB"), _amount("100KB"), _amount("1.5M")) == (76800, 76800, 100000, 1500000)
    with pytest.raises(Exception, match="not an amount"):
        _amount("lots")

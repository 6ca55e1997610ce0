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


@pytest.mark.slow
def test_demo_quick_writes_the_measured_table(tmp_path, capsys):
    """The demo's smoke-test size: four rows measured on exported models, the JSON and markdown written."""
    import json

    out = tmp_path / "demo"
    assert main(["demo", "--quick", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "demo_results.json").read_text())
    methods = [row["method"] for row in results["rows"]]
    assert methods == ["Baseline", "Fixed Mode (0.5)", "Dynamic Mode", "Genetic Mode"]
    genetic = results["rows"][-1]
    assert genetic["fits"] and genetic["ram"] <= 75 * 1024 and genetic["flash"] <= 100 * 1024
    assert genetic["macs"] <= 1_500_000
    assert not results["rows"][0]["fits"]  # the unpruned model is over the Flash budget
    table = (out / "demo_results.md").read_text()
    assert "| Genetic Mode |" in table and table.strip() in printed
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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


# profile and export


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A small CNN (12x12x1 in, 4 classes) with trained-like statistics, its data, and data of the wrong shape."""
    from gencprunex.zoo import small_cnn, with_trained_statistics

    folder = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(1)
    model = with_trained_statistics(small_cnn(input_shape=(12, 12, 1), num_classes=4), seed=1)
    model.save(folder / "tiny.keras")
    np.savez(folder / "data.npz", features=rng.normal(size=(16, 12, 12, 1)).astype("float32"), labels=np.zeros(16))
    np.savez(folder / "wrong.npz", features=rng.normal(size=(16, 10, 12, 1)).astype("float32"), labels=np.zeros(16))
    return folder / "tiny.keras", folder / "data.npz", folder / "wrong.npz", model


def _one_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("gencprunex: error: ") and "Traceback" not in err


def test_profile_prints_each_op_and_the_totals(saved_model, reference_models, capsys):
    from gencprunex.hardware.estimate import estimate

    fp = estimate(reference_models["vgg_small"])
    assert main(["profile", str(saved_model)]) == 0
    out = capsys.readouterr().out
    assert "estimate" in out and "input int8, output int8" in out
    assert "output shape" in out and "activation B" in out
    conv = next(r for r in fp.layers if r["layer"] == "block1_conv1")
    row = next(line for line in out.splitlines() if " block1_conv1 " in line).split()
    assert row[1] == conv["op"] and row[4] == f"{conv['macs']:,}" and row[5] == f"{conv['weight_bytes']:,}"
    assert sum(" FULLY_CONNECTED " in line for line in out.splitlines()) == 2
    for name, value, unit in (
        ("RAM", fp.ram, " B"),
        ("Flash", fp.flash, " B"),
        ("MACs", fp.macs, ""),
        ("params", fp.params, ""),
    ):
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert f"{value:,}{unit}" in line
    assert f"({fp.ram / 1024:.1f} KiB)" in out
    assert "fits" not in out and "over" not in out and "\033[" not in out  # no budget, no colour when piped


def test_profile_json_gives_the_seed_mobilenet_macs(tmp_path, capsys):
    import json

    from gencprunex.hardware.profile import HardwareProfile
    from gencprunex.zoo import seed_mobilenet

    model = seed_mobilenet()
    path = tmp_path / "seed.keras"
    model.save(path)
    for io in (["uint8", "float32"], ["int8", "int8"]):  # the reference configuration, then the default
        assert main(["profile", str(path), "--json", "--input-type", io[0], "--output-type", io[1]]) == 0
        report = json.loads(capsys.readouterr().out)
        expected = HardwareProfile().estimate(model, input_type=io[0], output_type=io[1])
        assert report["macs"] == expected.macs == 7_507_648
        assert (report["ram"], report["flash"], report["params"]) == (expected.ram, expected.flash, expected.params)
        assert report["layers"] == expected.layers and report["details"]["method"] == "estimate"
        assert (report["input_type"], report["output_type"]) == tuple(io)
        assert report["budget"] is None and report["fits"] is None and report["over"] == {}


@pytest.mark.parametrize(
    ("budget", "fits"),
    [(["--preset", "esp32s3"], True), (["--ram", "1KiB", "--macs", "1M"], False)],
)
def test_profile_compares_with_a_budget_and_exits_0(saved_model, reference_models, capsys, budget, fits):
    import json

    from gencprunex.hardware.estimate import estimate

    fp = estimate(reference_models["vgg_small"])
    assert main(["profile", str(saved_model), *budget]) == 0
    out = capsys.readouterr().out
    if fits:
        assert "fits budget 'esp32s3'" in out and "over" not in out
    else:
        ram_line = next(line for line in out.splitlines() if line.startswith("RAM "))
        assert f"over by {fp.ram - 1024:,} B" in ram_line
        assert f"over by {fp.macs - 1_000_000:,} MACs" in out and "Flash" in out and "no limit" in out
        assert "over budget 'command line' on RAM, MACs" in out
    assert main(["profile", str(saved_model), *budget, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fits"] is fits
    assert report["over"] == ({} if fits else {"ram": fp.ram - 1024, "macs": fp.macs - 1_000_000})
    assert report["budget"]["name"] == ("esp32s3" if fits else "command line")


def test_profile_colours_only_a_terminal(saved_model, capsys, monkeypatch):
    import sys

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["profile", str(saved_model), "--ram", "1KiB", "--flash", "10MiB"]) == 0
    out = capsys.readouterr().out
    assert "\033[31mover by" in out and "\033[32mfits" in out and "\033[0m" in out


def test_profile_measure_equals_the_exported_file(tiny_model, tmp_path, capsys):
    import json

    from gencprunex.hardware.estimate import estimate

    model_path, data_path, _, model = tiny_model
    assert main(["profile", str(model_path), "--measure", "--data", str(data_path), "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)
    out = tmp_path / "tiny.tflite"
    assert main(["export", str(model_path), "-o", str(out), "--data", str(data_path)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # real calibration data: no warning
    assert measured["details"]["method"] == "measure"
    assert measured["flash"] == out.stat().st_size
    assert measured["macs"] == estimate(model).macs
    assert f"Flash {measured['flash']:,} B" in captured.out and f"RAM {measured['ram']:,} B" in captured.out
    assert main(["profile", str(model_path), "--measure", "--data", str(data_path)]) == 0
    assert "measure, read from the converted int8 .tflite" in capsys.readouterr().out


def test_export_writes_tflite_and_c_array(tiny_model, tmp_path, capsys):
    model_path, _, _, _ = tiny_model
    out, source = tmp_path / "m.tflite", tmp_path / "m.cc"
    arguments = ["export", str(model_path), "-o", str(out), "--c-array", str(source), "--name", "tiny_model"]
    assert main([*arguments, "--input-type", "uint8", "--output-type", "float32"]) == 0
    captured = capsys.readouterr()
    warning = captured.err.splitlines()
    assert len(warning) == 1 and warning[0].startswith("gencprunex: warning: to_tflite: no representative_data")
    data = out.read_bytes()
    assert data[4:8] == b"TFL3"
    text = source.read_text()
    assert "const unsigned char tiny_model[]" in text and f"tiny_model_len = {len(data)};" in text
    assert f"{len(data):,} B" in captured.out and str(out) in captured.out and str(source) in captured.out
    assert "input uint8, output float32" in captured.out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.cc", "m.tflite"]  # no temporary files left


def test_export_refuses_to_overwrite_without_force(tiny_model, tmp_path, capsys):
    model_path, data_path, _, _ = tiny_model
    out, source = tmp_path / "m.tflite", tmp_path / "m.h"
    out.write_bytes(b"keep me")
    source.write_text("keep me too")
    arguments = ["export", str(model_path), "-o", str(out), "--data", str(data_path)]
    assert main(arguments) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    out2 = tmp_path / "fresh.tflite"
    assert main(["export", str(model_path), "-o", str(out2), "--c-array", str(source), "--data", str(data_path)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me" and source.read_text() == "keep me too" and not out2.exists()
    assert main([*arguments, "--c-array", str(source), "--force"]) == 0
    assert out.read_bytes()[4:8] == b"TFL3" and "model_data_len" in source.read_text()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["profile", "{missing}"], "does not exist"),
        (["profile", "{model}", "--preset", "nano33"], "unknown preset 'nano33'"),
        (["profile", "{model}", "--preset", "nano33ble", "--ram", "1000"], "either --preset or"),
        (["profile", "{model}", "--data", "{data}"], "give --measure too"),
        (["profile", "{model}", "--measure", "--data", "{wrong}"], "samples have shape (10, 12, 1)"),
        (["export", "{missing}", "-o", "{out}"], "does not exist"),
        (["export", "{model}", "-o", "{tmp}/m.keras"], "must end in .tflite"),
        (["export", "{model}", "-o", "{model}"], "must end in .tflite"),
        (["export", "{model}", "-o", "{out}", "--c-array", "{tmp}/m.txt"], "must end in .cc"),
        (["export", "{model}", "-o", "{out}", "--c-array", "{tmp}/m.c"], "the array is C++"),
        (["export", "{model}", "-o", "{out}", "--name", "x"], "give --c-array too"),
        (["export", "{model}", "-o", "{out}", "--c-array", "{tmp}/m.cc", "--name", "int"], "not a valid C identifier"),
        (["export", "{model}", "-o", "{out}", "--data", "{wrong}"], "samples have shape (10, 12, 1)"),
        (["export", "{model}", "-o", "{out}", "--data", "{missing}.npz"], "does not exist"),
    ],
)
def test_profile_and_export_bad_input_is_one_line(tiny_model, tmp_path, capsys, arguments, message):
    model_path, data_path, wrong_path, _ = tiny_model
    names = dict(
        model=model_path, data=data_path, wrong=wrong_path, missing=tmp_path / "absent.keras", out=tmp_path / "o.tflite"
    )
    argv = [a.format(tmp=tmp_path, **names) for a in arguments]
    before = model_path.read_bytes()
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and _one_line(captured.err), captured.err
    assert captured.out == "" and list(tmp_path.iterdir()) == []
    assert model_path.read_bytes() == before

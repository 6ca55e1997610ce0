"""The tasks behind the demo and benchmarks/seed_table.py: the original tool's files when present, else bundled data."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from gencprunex import DataError, Footprint, LayerGraph
from gencprunex.tasks import (
    HAR_DYNAMIC_RATIOS,
    MOBILENET_DYNAMIC_RATIOS,
    seed_vww_fractions,
    ucihar_task,
    vww_task,
)

REPO = Path(__file__).resolve().parents[1]


def _one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[labels]


def _write_ucihar(folder: Path, train: int = 90, test: int = 36) -> None:
    """Files as the original tool names them: features (n, 128, 9), one-hot labels, 6 classes."""
    rng = np.random.default_rng(0)
    for name, count in (("train_data_UCIHAR.npz", train), ("test_data_UCIHAR.npz", test)):
        labels = np.arange(count) % 6
        features = rng.normal(size=(count, 128, 9)).astype(np.float32) + labels[:, None, None] * 0.5
        np.savez(folder / name, features=features, labels=_one_hot(labels, 6))


def test_without_the_original_files_the_bundled_data_stands_in(tmp_path):
    vww = vww_task(tmp_path, size=32, samples=60)
    assert vww.name == "digits" and "bundled" in vww.source
    assert vww.data.input_shape == (32, 32, 3) and vww.hardware.name == "seed-vww"
    har = ucihar_task(tmp_path / "missing-folder", samples=10)
    assert har.name == "har-like" and har.data.input_shape == (128, 9) and har.data.n_classes == 6


def test_the_original_ucihar_files_are_read_with_one_hot_labels(tmp_path):
    _write_ucihar(tmp_path)
    task = ucihar_task(tmp_path)
    assert task.name == "ucihar" and str(tmp_path) in task.source
    data = task.data
    assert data.x_train.shape == (90, 128, 9) and data.x_test.shape == (36, 128, 9)
    assert data.n_classes == 6 and data.y_train.dtype.kind == "i"
    assert np.array_equal(data.y_train, np.arange(90) % 6)
    model = task.build_model(data.input_shape, data.n_classes)
    assert len(LayerGraph(model).prunable) == len(task.dynamic_ratios) == len(HAR_DYNAMIC_RATIOS)


def test_the_original_vww_images_in_the_8_bit_range_are_scaled(tmp_path):
    rng = np.random.default_rng(0)
    for name, count in (("train_dataset_VWW.npz", 20), ("validation_dataset_VWW.npz", 8)):
        images = rng.integers(0, 256, size=(count, 96, 96, 3)).astype(np.uint8)
        np.savez(tmp_path / name, images=images, labels=_one_hot(np.arange(count) % 2, 2))
    task = vww_task(tmp_path)
    data = task.data
    assert task.name == "vww" and data.n_classes == 2 and data.input_shape == (96, 96, 3)
    assert data.x_train.dtype == np.float32 and data.x_train.min() >= 0.0 and data.x_train.max() <= 1.0
    assert data.x_train.max() > 0.9  # scaled, not clipped or zeroed
    model = task.build_model(data.input_shape, data.n_classes)
    assert len(LayerGraph(model).prunable) == len(MOBILENET_DYNAMIC_RATIOS)


def test_a_broken_original_file_is_an_error_not_a_silent_fallback(tmp_path):
    np.savez(tmp_path / "train_data_UCIHAR.npz", signals=np.zeros((4, 128, 9)), labels=np.zeros(4))
    np.savez(tmp_path / "test_data_UCIHAR.npz", features=np.zeros((4, 128, 9)), labels=np.zeros(4))
    with pytest.raises(DataError, match=r"train_data_UCIHAR\.npz' has keys"):
        ucihar_task(tmp_path)
    (tmp_path / "test_data_UCIHAR.npz").unlink()
    np.savez(tmp_path / "train_data_UCIHAR.npz", features=np.zeros((4, 128, 9)), labels=np.zeros(4))
    with pytest.raises(DataError, match=r"has no test_data_UCIHAR\.npz"):
        ucihar_task(tmp_path)


def test_the_scaled_budget_keeps_the_original_fractions():
    original = Footprint(ram=int(103.7 * 1024), flash=int(322.7 * 1024), macs=7_500_000, params=0)
    budget = seed_vww_fractions(original)
    assert abs(budget.ram - 75 * 1024) <= 1 and abs(budget.flash - 100 * 1024) <= 1 and budget.macs == 1_500_000
    half = seed_vww_fractions(Footprint(ram=10_000, flash=40_000, macs=1_000_000, params=0))
    assert (half.ram, half.flash, half.macs) == (7232, 12395, 200_000)


@pytest.mark.slow
def test_seed_table_benchmark_runs_on_the_original_files(tmp_path):
    """benchmarks/seed_table.py at smoke-test size on UCI-HAR files in the original format."""
    data = tmp_path / "all_datasets"
    data.mkdir()
    _write_ucihar(data, train=120, test=48)
    spec = importlib.util.spec_from_file_location("seed_table", REPO / "benchmarks" / "seed_table.py")
    seed_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed_table)
    out = tmp_path / "out"
    results = seed_table.main(["--data-dir", str(data), "--tasks", "ucihar", "--quick", "-o", str(out)])
    task = results["tasks"]["ucihar"]
    assert task["task"] == "ucihar" and "UCI-HAR files" in task["data"]["source"]
    assert [row["method"] for row in task["rows"]] == ["Baseline", "Fixed Mode (0.5)", "Dynamic Mode", "Genetic Mode"]
    baseline, genetic = task["rows"][0], task["rows"][-1]
    assert genetic["fits"] and not baseline["fits"]  # measured on the exported int8 models
    budget = task["budget"]
    assert genetic["ram"] <= budget["ram"] and genetic["flash"] <= budget["flash"] and genetic["macs"] <= budget["macs"]
    assert budget["macs"] == int(baseline["macs"] * 0.2)
    written = json.loads((out / "ucihar" / "demo_results.json").read_text())
    assert written["rows"] == task["rows"]
    assert "| Genetic Mode |" in (out / "ucihar" / "demo_results.md").read_text()
    json.dumps(results, default=float)  # what the script prints is JSON

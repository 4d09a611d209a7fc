"""detector_v1: its architecture, and training it through models.train (the portable trainer) at 32 px."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile

import h5py
import keras
import numpy as np
import pytest
from conftest import make_dataset_dir

import models
import models.train as train_cli
from models.data.augment import Augmenter
from models.training.architectures import ARCHITECTURES, build_v1

# --- architecture -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [128, 64])
def test_v1_output_shape_and_sigmoid(size):
    model = build_v1(size)
    assert model.name == "detector_v1"
    assert model.input_shape == (None, size, size, 3)
    assert model.output_shape == (None, 1)
    assert model.layers[-1].activation is keras.activations.sigmoid
    x = np.random.default_rng(0).random((2, size, size, 3), dtype=np.float32)
    p = keras.ops.convert_to_numpy(model(x, training=False))
    assert p.shape == (2, 1)
    assert np.all((p >= 0) & (p <= 1))


def test_v1_width_scales_params():
    full, half = build_v1(128).count_params(), build_v1(128, width=0.5).count_params()
    assert half < full / 2  # channels halve, so most weights (c_in x c_out) drop about 4x
    assert build_v1(128, width=2.0).count_params() > full
    assert ARCHITECTURES["v1"].build(64, width=0.5).count_params() == build_v1(64, width=0.5).count_params()


def test_v1_uses_only_standard_layers_and_round_trips_in_safe_mode(tmp_path):
    model = build_v1(32)
    for layer in model.layers:
        assert type(layer).__module__.startswith("keras.src.layers."), type(layer)
        assert not isinstance(layer, keras.layers.Lambda)
    path = tmp_path / "v1.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    x = np.random.default_rng(1).random((3, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x, training=False)),
        keras.ops.convert_to_numpy(model(x, training=False)),
        rtol=1e-5, atol=1e-6,
    )


def test_v1_recipe():
    r = ARCHITECTURES["v1"]
    assert (r.trainer, r.default_input_size, r.default_name) == ("portable", 128, "detector_v1")
    assert (r.learning_rate, r.patience, r.warmup_epochs, r.weight_decay) == (1e-3, 12, 2, 5e-4)
    assert isinstance(r.optimizer(), keras.optimizers.AdamW)


# --- training through models.train --------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """8 PNGs (32 px) per class and split, shared by this module's runs."""
    return make_dataset_dir(tmp_path_factory.mktemp("v1_data") / "data")


def run_v1(data, out, *extra):
    return train_cli.main(["--arch", "v1", "--data", str(data), "--out", str(out), "--image-size", "32", "--epochs", "1",
                   "--quiet", "--workers", "1", *extra])


@pytest.fixture(scope="module")
def v1_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("out_v1")
    assert run_v1(data_dir, out) == 0
    return out


def weights(path):
    return models.load_model(path, cache=False).keras_model.get_weights()


def test_v1_train_writes_model_and_metadata(v1_run, data_dir):
    model_path, meta_path = v1_run / "detector_v1.keras", v1_run / "detector_v1.json"
    assert model_path.is_file() and meta_path.is_file()
    meta = json.loads(meta_path.read_text())
    assert (meta["name"], meta["architecture"], meta["input_size"]) == ("detector_v1", "v1", 32)
    assert meta["labels"] == {"real": 0, "fake": 1}
    assert meta["params"] == build_v1(32).count_params()
    cfg = meta["train_config"]
    assert cfg["options"] == {}
    assert cfg["optimizer"] == "AdamW"
    assert cfg["batch_size"] == 64 and cfg["seed"] == 0
    assert cfg["epochs"] == cfg["epochs_run"] == 1 and cfg["stopped_by_time_limit"] is False
    assert set(cfg["augmentation"]) == {f.name for f in dataclasses.fields(Augmenter)}
    assert cfg["augmentation"]["flip"] is True
    assert cfg["learning_rate"] == 1e-3 and cfg["weight_decay"] == 5e-4
    assert "cosine" in cfg["schedule"]
    assert cfg["early_stopping"]["monitor"] == "val_auc"
    assert cfg["early_stopping"]["patience"] == 12 and cfg["early_stopping"]["restore_best_weights"] is True
    assert "--arch v1" in cfg["command"] and "--workers 1" in cfg["command"]
    for key in ("loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc"):
        assert len(meta["history"][key]) == 1, key
    for split in ("val", "test"):
        assert meta["metrics"][split]["overall"]["n"] == 16

    detector = models.load_model(model_path, cache=False)
    assert detector.name == "detector_v1" and detector.input_size == 32
    images = [np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8) for i in range(3)]
    p = detector.predict(images)
    assert p.shape == (3,) and p.dtype == np.float32
    assert np.all((p >= 0) & (p <= 1))


def _saved_contents(path):
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
        with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as h5:
            groups = set(h5.keys())
    return config, groups


def test_v1_saved_without_optimizer_state(v1_run, tmp_path):
    path = v1_run / "detector_v1.keras"
    config, groups = _saved_contents(path)
    assert "optimizer" not in groups
    assert not config.get("compile_config")

    # Control: the same model, compiled with AdamW, is saved with its optimizer and is bigger.
    model = keras.saving.load_model(path, compile=False)
    model.compile(optimizer=keras.optimizers.AdamW(), loss="binary_crossentropy")
    model.optimizer.build(model.trainable_variables)
    model.save(tmp_path / "compiled.keras")
    config_c, groups_c = _saved_contents(tmp_path / "compiled.keras")
    assert "optimizer" in groups_c and config_c.get("compile_config")
    assert path.stat().st_size < (tmp_path / "compiled.keras").stat().st_size


def test_v1_same_seed_same_weights(data_dir, v1_run, tmp_path):
    assert run_v1(data_dir, tmp_path, "--name", "again") == 0
    a, b = weights(v1_run / "detector_v1.keras"), weights(tmp_path / "again.keras")
    assert len(a) == len(b) > 20
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa, wb)
    # ... and training moved them: the run's weights are not a fresh seed-0 initialisation.
    keras.utils.set_random_seed(0)
    fresh = build_v1(32).get_weights()
    assert any(not np.array_equal(wa, wf) for wa, wf in zip(a, fresh, strict=True))


@pytest.fixture(scope="module")
def half_limited_run(data_dir, tmp_path_factory):
    """One run for two checks: half width, and a time limit that ends a 5-epoch run after its first epoch."""
    out = tmp_path_factory.mktemp("out_v1_half")
    assert run_v1(data_dir, out, "--width", "0.5", "--time-limit", "0.0001", "--epochs", "5", "--name", "half") == 0
    return out


def test_v1_width_option(v1_run, half_limited_run):
    meta = json.loads((half_limited_run / "half.json").read_text())
    full = json.loads((v1_run / "detector_v1.json").read_text())
    assert meta["train_config"]["options"] == {"width": 0.5}
    assert "--width 0.5" in meta["train_config"]["command"]
    assert meta["params"] == build_v1(32, width=0.5).count_params() < full["params"]
    assert models.load_model(half_limited_run / "half.keras", cache=False).keras_model.count_params() == meta["params"]


def test_width_with_other_arch_exits_2(data_dir, tmp_path, capsys):
    rc = train_cli.main(["--arch", "tuned", "--data", str(data_dir), "--out", str(tmp_path), "--image-size", "48",
                 "--epochs", "1", "--quiet", "--width", "0.5"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and "--width" in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_v1_time_limit_stops_after_first_epoch(half_limited_run):
    meta = json.loads((half_limited_run / "half.json").read_text())
    cfg = meta["train_config"]
    assert cfg["epochs"] == 5
    assert cfg["epochs_run"] == 1 and len(meta["history"]["loss"]) == 1
    assert cfg["stopped_by_time_limit"] is True
    assert cfg["best_epoch"] == 1
    assert (half_limited_run / "half.keras").is_file()  # still saved, with its metrics
    assert meta["metrics"]["test"]["overall"]["n"] == 16
    assert models.load_model(half_limited_run / "half.keras", cache=False).input_size == 32

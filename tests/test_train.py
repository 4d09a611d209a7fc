"""models.train: one-epoch runs on a tiny synthetic dataset, metadata, reproducibility, CLI errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_dataset_dir

import models
import models.train as train_cli


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Same layout as tiny_data (8 PNGs per class and split), shared by this module's runs."""
    return make_dataset_dir(tmp_path_factory.mktemp("train_data") / "data")


def run_train(data, out, *extra, arch="baseline", size=32):
    argv = ["--arch", arch, "--data", str(data), "--image-size", str(size), "--epochs", "1",
            "--out", str(out), "--quiet", *extra]
    return train_cli.main(argv)


@pytest.fixture(scope="module")
def baseline_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("out_baseline")
    assert run_train(data_dir, out, "--seed", "0") == 0
    return out


@pytest.fixture(scope="module")
def tuned_run(data_dir, tmp_path_factory):
    # The tuned CNN's four valid 3x3 conv + pool blocks need at least 46 px of input; 48 is the
    # smallest even size that works (32 px fails cleanly, see test_tuned_too_small_input_fails_cleanly).
    out = tmp_path_factory.mktemp("out_tuned")
    assert run_train(data_dir, out, arch="tuned", size=48) == 0
    return out


def weights(path):
    return models.load_model(path, cache=False).keras_model.get_weights()


def check_metadata(meta, name, arch, size, data_dir):
    assert meta["name"] == name
    assert meta["architecture"] == arch
    assert meta["input_size"] == size
    assert meta["labels"] == {"real": 0, "fake": 1}
    cfg = meta["train_config"]
    assert cfg["seed"] == 0
    assert cfg["batch_size"] == {"baseline": 64, "tuned": 16}[arch]
    assert cfg["command"].startswith("python -m models.train ")
    assert f"--arch {arch}" in cfg["command"] and f"--image-size {size}" in cfg["command"]
    assert cfg["epochs"] == 1 and cfg["epochs_run"] == 1
    hist = meta["history"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert isinstance(hist[key], list) and len(hist[key]) == 1
        assert isinstance(hist[key][0], float)
    assert 0.0 <= hist["val_accuracy"][0] <= 1.0
    fp = meta["data"]
    assert fp["root"] == str(data_dir)
    assert set(fp["splits"]) == {"train", "val", "test"}
    assert fp["splits"]["train"] == {"n": 16, "per_class": {"fake": 8, "real": 8},
                                     "per_source": {"fake/synth": 8, "real/synth": 8}}
    import keras
    import tensorflow as tf

    assert meta["versions"]["tensorflow"] == tf.__version__
    assert meta["versions"]["keras"] == keras.__version__
    for split in ("val", "test"):
        m = meta["metrics"][split]
        assert set(m) == {"overall", "by_source", "by_kind"}
        assert m["overall"]["n"] == 16
        assert sum(map(sum, m["overall"]["confusion"])) == 16
        assert set(m["by_source"]) == {"synth"}
        assert set(m["by_kind"]) == {"real", "unknown"}  # 'synth' is not a known kind of fake
        assert m["by_kind"]["real"]["n"] == 8 and m["by_kind"]["unknown"]["n_fake"] == 8


@pytest.mark.parametrize("arch,name,size", [("baseline", "baseline_cnn", 32), ("tuned", "tuned_cnn", 48)])
def test_train_writes_model_and_metadata(request, data_dir, arch, name, size):
    out = request.getfixturevalue(f"{arch}_run")
    model_path, meta_path = out / f"{name}.keras", out / f"{name}.json"
    assert model_path.is_file() and meta_path.is_file()
    meta = json.loads(meta_path.read_text())
    check_metadata(meta, name, arch, size, data_dir)

    detector = models.load_model(model_path, cache=False)
    assert detector.name == name and detector.input_size == size
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8) for _ in range(3)]
    p = detector.predict(images)
    assert p.shape == (3,) and p.dtype == np.float32
    assert np.all((p >= 0) & (p <= 1))


def test_same_seed_same_weights_other_seed_differs(data_dir, baseline_run, tmp_path):
    assert run_train(data_dir, tmp_path, "--seed", "0", "--name", "again") == 0
    assert run_train(data_dir, tmp_path, "--seed", "1", "--name", "seed1") == 0
    a, b, c = weights(baseline_run / "baseline_cnn.keras"), weights(tmp_path / "again.keras"), weights(tmp_path / "seed1.keras")
    assert len(a) == len(b) == len(c) == 6
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a, c, strict=True))
    assert json.loads((tmp_path / "seed1.json").read_text())["train_config"]["seed"] == 1


def test_custom_name(data_dir, tmp_path, capsys):
    assert run_train(data_dir, tmp_path, "--name", "custom") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["custom.json", "custom.keras"]
    assert json.loads((tmp_path / "custom.json").read_text())["name"] == "custom"
    assert "custom.keras" in capsys.readouterr().out


def test_missing_data_dir_returns_2(tmp_path, capsys):
    rc = run_train(tmp_path / "nope", tmp_path / "out")
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and "not found" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "baseline_cnn.keras").exists()


def test_tuned_too_small_input_fails_cleanly(data_dir, tmp_path, capsys):
    rc = run_train(data_dir, tmp_path, arch="tuned", size=32)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and "Traceback" not in err

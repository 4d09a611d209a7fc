"""models.detector: resolving and loading models, the Detector API and the verdict threshold."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from conftest import build_oracle_model, save_model, synthetic_face

import models
from models.detectors import registry as det
from models.training.architectures import build_baseline


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("assets_models")
    save_model(build_baseline(32), folder, "m", input_size=32)
    save_model(build_oracle_model(32), folder, "oracle", input_size=32)
    (folder / "DEFAULT").write_text("oracle\n")
    return folder


@pytest.fixture
def assets(tiny_model_dir, monkeypatch):
    """Point models.detector at the tmp assets folder; no env override, no cached detectors."""
    monkeypatch.setattr(det, "ASSETS_DIR", tiny_model_dir)
    monkeypatch.setattr(det, "DEFAULT_FILE", tiny_model_dir / "DEFAULT")
    monkeypatch.delenv("DEEPFAKE_MODEL", raising=False)
    monkeypatch.setattr(det, "_CACHE", {})
    return tiny_model_dir


def test_load_by_path(assets):
    d = models.load_model(assets / "m.keras")
    assert isinstance(d, models.Detector) and isinstance(d, models.KerasDetector)
    assert d.name == "m" and d.input_size == 32
    assert d.path == (assets / "m.keras").resolve()
    assert d.metadata == {"name": "m", "input_size": 32}
    # the same file by path without suffix, and by string
    assert models.load_model(str(assets / "m")).path == d.path


def test_load_by_bare_name(assets):
    d = models.load_model("m")
    assert d.name == "m" and d.path == (assets / "m.keras").resolve()


def test_default_resolution_via_default_file(assets, monkeypatch):
    assert models.default_model_name() == "oracle"
    d = models.load_model()
    assert d.name == "oracle"
    monkeypatch.setenv("DEEPFAKE_MODEL", "m")  # the env var overrides the DEFAULT file
    assert models.default_model_name() == "m"
    assert models.load_model(None).name == "m"


def test_list_models(assets):
    assert models.list_models() == ["m", "oracle"]
    assert models.list_models(assets / "missing") == []


def test_model_not_found_names_installed(assets):
    with pytest.raises(models.ModelNotFoundError) as info:
        models.load_model("nope")
    msg = str(info.value)
    assert "'nope'" in msg and "installed: m, oracle" in msg
    assert "\n" not in msg
    assert isinstance(info.value, FileNotFoundError)


def test_cache_returns_same_detector(assets):
    a = models.load_model("m")
    assert models.load_model("m") is a
    assert models.load_model("m", cache=False) is not a


def test_predict_mixed_inputs(assets):
    d = models.load_model("oracle")
    rng = np.random.default_rng(1)
    fake = synthetic_face(rng, True, 32)
    real_big = np.kron(synthetic_face(rng, False, 32), np.ones((2, 2, 1), dtype=np.uint8))  # 64x64 real
    gray_fake = fake.mean(axis=-1).astype(np.uint8)  # 2D grayscale, still bright top-left
    rgba_real = np.concatenate([synthetic_face(rng, False, 40), np.full((40, 40, 1), 255, np.uint8)], axis=-1)
    p = d.predict([fake, real_big, gray_fake, rgba_real])
    assert p.shape == (4,) and p.dtype == np.float32
    assert np.all((p >= 0) & (p <= 1))
    assert [models.verdict(float(v)) for v in p] == ["fake", "real", "fake", "real"]


def test_predict_matches_keras_model_and_batches(assets):
    d = models.load_model("m")
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, size=(32 + i, 30, 3), dtype=np.uint8) for i in range(5)]
    p = d.predict(images)
    direct = np.asarray(d.keras_model(d.preprocess(images), training=False)).reshape(-1)
    np.testing.assert_allclose(p, direct, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d.predict(images, batch_size=2), p, rtol=1e-5, atol=1e-6)


def test_predict_empty(assets):
    p = models.load_model("m").predict([])
    assert p.shape == (0,) and p.dtype == np.float32


def test_input_size_read_from_model(tmp_path):
    path = save_model(build_baseline(40), tmp_path, "nometa")  # no JSON next to it
    d = models.load_model(path, cache=False)
    assert d.input_size == 40 and d.name == "nometa" and d.metadata == {}
    assert d.preprocess([np.zeros((10, 10, 3), np.uint8)]).shape == (1, 40, 40, 3)


def test_metadata_input_size_mismatch_raises(tmp_path):
    path = save_model(build_baseline(32), tmp_path, "bad")
    (tmp_path / "bad.json").write_text(json.dumps({"name": "bad", "input_size": 64}))
    with pytest.raises(ValueError, match="64"):
        models.load_model(path, cache=False)


def test_verdict_threshold():
    assert models.THRESHOLD == 0.5
    assert models.verdict(0.5) == "fake"
    assert models.verdict(0.49) == "real"
    assert models.verdict(0.0) == "real" and models.verdict(1.0) == "fake"
    assert models.verdict(0.3, threshold=0.2) == "fake"


def test_load_uses_safe_mode(tmp_path):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    path = tmp_path / "lam.keras"
    model.save(path)
    with pytest.raises(models.ModelNotFoundError, match="cannot load model lam.keras.*safe_mode"):
        models.load_model(path, cache=False)
    # the file itself is fine: only safe mode refuses it
    assert keras.saving.load_model(path, compile=False, safe_mode=False) is not None


def test_corrupt_file_raises_model_not_found(tmp_path):
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(models.ModelNotFoundError, match="junk.keras"):
        models.load_model(tmp_path / "junk.keras", cache=False)


def test_base_detector_is_abstract():
    with pytest.raises(NotImplementedError):
        models.Detector().predict([])


# --- calibration and the saved operating point (models.calibration) --------------------------------------


def test_threshold_defaults_to_the_label_threshold(assets):
    d = models.load_model("oracle")
    assert d.threshold == models.THRESHOLD == 0.5 and d.calibration is None and d.operating_point is None
    assert d.verdict(0.5) == "fake" and d.verdict(0.49) == "real"
    assert models.Detector().threshold == 0.5  # no metadata at all
    with pytest.raises(NotImplementedError):
        models.Detector().predict_raw([])


def test_cache_follows_the_json(tmp_path, monkeypatch):
    monkeypatch.setattr(det, "_CACHE", {})
    path = save_model(build_oracle_model(32), tmp_path, "o", input_size=32)
    a = models.load_model(path)
    assert models.load_model(path) is a
    meta = json.loads((tmp_path / "o.json").read_text())
    (tmp_path / "o.json").write_text(json.dumps({**meta, "operating_point": {"threshold": 0.8}}))
    b = models.load_model(path)
    assert b is not a and b.threshold == 0.8 and a.threshold == 0.5
    assert b.keras_model is a.keras_model  # settings only: the weights are reused
    assert len(det._CACHE) == 1  # the stale entry is gone
    (tmp_path / "o.json").write_text(json.dumps({**meta, "description": "changed"}))
    c = models.load_model(path)
    assert c.threshold == 0.5 and c.metadata["description"] == "changed"
    assert c.keras_model is not a.keras_model  # other metadata changed: loaded afresh


def test_predict_applies_the_stored_calibration(tmp_path):
    from models.detectors.calibration import apply

    path = save_model(build_oracle_model(32), tmp_path, "o", input_size=32)
    cal = {"method": "platt", "a": 0.4, "b": 0.5}
    (tmp_path / "o.json").write_text(json.dumps({"name": "o", "input_size": 32, "calibration": cal}))
    d = models.load_model(path, cache=False)
    rng = np.random.default_rng(3)
    images = [synthetic_face(rng, i % 2 == 0, 32) for i in range(6)]
    raw = d.predict_raw(images)
    np.testing.assert_allclose(d.predict(images), apply(raw, cal), atol=1e-6)
    np.testing.assert_allclose(raw, np.asarray(d.keras_model(d.preprocess(images), training=False)).reshape(-1),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(d.predict(images), raw, atol=1e-2)


def test_bad_operating_point_in_json_is_refused(tmp_path):
    path = save_model(build_oracle_model(32), tmp_path, "o", input_size=32)
    (tmp_path / "o.json").write_text(json.dumps({"name": "o", "input_size": 32, "operating_point": {"threshold": 0}}))
    with pytest.raises(models.ModelNotFoundError, match="bad metadata in o.json.*threshold"):
        models.load_model(path, cache=False)

"""The spectrum baseline: features, training through models.train, plain-array storage, one Detector interface."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from models import load_model
from models.detectors.registry import ModelNotFoundError
from models.detectors.spectrum import BINS, SpectrumDetector, spectrum_features
from models.train import main as train_main


def test_features_separate_smooth_from_high_frequency_images():
    rng = np.random.default_rng(0)
    smooth = np.full((128, 128, 3), 120, np.uint8)
    noisy = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    f = spectrum_features([smooth + 1, noisy])
    assert f.shape == (2, BINS) and np.isfinite(f).all()
    assert f[1, -8:].mean() > f[0, -8:].mean() + 5  # noise has far more high-frequency power


def test_features_accept_any_size_through_the_shared_preprocessing():
    img = np.random.default_rng(1).integers(0, 255, (90, 150, 3), dtype=np.uint8)
    assert spectrum_features([img], size=64, bins=16).shape == (1, 16)


def test_train_save_load_predict(tiny_data, tmp_path, capsys):
    out = tmp_path / "out"
    assert train_main(["--arch", "spectrum", "--data", str(tiny_data), "--out", str(out), "--quiet"]) == 0
    assert "spectrum.npz" in capsys.readouterr().out
    assert not list(out.glob("*.keras")) and not list(out.glob("*.pkl"))
    with np.load(out / "spectrum.npz", allow_pickle=False) as z:  # plain arrays, never a pickle
        assert set(z.files) == {"mean", "scale", "coef", "intercept", "input_size", "bins"}
    meta = json.loads((out / "spectrum.json").read_text())
    assert meta["architecture"] == "spectrum" and "test" in meta["metrics"]
    det = load_model(out / "spectrum.npz", cache=False)
    assert isinstance(det, SpectrumDetector) and det.keras_model is None
    assert not det.supports_gradcam and not det.supports_activations
    p = det.predict([np.zeros((40, 40, 3), np.uint8), np.full((128, 128, 3), 255, np.uint8)])
    assert p.shape == (2,) and ((0 <= p) & (p <= 1)).all()


def test_tampered_npz_fails_safely(tmp_path):
    bad = tmp_path / "evil.npz"
    np.savez(bad, mean=np.array([object()], dtype=object))  # an object array needs pickle to load
    with pytest.raises(ModelNotFoundError, match="cannot load model evil.npz"):
        load_model(bad, cache=False)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ModelNotFoundError):
        load_model(junk, cache=False)
    assert zipfile.is_zipfile(bad)


def test_lime_works_on_the_spectrum_baseline(tiny_data, tmp_path):
    from explain import lime

    train_main(["--arch", "spectrum", "--data", str(tiny_data), "--out", str(tmp_path), "--quiet"])
    det = load_model(tmp_path / "spectrum.npz", cache=False)
    img = np.random.default_rng(2).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    e = lime.explain(det, img, num_samples=100)
    assert e.attribution.shape == (64, 64) and len(e.extras["weights"]) == e.extras["n_segments_actual"]

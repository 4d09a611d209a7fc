"""Integration checks on the shared faces128 dataset (small slices only: the CPU is shared)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import models.evaluate as evaluate_cli
import models.train as train_cli
from models.data import files as D
from models.data.intake import load_image
from models.data.tfdata import decode_image, make_dataset

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
SHIPPED_TUNED = REPO / "assets" / "models" / "tuned_cnn.keras"


def pick(files: D.FileList, label: int, n: int, seed: int = 0) -> list[str]:
    """n paths of one class, a seeded random (stable) pick that spreads over the sources."""
    paths = [p for p, y in zip(files.paths, files.labels, strict=True) if y == label]
    rng = np.random.default_rng(seed + label)
    return [paths[i] for i in sorted(rng.choice(len(paths), size=min(n, len(paths)), replace=False))]


def copy_slice(files: D.FileList, dest: Path, n_real: int, n_fake: int, seed: int = 0) -> Path:
    for label, cls, n in ((0, "real", n_real), (1, "fake", n_fake)):
        (dest / cls).mkdir(parents=True, exist_ok=True)
        for path in pick(files, label, n, seed):
            shutil.copy2(path, dest / cls / Path(path).name)
    return dest




def copy_stratified(files: D.FileList, dest: Path, n: int, manifest: Path, seed: int = 0) -> Path:
    """Copy a stratified slice into ``dest/{real,fake}/``, with the dataset's manifest (sources and kinds)."""
    for i in D.stratified_indices(files, n, seed):
        cls = D.CLASSES[files.labels[i]]
        (dest / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy2(files.paths[i], dest / cls / Path(files.paths[i]).name)
    shutil.copy2(manifest, dest / "manifest.csv")
    return dest


@pytest.fixture(scope="module")
def test_files(shared_data) -> D.FileList:
    return D.list_files(shared_data, "test")


def test_list_files_test_split(shared_data, test_files):
    assert set(test_files.labels) == {0, 1}
    assert len(test_files) > 100
    assert {"lfw_faceswap", "ciplab_real_and_fake_face"} <= set(test_files.sources)
    assert "unknown" not in test_files.sources
    # sources come from manifest.csv (file names carry the same prefix in the shared layout)
    fp = D.fingerprint(shared_data)
    assert fp["manifest"] is True
    assert fp["splits"]["test"]["n"] == len(test_files)
    assert sum(fp["splits"]["test"]["per_class"].values()) == len(test_files)


def test_make_dataset_slice(test_files):
    paths = pick(test_files, 0, 32) + pick(test_files, 1, 32)
    subset = D.FileList(paths=paths, labels=[0] * 32 + [1] * 32, sources=["x"] * 64)
    batches = list(make_dataset(subset, image_size=48, batch_size=32).as_numpy_iterator())
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert x.shape == (64, 48, 48, 3) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.std() > 0.05
    np.testing.assert_array_equal(y, subset.labels)


def test_tf_decoding_equals_pillow(test_files):
    import tensorflow as tf

    jpegs = [p for p in pick(test_files, 0, 4) + pick(test_files, 1, 4) if p.lower().endswith((".jpg", ".jpeg"))]
    assert len(jpegs) >= 4
    for path in jpegs:
        tf_pixels = decode_image(tf.constant(path)).numpy()
        pil_pixels = load_image(path)
        assert tf_pixels.shape == pil_pixels.shape
        np.testing.assert_array_equal(tf_pixels, pil_pixels, err_msg=path)


def test_short_training_run(shared_data, tmp_path):
    root = tmp_path / "slice"
    copy_slice(D.list_files(shared_data, "train"), root / "train", 40, 40)
    copy_slice(D.list_files(shared_data, "val"), root / "val", 20, 20)
    copy_slice(D.list_files(shared_data, "test"), root / "test", 20, 20)
    shutil.copy2(shared_data / "manifest.csv", root / "manifest.csv")  # sources and kinds, as in the shared data
    out = tmp_path / "out"
    rc = train_cli.main(["--arch", "baseline", "--data", str(root), "--image-size", "32", "--epochs", "1",
                 "--out", str(out), "--quiet", "--name", "slice"])
    assert rc == 0
    meta = json.loads((out / "slice.json").read_text())
    assert meta["data"]["splits"]["train"]["n"] == 80
    test = meta["metrics"]["test"]
    assert test["overall"]["n"] == 40
    kinds = D.source_kinds(shared_data)  # read from the manifest: sources get added over time
    assert set(test["by_source"]) <= set(kinds) | {"unsplash_men"}  # unsplash_men: reals only, no kind
    test_fakes = D.list_files(root, "test")
    expected = {D.kind_of(s, kinds) for s, y in zip(test_fakes.sources, test_fakes.labels) if y == 1}
    assert set(test["by_kind"]) == expected | {"real"}
    assert "unknown" not in test["by_kind"]
    import models

    p = models.load_model(out / "slice.keras", cache=False).predict([load_image(pick(D.list_files(root, "test"), 1, 1)[0])])
    assert p.shape == (1,) and 0.0 <= float(p[0]) <= 1.0


def test_shipped_tuned_model_beats_chance(shared_data, test_files, tmp_path, capsys):
    if not SHIPPED_TUNED.is_file():
        msg = f"shipped model not found: {SHIPPED_TUNED}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    # seed 0, 600+ test images stratified by source and class: the bar tests the model, not the draw
    folder = copy_stratified(test_files, tmp_path / "eval", 640, shared_data / "manifest.csv")
    rc = evaluate_cli.main(["--model", str(SHIPPED_TUNED), "--data", str(folder), "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    r = json.loads(captured.out)
    assert r["n"] >= 600
    assert set(r["by_source"]) == set(test_files.sources)  # every source is in the slice
    assert r["roc_auc"] > 0.55, r


# --- the shipped default detector (detector_v1) ---------------------------------------------------


def every_kth(files: D.FileList, label: int, n: int) -> list[str]:
    """n paths of one class, every k-th file in the listing's sorted order (deterministic, spread out)."""
    paths = [p for p, y in zip(files.paths, files.labels, strict=True) if y == label]
    return paths[:: max(1, len(paths) // n)][:n]


@pytest.fixture(scope="module")
def default_detector():
    import models
    from models.detectors import registry as det

    name = det.DEFAULT_FILE.read_text().strip()
    path = det.ASSETS_DIR / f"{name}.keras"
    if not path.is_file():
        msg = f"shipped default model not found: {path}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return models.load_model(path, cache=False)


def test_default_is_detector_v1(monkeypatch, default_detector):
    import models

    monkeypatch.delenv("DEEPFAKE_MODEL", raising=False)
    assert models.default_model_name() == "detector_v1"
    assert default_detector.name == "detector_v1"
    assert default_detector.input_size == 128
    assert default_detector.keras_model.output_shape == (None, 1)


def test_default_beats_tuned_on_a_test_slice(test_files, default_detector):
    import models
    from models.analysis.metrics import compute_metrics

    if not SHIPPED_TUNED.is_file():
        pytest.skip(f"shipped model not found: {SHIPPED_TUNED}")
    real, fake = every_kth(test_files, 0, 100), every_kth(test_files, 1, 100)
    assert len(real) == len(fake) == 100
    images = [load_image(p) for p in real + fake]
    y = [0] * 100 + [1] * 100
    p_v1 = default_detector.predict(images)
    p_tuned = models.load_model(SHIPPED_TUNED, cache=False).predict(images)
    assert p_v1.shape == (200,) and np.all((p_v1 >= 0) & (p_v1 <= 1))
    auc_v1, auc_tuned = compute_metrics(y, p_v1)["roc_auc"], compute_metrics(y, p_tuned)["roc_auc"]
    assert auc_v1 > 0.85, auc_v1
    assert auc_v1 > auc_tuned, (auc_v1, auc_tuned)


def test_default_metadata_records_test_metrics(default_detector):
    meta = default_detector.metadata
    assert meta["architecture"] == "v1" and meta["input_size"] == 128
    assert meta["labels"] == {"real": 0, "fake": 1}
    test = meta["metrics"]["test"]
    assert test["overall"]["accuracy"] >= 0.80
    assert test["overall"]["roc_auc"] >= 0.88
    for kind in ("swap", "photoshop", "gan"):
        assert kind in test["by_kind"], kind
        assert test["by_kind"][kind]["n_fake"] > 0 and test["by_kind"][kind]["roc_auc"] is not None

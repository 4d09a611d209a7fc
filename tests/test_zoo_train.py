"""models.train for every architecture on tiny data; Xception transfer (weights, frozen base, explainers) and
the ensemble (frozen members, one input resized inside, safe loading, non-Keras members refused)."""

from __future__ import annotations

import hashlib
import json
import time

import h5py
import keras
import numpy as np
import pytest
from conftest import make_dataset_dir

import models
import models.train as train_cli
from models.training import architectures as A

# --- shared runs --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_dataset_dir(tmp_path_factory.mktemp("zoo_data") / "data")


def run_train(data, out, *extra, arch, size=None, epochs=1):
    argv = ["--arch", arch, "--data", str(data), "--epochs", str(epochs), "--out", str(out), "--quiet", *extra]
    if size is not None:
        argv += ["--image-size", str(size)]
    return train_cli.main(argv)


@pytest.fixture(scope="module")
def xception_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("out_xception")
    assert run_train(data_dir, out, "--weights", "none", arch="xception", size=71) == 0
    return out


@pytest.fixture(scope="module")
def members_dir(data_dir, tmp_path_factory):
    """Two tiny members of different input sizes (a 32 px baseline, a 48 px tuned CNN) and a spectrum model."""
    out = tmp_path_factory.mktemp("members")
    assert run_train(data_dir, out, "--name", "m_small", arch="baseline", size=32) == 0
    assert run_train(data_dir, out, "--name", "m_big", arch="tuned", size=48) == 0
    assert run_train(data_dir, out, "--name", "spec", arch="spectrum", size=32) == 0
    return out


@pytest.fixture(scope="module")
def ensemble_run(data_dir, members_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("out_ensemble")
    members = f"{members_dir / 'm_small.keras'},{members_dir / 'm_big.keras'}"
    assert run_train(data_dir, out, "--members", members, arch="ensemble", epochs=3) == 0
    return out


def read_meta(folder, name):
    return json.loads((folder / f"{name}.json").read_text())


def weights_of(path):
    return models.load_model(path, cache=False).keras_model.get_weights()


# --- every architecture trains through models.train ---------------------------------------------------

# How each architecture is smoke-trained here (one epoch on 8 images per class and split).
SMOKE = {
    "baseline": ("baseline_cnn", ["--image-size", "32"]),
    "tuned": ("tuned_cnn", ["--image-size", "48"]),
    "v1": ("detector_v1", ["--image-size", "32", "--workers", "1"]),
    "v2": ("detector_v2", ["--image-size", "32", "--workers", "1"]),
    "spectrum": ("spectrum", ["--image-size", "32"]),
    "xception": ("xception_transfer", None),  # the xception_run fixture
    "ensemble": ("ensemble", None),  # the ensemble_run fixture
}


def test_smoke_covers_every_architecture():
    # The CLI offers ARCHITECTURES plus spectrum: each one needs a smoke run here.
    assert set(SMOKE) == {*A.ARCHITECTURES, "spectrum"}
    for arch in SMOKE:
        assert train_cli.parse_args(["--arch", arch]).arch == arch


@pytest.mark.parametrize("arch", sorted(SMOKE))
def test_every_architecture_trains(request, data_dir, tmp_path, arch):
    name, extra = SMOKE[arch]
    if extra is None:
        out = request.getfixturevalue(f"{arch}_run")
    else:
        out = tmp_path
        assert run_train(data_dir, out, *extra, arch=arch) == 0
    meta = read_meta(out, name)
    assert meta["architecture"] == arch and meta["labels"] == {"real": 0, "fake": 1}
    assert meta["metrics"]["test"]["overall"]["n"] == 16
    detector = models.load_model(next(out.glob(f"{name}.*[sz]")), cache=False)  # .keras or .npz
    rng = np.random.default_rng(0)
    p = detector.predict([rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(3)])
    assert p.shape == (3,) and np.all((p >= 0) & (p <= 1))


# --- Xception transfer ----------------------------------------------------------------------------------


def test_xception_run_metadata_and_frozen_base(xception_run):
    meta = read_meta(xception_run, "xception_transfer")
    cfg = meta["train_config"]
    assert meta["input_size"] == 71
    assert cfg["weights"] == "none" and cfg["trainable_base"] is False
    assert cfg["options"] == {"weights": "none", "trainable_base": False}
    assert cfg["batch_size"] == 32 and cfg["optimizer"] == "Adam"
    model = models.load_model(xception_run / "xception_transfer.keras", cache=False).keras_model
    assert model.input_shape == (None, 71, 71, 3)
    # Only the head trains: 6 Dense layers, kernel + bias each.
    assert sorted(w.path.split("/")[0] for w in model.trainable_weights) == sorted(
        [f"head_dense{u}" for u in A.XCEPTION_HEAD] * 2 + ["p_fake"] * 2)
    # The base kept its (seeded) initial weights, BatchNorm statistics included; the head moved.
    keras.utils.set_random_seed(0)
    init = A.build_xception(71)
    for name in ("block1_conv1", "block1_conv1_bn", "block14_sepconv2", "block14_sepconv2_bn"):
        for a, b in zip(model.get_layer(name).get_weights(), init.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(model.get_layer("p_fake").get_weights()[0], init.get_layer("p_fake").get_weights()[0])


def test_xception_rescales_inputs_to_minus_one_one(xception_run):
    from explain import layers as L

    model = models.load_model(xception_run / "xception_transfer.keras", cache=False).keras_model
    ref = L.find_layer(model, "to_xception_range", (keras.layers.Rescaling,), "rescaling")
    x = np.stack([np.zeros((71, 71, 3)), np.full((71, 71, 3), 0.5), np.ones((71, 71, 3))]).astype(np.float32)
    scaled, _ = L.forward(model, ref, x)
    np.testing.assert_allclose(np.asarray(scaled)[:, 0, 0, 0], [-1.0, 0.0, 1.0], atol=1e-6)


def test_xception_explainers_reach_base_layers(xception_run):
    from explain import activations, gradcam

    detector = models.load_model(xception_run / "xception_transfer.keras", cache=False)
    image = np.random.default_rng(1).integers(0, 256, (90, 90, 3), dtype=np.uint8)
    assert gradcam.default_layer(detector) == "block14_sepconv2"
    ex = gradcam.explain(detector, image, target="fake")
    assert ex.attribution.shape == (90, 90) and np.isfinite(ex.attribution).all()
    assert ex.extras["layer_shape"][-1] == 2048
    assert np.isclose(ex.p_fake, detector.predict([image])[0], atol=1e-5)
    act = activations.explain(detector, image, layer="block2_sepconv1")
    assert act.extras["layer"] == "block2_sepconv1" and act.extras["n_channels"] == 128
    assert np.isfinite(act.extras["maps"]).all()


def test_xception_too_small_input_fails_cleanly(data_dir, tmp_path, capsys):
    rc = run_train(data_dir, tmp_path, "--weights", "none", arch="xception", size=64)
    err = capsys.readouterr().err
    assert rc == 2 and "at least 71 px" in err and "Traceback" not in err
    with pytest.raises(ValueError, match="at least 71"):
        A.build_xception(70)


def _save_legacy_notop_weights(path, seed):
    """A notop Xception weights file in the format of Keras' ImageNet download (legacy HDF5, by layer)."""
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(seed)
    base = keras.applications.Xception(include_top=False, weights=None, input_shape=(71, 71, 3))
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, base)
    return base


@pytest.fixture(scope="module")
def notop_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / A.XCEPTION_NOTOP_FILE
    return path, _save_legacy_notop_weights(path, seed=123)


def _assert_base_weights_equal(model, base):
    for name in ("block1_conv1", "block4_sepconv2_bn", "block14_sepconv2"):
        for a, b in zip(model.get_layer(name).get_weights(), base.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)


def test_xception_weights_path_loads_local_file(notop_weights):
    path, base = notop_weights
    keras.utils.set_random_seed(0)
    model = A.build_xception(71, weights=str(path))
    _assert_base_weights_equal(model, base)
    keras.utils.set_random_seed(0)
    random = A.build_xception(71, weights="none")
    assert not np.array_equal(random.get_layer("block1_conv1").get_weights()[0],
                              base.get_layer("block1_conv1").get_weights()[0])


def test_xception_trainable_base_flag(notop_weights):
    model = A.build_xception(71, weights=notop_weights[0], trainable_base=True)
    assert model.get_layer("block1_conv1").trainable and model.get_layer("block14_sepconv2_bn").trainable
    assert len(model.trainable_weights) > 100
    frozen = A.build_xception(71)
    assert not frozen.get_layer("block1_conv1").trainable and len(frozen.trainable_weights) == 12


def test_xception_imagenet_uses_keras_cache_without_network(notop_weights, monkeypatch, tmp_path):
    path, base = notop_weights
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / A.XCEPTION_NOTOP_FILE).write_bytes(path.read_bytes())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(A, "can_download", lambda *a, **k: pytest.fail("checked the network despite a cached file"))
    assert A.resolve_xception_weights("imagenet") == str(tmp_path / "models" / A.XCEPTION_NOTOP_FILE)
    _assert_base_weights_equal(A.build_xception(71, weights="imagenet"), base)


def test_xception_imagenet_offline_fails_fast(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(A, "keras_cache_dirs", lambda: [tmp_path / "no_cache"])
    checks = []
    monkeypatch.setattr(A, "can_download", lambda *a, **k: checks.append(a) or False)

    def no_download(*a, **k):
        raise AssertionError("tried to download")

    from keras.src.utils import file_utils

    monkeypatch.setattr(file_utils, "get_file", no_download)
    monkeypatch.setattr(keras.utils, "get_file", no_download)
    start = time.perf_counter()
    rc = run_train(data_dir, tmp_path / "out", "--weights", "imagenet", arch="xception", size=71)
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    assert rc == 2 and len(checks) == 1
    assert seconds < 5
    assert "offline" in err and "--weights PATH" in err and A.XCEPTION_NOTOP_FILE in err
    assert "Traceback" not in err and "tried to download" not in err
    assert not (tmp_path / "out" / "xception_transfer.keras").exists()


def test_connectivity_check_uses_a_short_timeout(monkeypatch):
    import socket

    seen = {}

    def refuse(address, timeout=None, **kw):
        seen.update(address=address, timeout=timeout)
        raise OSError("network unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    assert A.can_download() is False
    assert seen["address"] == ("storage.googleapis.com", 443) and 0 < seen["timeout"] <= 5


def test_xception_missing_weights_file_fails_cleanly(data_dir, tmp_path, capsys):
    rc = run_train(data_dir, tmp_path, "--weights", str(tmp_path / "nope.h5"), arch="xception", size=71)
    err = capsys.readouterr().err
    assert rc == 2 and "no such file" in err and A.XCEPTION_NOTOP_FILE in err


# --- ensemble ---------------------------------------------------------------------------------------------


def test_ensemble_metadata_records_members(ensemble_run, members_dir):
    meta = read_meta(ensemble_run, "ensemble")
    assert meta["input_size"] == 48  # the largest member's
    recs = meta["members"]
    assert [r["name"] for r in recs] == ["m_small", "m_big"]
    assert [r["input_size"] for r in recs] == [32, 48]
    assert [r["architecture"] for r in recs] == ["baseline", "tuned"]
    for rec in recs:
        assert rec["sha256"] == hashlib.sha256((members_dir / rec["file"]).read_bytes()).hexdigest()
    cfg = meta["train_config"]
    assert cfg["trainer"] == "frozen_features" and cfg["members_frozen"] is True
    assert cfg["trainable_params"] == 2 * 32 + 32 + 33
    assert cfg["feature_check"]["max_abs_diff"] < 1e-5
    assert cfg["epochs_run"] == 3 and len(meta["history"]["val_loss"]) == 3


def test_ensemble_loads_safely_and_through_models(ensemble_run):
    path = ensemble_run / "ensemble.keras"
    raw = keras.saving.load_model(path, compile=False, safe_mode=True)
    detector = models.load_model(path, cache=False)
    assert detector.input_size == 48 and detector.name == "ensemble"
    x = np.random.default_rng(0).random((4, 48, 48, 3), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(raw(x)), np.asarray(detector.keras_model(x)), atol=1e-7)
    # Only the head is trainable after loading too.
    assert sorted(w.path for w in raw.trainable_weights) == [
        "head_dense/bias", "head_dense/kernel", "p_fake/bias", "p_fake/kernel"]


def test_ensemble_one_input_members_resize_inside(ensemble_run, members_dir):
    detector = models.load_model(ensemble_run / "ensemble.keras", cache=False)
    model = detector.keras_model
    assert len(model.inputs) == 1 and model.input_shape == (None, 48, 48, 3)
    resize = model.get_layer("resize_m_small")
    assert (resize.height, resize.width, resize.interpolation, resize.antialias) == (32, 32, "bilinear", True)
    small = models.load_model(members_dir / "m_small.keras", cache=False)
    big = models.load_model(members_dir / "m_big.keras", cache=False)
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(6)]
    # Each member's own model on its own preprocessing of the image (48 -> 32 px for m_small), then the head.
    # (Raw model outputs: the ensemble was trained on them, whatever calibration a member's JSON may add.)
    feats = np.stack([np.asarray(m.keras_model(m.preprocess(images))).reshape(-1) for m in (small, big)], axis=1)
    h = model.get_layer("head_dense")(feats)
    expected = np.asarray(model.get_layer("p_fake")(h)).reshape(-1)
    np.testing.assert_allclose(detector.predict(images), expected, atol=2e-5)
    assert np.ptp(feats[:, 0]) > 0  # the members' outputs vary, so the comparison means something


def test_ensemble_members_frozen(ensemble_run, members_dir):
    model = models.load_model(ensemble_run / "ensemble.keras", cache=False).keras_model
    for name in ("m_small", "m_big"):
        inner = model.get_layer(name)
        assert not inner.trainable
        for a, b in zip(inner.get_weights(), weights_of(members_dir / f"{name}.keras"), strict=True):
            np.testing.assert_array_equal(a, b)  # BatchNorm moving statistics included (m_big)


def test_ensemble_gradcam_reaches_member_layers(ensemble_run):
    from explain import gradcam

    detector = models.load_model(ensemble_run / "ensemble.keras", cache=False)
    # The default is the first member's last conv layer, not the last member's.
    first = detector.metadata["members"][0]["name"]
    assert gradcam.default_layer(detector).split("/")[0] == first
    assert gradcam.conv_layers(detector)[-1].split("/")[0] != first
    ex = gradcam.explain(detector, np.full((48, 48, 3), 120, np.uint8), layer="m_small/conv2")
    assert ex.extras["layer"] == "m_small/conv2" and ex.attribution.shape == (48, 48)


def test_ensemble_refuses_non_keras_member(data_dir, members_dir, tmp_path, capsys):
    members = f"{members_dir / 'm_small.keras'},{members_dir / 'spec.npz'}"
    rc = run_train(data_dir, tmp_path, "--members", members, arch="ensemble")
    err = capsys.readouterr().err
    assert rc == 2 and "spec.npz" in err and "not a Keras model" in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.keras"))


@pytest.mark.parametrize("members,message", [
    (None, "at least two"),
    ("m_small", "at least two"),
    ("m_small,m_small", "listed twice"),
    ("m_small,does_not_exist", "no model named"),
])
def test_ensemble_bad_members(data_dir, members_dir, tmp_path, capsys, members, message):
    extra = [] if members is None else ["--members", ",".join(str(members_dir / m) for m in members.split(","))]
    rc = run_train(data_dir, tmp_path, *extra, arch="ensemble")
    assert rc == 2 and message in capsys.readouterr().err


def test_options_for_other_architectures_refused(data_dir, tmp_path, capsys):
    assert run_train(data_dir, tmp_path, "--weights", "none", arch="baseline", size=32) == 2
    assert "--arch xception only" in capsys.readouterr().err
    assert run_train(data_dir, tmp_path, "--members", "a,b", arch="baseline", size=32) == 2
    assert "--arch ensemble only" in capsys.readouterr().err


def test_shipped_ensemble_is_its_members_plus_a_head():
    from models.detectors.registry import ASSETS_DIR

    path = ASSETS_DIR / "ensemble.keras"
    if not path.is_file():
        pytest.skip("no shipped ensemble")
    meta = read_meta(ASSETS_DIR, "ensemble")
    model = keras.saving.load_model(path, compile=False, safe_mode=True)
    assert meta["input_size"] == model.input_shape[1] and len(model.inputs) == 1
    assert sorted(w.path for w in model.trainable_weights) == [
        "head_dense/bias", "head_dense/kernel", "p_fake/bias", "p_fake/kernel"]
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for _ in range(4)]
    feats = []
    for rec in meta["members"]:
        member_path = ASSETS_DIR / rec["file"]
        if not member_path.is_file() or hashlib.sha256(member_path.read_bytes()).hexdigest() != rec["sha256"]:
            pytest.skip(f"member {rec['file']} changed since the ensemble was built")
        member = models.load_model(member_path, cache=False)
        assert member.input_size == rec["input_size"]
        feats.append(np.asarray(member.keras_model(member.preprocess(images))).reshape(-1))
    expected = np.asarray(model.get_layer("p_fake")(model.get_layer("head_dense")(np.stack(feats, axis=1))))
    ensemble = models.load_model(path, cache=False)
    np.testing.assert_allclose(np.asarray(ensemble.keras_model(ensemble.preprocess(images))).reshape(-1),
                               expected.reshape(-1), atol=2e-5)

"""detector_v2's training: batches mixing real images and self-blended pseudo-fakes with map targets, the masked
map loss, and a one-epoch run of ``models.train --arch v2`` on tiny data (landmarks stubbed: no faces in it)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_dataset_dir

import models.train as train_cli
from models.data import landmarks as L
from models.training import selfblend as S

LM32 = L.Landmarks(box=(4, 3, 24, 27), left_eye=(11, 12), right_eye=(21, 12), nose=(16, 17),
                   mouth_left=(12, 23), mouth_right=(20, 23), confidence=0.99)


def targets(n_real: int, parts: list) -> S.MapTargets:
    """Reals first (with landmarks), then fakes with the given ciplab parts (None: no known target)."""
    return S.MapTargets([LM32] * n_real + [LM32] * len(parts), [None] * n_real + parts)


def batches(supervision="all", ratio=1.0, augment=False, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(30, 220, (6, 32, 32, 3), dtype=np.uint8)
    y = [0, 0, 0, 0, 1, 1]
    t = targets(4, [("nose",), None])
    cfg = S.SelfBlendConfig(pseudo_ratio=ratio, supervision=supervision, map_size=4)
    return S.BlendBatches(x, y, t, cfg, batch_size=64, augment=augment, seed=seed)


def test_batches_mix_real_images_and_pseudo_fakes_with_their_targets():
    b = batches()
    assert b.n_pseudo == 4 and len(b) == 1
    xb, yb = b[0]
    assert xb.shape == (10, 32, 32, 3) and 0 <= xb.min() and xb.max() <= 1
    labels, maps = yb["p_fake"], yb["mask"]
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1] and maps.shape == (10, 4, 4, 2)
    assert (maps[:4, ..., 0] == 0).all() and (maps[:4, ..., 1] == 1).all()  # reals: empty map, supervised
    nose = L.part_mask((32, 32), LM32, ["nose"])
    assert maps[4, ..., 0].sum() > 0 and np.allclose(maps[4, ..., 0].sum() * 64, nose.sum())  # ciplab: its parts
    assert (maps[5, ..., 1] == 0).all()  # a fake with no known edit: the map's loss is masked out
    assert (maps[6:, ..., 1] == 1).all() and all(maps[k, ..., 0].max() > 0 for k in range(6, 10))  # pseudo-fakes


@pytest.mark.parametrize(("supervision", "ciplab", "pseudo", "reals"),
                         [("pseudo", 0, 1, 1), ("ciplab", 1, 0, 1), ("none", 0, 0, 0)])
def test_supervision_turns_target_sources_on_and_off(supervision, ciplab, pseudo, reals):
    _, yb = batches(supervision)[0]
    w = yb["mask"][..., 1]
    assert (w[:4] == reals).all() and (w[4] == ciplab).all() and (w[6:] == pseudo).all()


def test_no_pseudo_fakes_without_landmarked_reals_or_when_asked():
    assert batches(ratio=0.0).n_pseudo == 0
    x = np.zeros((3, 32, 32, 3), np.uint8)
    b = S.BlendBatches(x, [0, 0, 1], S.MapTargets([None, None, None], [None] * 3), S.SelfBlendConfig(map_size=4),
                       8, augment=True)
    assert b.n_pseudo == 0 and len(b[0][0]) == 3


def test_batches_are_seeded_per_epoch():
    a, b = batches(augment=True, seed=1), batches(augment=True, seed=1)
    np.testing.assert_array_equal(a[0][0], b[0][0])
    first = a[0][0]
    a.on_epoch_end()
    assert not np.array_equal(first, a[0][0])


def test_masked_map_loss_ignores_unsupervised_images():
    import keras

    pred = np.full((2, 4, 4, 1), 0.9, np.float32)
    y = np.zeros((2, 4, 4, 2), np.float32)
    y[0, ..., 1] = 1.0  # first image supervised (target 0), second not
    loss = np.asarray(keras.ops.convert_to_numpy(S.masked_map_loss(y, pred)))
    assert loss[0] == pytest.approx(-np.log(0.1), rel=1e-4) and loss[1] == 0.0


def test_train_v2_writes_a_two_output_model(tmp_path, monkeypatch):
    data = make_dataset_dir(tmp_path / "data", n_per_class=6, size=32)
    monkeypatch.setattr(S, "cached_landmarks", lambda paths, progress=None: [LM32] * len(paths))
    out = tmp_path / "out"
    rc = train_cli.main(["--arch", "v2", "--data", str(data), "--out", str(out), "--image-size", "32", "--epochs", "1",
                         "--quiet", "--name", "v2_tiny", "--pseudo-ratio", "0.5", "--workers", "1"])
    assert rc == 0
    meta = json.loads((out / "v2_tiny.json").read_text())
    sb = meta["train_config"]["self_blend"]
    assert sb["pseudo_fakes_per_epoch"] == 3 and sb["supervision"] == "all" and sb["map_size"] == 4
    assert "val_p_fake_auc" in meta["history"] and "mask_loss" in meta["history"]
    assert meta["train_config"]["command"].startswith("python -m models.train --arch v2")
    assert meta["crop_recipe"] == {"size": 32, "jpeg_quality": 90}  # served crops are made like the data
    import keras

    model = keras.saving.load_model(out / "v2_tiny.keras", compile=False, safe_mode=True)
    assert list(model.output_names) == ["p_fake", "mask"]
    assert model.outputs[1].shape[1:] == (4, 4, 1)
    assert meta["metrics"]["test"]["overall"]["n"] == 12


def test_v2_options_are_refused_for_other_architectures(tmp_path, capsys):
    data = make_dataset_dir(tmp_path / "data", n_per_class=2, size=32)
    rc = train_cli.main(["--arch", "v1", "--data", str(data), "--out", str(tmp_path), "--map-weight", "2"])
    assert rc == 2 and "--map-weight apply to --arch v2 only" in capsys.readouterr().err

"""The detector-side API for two-output models (p_fake + a manipulation-map head), the "unsure" band and the
crop recipe: tiny synthetic models built here, no shared data."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from conftest import build_oracle_model, build_quadrant_model, quadrant_image, save_model, synthetic_face
from PIL import Image

from models.analysis.calibration import fit_unsure
from models.detectors.base import (
    DEFAULT_UNSURE,
    N_VIEWS,
    KerasDetector,
    NoManipulationMapError,
    output_index,
    select_output,
    view_batch,
)
from models.detectors.registry import load_model


def build_two_output(size: int = 32, m: int = 16):
    """The quadrant model (conftest) plus a mask head: ``p_fake`` (N, 1) first, ``mask`` (N, m, m, 1) second.

    The mask is sigmoid(8 * (brightness - 0.6)) pooled to m x m: bright pixels read as "manipulated"."""
    import keras

    base = build_quadrant_model(size)
    inp = base.input
    bright = base.get_layer("bright").output
    pooled = keras.layers.AveragePooling2D(size // m, name="pool_mask")(inp)
    mask_conv = keras.layers.Conv2D(1, 1, activation="sigmoid", name="mask")
    mask = mask_conv(pooled)
    model = keras.Model(inp, [base.output, mask], name="two_head")
    mask_conv.set_weights([np.full((1, 1, 3, 1), 8 / 3, np.float32), np.array([-4.8], np.float32)])
    assert bright is not None
    return model


@pytest.fixture(scope="module")
def two_path(tmp_path_factory):
    return save_model(build_two_output(32), tmp_path_factory.mktemp("two"), "two", 32)


@pytest.fixture(scope="module")
def two(two_path):
    return load_model(two_path, cache=False)


# --- 1. two outputs: everything reads p_fake --------------------------------------------------------------

def test_output_index_and_select_output():
    model = build_two_output(32)
    assert output_index(model, "p_fake") == 0 and output_index(model, "mask") == 1
    assert output_index(model, "nothing") is None
    assert output_index(build_oracle_model(32), "p_fake") is None  # Sequential: one output
    assert select_output(["p", "m"], model, "mask") == "m" and select_output(["p", "m"], model) == "p"
    assert select_output({"mask": "m", "p_fake": "p"}, model) == "p" and select_output("t", model) == "t"
    with pytest.raises(ValueError, match="no 'mask' output"):
        select_output("t", build_oracle_model(32), "mask")


def test_two_output_predict_is_its_p_fake_output(two):
    images = [quadrant_image(64, "top_left"), quadrant_image(64, "bottom_right")]
    p_out, mask_out = two.keras_model(two.preprocess(images))
    np.testing.assert_allclose(two.predict_raw(images), np.asarray(p_out).ravel(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(two.predict(images), np.asarray(p_out).ravel(), rtol=1e-5, atol=1e-6)
    assert np.asarray(mask_out).shape == (2, 16, 16, 1)
    assert two.predict(images)[0] > 0.9 > 0.2 > two.predict(images)[1]


def test_gradcam_and_activations_on_a_two_output_model_explain_p_fake(two, quadrant_detector):
    from explain import activations, gradcam

    image = quadrant_image(64)
    assert gradcam.default_layer(two) == "bright"  # the mask head's own conv ("mask") does not feed P(fake)
    e2, e1 = gradcam.explain(two, image), gradcam.explain(quadrant_detector, image)
    assert e2.p_fake == pytest.approx(float(two.predict([image])[0]), abs=1e-5)
    np.testing.assert_allclose(e2.attribution, e1.attribution, atol=1e-5)  # same p_fake path: same map
    assert e2.attribution[:32, :32].mean() > 0.5 and e2.attribution[32:, 32:].max() == 0
    a = activations.explain(two, image)
    assert a.p_fake == pytest.approx(e2.p_fake, abs=1e-5)


def test_cost_counts_a_two_output_model():
    from models.analysis.cost import model_macs

    assert model_macs(build_two_output(32)) > model_macs(build_quadrant_model(32)) > 0


# --- 2. the manipulation map ------------------------------------------------------------------------------

def test_manipulation_map_shape_range_and_resize(two):
    assert two.supports_manipulation_map
    images = [quadrant_image(64, "top_left"), quadrant_image(64, "bottom_right")]
    maps = two.manipulation_map(images)
    assert maps.shape == (2, 64, 64) and maps.dtype == np.float32
    assert 0.0 <= maps.min() and maps.max() <= 1.0
    assert maps[0, 8:24, 8:24].mean() > 0.8 and maps[0, 40:56, 40:56].mean() < 0.5  # the bright patch
    assert maps[1, 40:56, 40:56].mean() > 0.8
    assert two.manipulation_map([np.zeros((40, 24, 3), np.uint8)]).shape == (1, 40, 24)
    with pytest.raises(ValueError, match="one size"):
        two.manipulation_map([np.zeros((40, 24, 3), np.uint8), np.zeros((32, 32, 3), np.uint8)])


def test_no_map_head_no_manipulation_map(oracle_model_path, tiny_data, tmp_path):
    from models.train import main as train_main

    oracle = load_model(oracle_model_path)
    assert not oracle.supports_manipulation_map
    with pytest.raises(NoManipulationMapError, match="does not apply to oracle"):
        oracle.manipulation_map([np.zeros((32, 32, 3), np.uint8)])
    train_main(["--arch", "spectrum", "--data", str(tiny_data), "--out", str(tmp_path), "--quiet"])
    spectrum = load_model(tmp_path / "spectrum.npz", cache=False)
    assert spectrum.supports_manipulation_map is False
    with pytest.raises(ValueError, match="no map head"):
        spectrum.manipulation_map([np.zeros((32, 32, 3), np.uint8)])


def test_manipulation_explainer_and_pipeline(two, quadrant_detector):
    from explain import manipulation, pipeline, render

    image = quadrant_image(64)
    e = manipulation.explain(two, image, target="fake")
    assert e.method == "manipulation" and e.attribution.shape == (64, 64) and e.target == "fake"
    np.testing.assert_allclose(e.attribution, two.manipulation_map([image])[0])
    r = manipulation.explain(two, image, target="real")
    np.testing.assert_allclose(r.attribution, -e.attribution)  # positive = evidence for the target
    render.png(render.manipulation_overlay(e, image))
    with pytest.raises(ValueError, match="does not apply to quadrant"):
        manipulation.explain(quadrant_detector, image)
    fast = pipeline.Params(num_samples=50, n_segments=20, deletion=False)
    b = pipeline.run(two, image, methods=("manipulation",), params=fast)
    assert list(b.explanations) == ["manipulation"]
    b = pipeline.run(quadrant_detector, image, methods=("manipulation", "gradcam"), params=fast)
    assert b.not_applicable == ["manipulation"] and list(b.explanations) == ["gradcam"]
    assert pipeline.applies(two, "manipulation") and not pipeline.applies(quadrant_detector, "manipulation")


# --- 4. unsure ---------------------------------------------------------------------------------------------

def test_view_batch():
    x = np.arange(2 * 6 * 5 * 1, dtype=np.float32).reshape(2, 6, 5, 1)
    v = view_batch(x, shift=2)
    assert v.shape == (N_VIEWS * 2, 6, 5, 1)
    np.testing.assert_array_equal(v[:2], x)
    np.testing.assert_array_equal(v[2:4], x[:, :, ::-1])
    np.testing.assert_array_equal(v[4:6][:, :, 2:], x[:, :, :3])  # shifted right by 2
    np.testing.assert_array_equal(v[6:8][:, :, :3], x[:, :, 2:])  # shifted left by 2
    assert view_batch(x, include_original=False).shape == ((N_VIEWS - 1) * 2, 6, 5, 1)


def test_views_spread(quadrant_detector):
    grey = np.full((64, 64, 3), 102, np.uint8)
    assert quadrant_detector.views_spread([grey])[0] == pytest.approx(0.0, abs=1e-6)
    half = quadrant_image(64)  # the flip moves the patch out of the quadrant the model reads
    s = quadrant_detector.views_spread([half, grey])
    p = quadrant_detector.predict([half, grey])
    assert s.shape == (2,) and s[0] > 0.5 and s[1] < 1e-6
    np.testing.assert_allclose(quadrant_detector.views_spread([half, grey], p_fake=p), s, atol=1e-6)


@pytest.mark.parametrize("p, spread, expected", [
    (0.9, 0.30, True),   # spread > delta
    (0.52, 0.01, True),  # near the threshold
    (0.51, 0.50, True),  # both
    (0.9, 0.01, False),  # neither
    (0.1, 0.2, False),   # spread == delta: not over it
])
def test_unsure_band(quadrant_detector, p, spread, expected):
    d = KerasDetector(quadrant_detector.keras_model, "q", {"input_size": 32,
                                                           "unsure": {"delta": 0.2, "epsilon": 0.05}})
    assert bool(d.unsure(p, spread)) is expected
    assert d.unsure(np.array([p, 0.9]), np.array([spread, 0.0])).tolist() == [expected, False]


def test_unsure_defaults_and_threshold(quadrant_detector):
    assert quadrant_detector.unsure_settings == DEFAULT_UNSURE == {"delta": 0.1, "epsilon": 0.05}
    d = KerasDetector(quadrant_detector.keras_model, "q", {"input_size": 32, "operating_point": {"threshold": 0.8}})
    assert bool(d.unsure(0.77, 0.0)) and not bool(d.unsure(0.52, 0.0))  # epsilon around *its* threshold


def test_fit_unsure_on_synthetic_scores():
    rng = np.random.default_rng(0)
    n = 1000
    y = rng.integers(0, 2, n)
    p = np.where(y == 1, rng.uniform(0.4, 1.0, n), rng.uniform(0.0, 0.6, n))
    wrong = (p >= 0.5).astype(int) != y
    spread = np.where(wrong & (rng.random(n) < 0.5), 0.4, 0.02)  # half the errors are unstable across views
    fit = fit_unsure(y, p, spread, 0.5, max_flagged=0.10)
    flagged = (spread > fit["delta"]) | (np.abs(p - 0.5) < fit["epsilon"])
    assert flagged.mean() <= 0.10 and fit["flagged"] == pytest.approx(flagged.mean())
    assert fit["errors"] == wrong.sum() and fit["errors_caught"] == pytest.approx((flagged & wrong).sum() / wrong.sum())
    assert 0.02 <= fit["delta"] < 0.4  # the spread catches the unstable errors
    assert fit["errors_caught"] > 0.4
    none = fit_unsure(y, p, spread, 0.5, max_flagged=0.0)
    assert none["flagged"] == 0.0 and none["errors_caught"] == 0.0
    with pytest.raises(ValueError, match="spread"):
        fit_unsure(y, p, spread[:-1], 0.5)


def test_bad_unsure_and_recipe_blocks_fail_to_load(oracle_model_path, tmp_path):
    from models.detectors.registry import ModelNotFoundError

    path = save_model(build_oracle_model(32), tmp_path, "m")
    for block in ({"unsure": {"delta": "x"}}, {"unsure": [1]}, {"crop_recipe": {"size": 128, "jpeg_quality": 300}}):
        path.with_suffix(".json").write_text(json.dumps({"input_size": 32, **block}))
        with pytest.raises(ModelNotFoundError, match="bad metadata"):
            load_model(path, cache=False)


# --- predict: JSON and CSV columns -------------------------------------------------------------------------

def test_score_items_rows_and_csv_carry_unsure_and_spread(oracle_model_path, tmp_path):
    from models.scoring.batch import score_items, write_csv
    from models.scoring.stream import score_sources

    paths = []
    for i, fake in enumerate((True, False)):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(synthetic_face(np.random.default_rng(i), fake)).save(paths[-1])
    det = load_model(oracle_model_path)
    scores = list(score_sources(det, [str(p) for p in paths], crop="none"))
    d = scores[0].to_dict()
    assert list(d)[:6] == ["path", "verdict", "p_fake", "threshold", "unsure", "spread"]
    expected = det.views_spread([np.asarray(Image.open(paths[0]))])[0]
    assert d["spread"] == pytest.approx(float(expected), abs=1e-5) and d["unsure"] is bool(det.unsure(d["p_fake"],
                                                                                                 d["spread"]))
    out = io.StringIO()
    write_csv(score_items(det, [str(p) for p in paths], crop="none"), out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert out.getvalue().splitlines()[0].endswith(",model,error,unsure,spread,provenance")
    images = [np.asarray(Image.open(p)) for p in paths]
    p_fake = det.predict(images)
    spread = det.views_spread(images)
    np.testing.assert_allclose([float(r["spread"]) for r in rows], spread, atol=1e-5)
    # the oracle reads the top-left quadrant: the flip moves a fake's bright patch away (unsure), a real stays
    assert [r["unsure"] for r in rows] == ["true" if u else "false" for u in det.unsure(p_fake, spread)]
    assert [r["unsure"] for r in rows] == ["true", "false"]


def test_score_faces_carry_unsure_and_spread(oracle_model_path, tmp_path, monkeypatch):
    from models.data import faces as F
    from models.scoring.stream import score_sources

    path = tmp_path / "photo.png"
    Image.fromarray(synthetic_face(np.random.default_rng(1), True, 96)).save(path)
    face = F.Face((10, 10, 30, 30), 0.99, (5, 5, 40, 40), 3.2)
    monkeypatch.setattr(F, "detect_faces", lambda *a, **k: [face])
    monkeypatch.setattr("models.scoring.stream.face_crops",
                        lambda img, mode, size, **k: ([(face, F.crop(img, (5, 5, 40), size))], "face", []))
    score = next(score_sources(load_model(oracle_model_path), [str(path)]))
    assert set(score.faces[0]) == {"box", "confidence", "p_fake", "unsure", "spread"}
    assert score.faces[0]["spread"] == score.spread and score.faces[0]["unsure"] == score.unsure


# --- 3. the crop recipe ------------------------------------------------------------------------------------

def _blockiness(img: np.ndarray) -> float:
    """Mean |step| across the 8 px JPEG block edges over the mean |step| anywhere (1: no block grid)."""
    g = img.astype(float).mean(-1)
    dx, dy = np.abs(np.diff(g, axis=1)), np.abs(np.diff(g, axis=0))
    return float((dx[:, 7::8].mean() / dx.mean() + dy[7::8].mean() / dy.mean()) / 2)


def test_crop_recipe_makes_png_and_jpeg_photos_data_like(monkeypatch):
    from skimage import data

    from models.data import faces as F
    from models.data.intake import load_image
    from models.scoring import stream
    from models.scoring.recipe import finish_crop

    photo = data.astronaut()
    encoded = {}
    for fmt, kwargs in (("PNG", {}), ("JPEG", {"quality": 95})):
        buf = io.BytesIO()
        Image.fromarray(photo).save(buf, format=fmt, **kwargs)
        encoded[fmt] = load_image(buf.getvalue())
    face = F.Face((180, 60, 120, 150), 0.99, (150, 40, 200, 200), 0.64)  # the same box in both (no mtcnn)
    monkeypatch.setattr(F, "detect_faces", lambda *a, **k: [face])
    recipe = {"size": 128, "jpeg_quality": 90}
    plain = {k: stream.analyse(v, "auto")[0][0][1] for k, v in encoded.items()}
    made = {k: stream.analyse(v, "auto", recipe=recipe)[0][0][1] for k, v in encoded.items()}
    assert all(c.shape == (128, 128, 3) for c in (*plain.values(), *made.values()))
    # the PNG's input is exactly the data's recipe (crop, Lanczos 128, JPEG q90) applied to the photo
    data_crop = finish_crop(F.crop(photo, (150, 40, 200), 128), recipe)
    np.testing.assert_array_equal(made["PNG"], data_crop)
    diff = np.abs(made["PNG"].astype(float) - made["JPEG"]).mean()
    assert diff < 3.0  # nearly the same model input
    # both now carry the data's JPEG block grid (without the recipe neither does), equally
    b_plain = [_blockiness(c) for c in plain.values()]
    b_made = [_blockiness(c) for c in made.values()]
    assert min(m - p for m, p in zip(b_made, b_plain)) > 0.02 and abs(b_made[0] - b_made[1]) < 0.01
    # "none" always takes its input as is
    same = stream.analyse(encoded["PNG"], "none", recipe=recipe)[0][0][1]
    np.testing.assert_array_equal(same, encoded["PNG"])


def test_detector_crop_recipe_property(quadrant_detector):
    assert quadrant_detector.crop_recipe is None
    d = KerasDetector(quadrant_detector.keras_model, "q", {"input_size": 32,
                                                           "crop_recipe": {"size": 128, "jpeg_quality": 90}})
    assert d.crop_recipe == {"size": 128, "jpeg_quality": 90}

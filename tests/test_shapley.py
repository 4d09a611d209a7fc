"""explain.shapley: exact region Shapley values on known-answer detectors (no mtcnn: fixed landmarks)."""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np
import pytest

from explain import shapley
from explain.regions import REGIONS, Landmarks, region_map
from models.detectors.base import Detector

SIZE = 64
LANDMARKS = Landmarks(box=(10.0, 8.0, 44.0, 50.0), left_eye=(22.0, 26.0), right_eye=(42.0, 26.0), nose=(32.0, 36.0),
                      mouth_left=(24.0, 46.0), mouth_right=(40.0, 46.0))
RMAP = region_map((SIZE, SIZE), LANDMARKS)


class RegionReader(Detector):
    """P(fake) from the brightness of chosen regions only (weights per region), at the image's own size."""

    supports_gradcam = False
    supports_activations = False

    def __init__(self, weights: dict[str, float], bias: float = 0.0):
        self.name, self.input_size, self.metadata = "region_reader", SIZE, {}
        self.weights, self.bias = weights, bias
        self.calls = []

    def predict_raw(self, images, batch_size=256):
        x = self.preprocess(images)  # N x SIZE x SIZE x 3 in [0, 1]
        self.calls.append(len(x))
        z = np.full(len(x), self.bias, dtype=np.float64)
        for region, w in self.weights.items():
            mask = RMAP == REGIONS.index(region)
            z += w * x[:, mask].mean(axis=(1, 2))
        return (1 / (1 + np.exp(-z))).astype(np.float32)


def textured(seed: int = 0) -> np.ndarray:
    """A face-sized image with fine texture, so blurring changes every region."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


def brute_force(v: dict[frozenset, float], n: int) -> np.ndarray:
    players = range(n)
    phi = np.zeros(n)
    for i in players:
        others = [j for j in players if j != i]
        for k in range(n):
            for s in combinations(others, k):
                w = factorial(k) * factorial(n - k - 1) / factorial(n)
                phi[i] += w * (v[frozenset(s) | {i}] - v[frozenset(s)])
    return phi


def test_shapley_values_match_the_definition():
    rng = np.random.default_rng(3)
    n = 4
    table = rng.random(2 ** n)
    v = {frozenset(j for j in range(n) if i >> j & 1): table[i] for i in range(2 ** n)}
    np.testing.assert_allclose(shapley.shapley_values(table, n), brute_force(v, n), atol=1e-12)


@pytest.mark.parametrize("fill", shapley.FILLS)
def test_efficiency_values_add_up_to_score_minus_base(fill):
    det = RegionReader({"mouth": 6.0, "nose": -3.0, "outside_face": 2.0}, bias=-2.0)
    e = shapley.explain(det, textured(), target="fake", fill=fill, landmarks=LANDMARKS)
    total = sum(e.extras["values"].values())
    assert total == pytest.approx(e.extras["full"] - e.extras["base"], abs=1e-5)
    assert e.extras["full"] == pytest.approx(float(det.predict([textured()])[0]), abs=1e-5)
    assert det.calls[0] == 64  # one batch of every coalition


def test_a_model_that_reads_one_region_gives_it_all_the_value():
    det = RegionReader({"mouth": 8.0}, bias=-4.0)
    e = shapley.explain(det, textured(), target="fake", landmarks=LANDMARKS)
    values = e.extras["values"]
    assert abs(values["mouth"]) > 0.01
    assert values["mouth"] == pytest.approx(e.extras["full"] - e.extras["base"], abs=1e-6)
    for region in REGIONS:
        if region != "mouth":
            assert values[region] == pytest.approx(0.0, abs=1e-6)
    # painted on the region's pixels
    mouth = RMAP == REGIONS.index("mouth")
    assert np.allclose(e.attribution[mouth], values["mouth"]) and np.allclose(e.attribution[~mouth], 0.0)


def test_symmetric_regions_get_equal_values():
    det = RegionReader({"left_eye": 5.0, "right_eye": 5.0}, bias=-3.0)
    image = textured()
    # make both eyes' fills change brightness by the same amount: constant-colour eyes vs. a mean fill
    image[RMAP == REGIONS.index("left_eye")] = 220
    image[RMAP == REGIONS.index("right_eye")] = 220
    e = shapley.explain(det, image, target="fake", fill="hide", hide_color=0, landmarks=LANDMARKS)
    v = e.extras["values"]
    assert v["left_eye"] == pytest.approx(v["right_eye"], abs=1e-6) and v["left_eye"] > 0.01


def test_target_real_flips_every_sign():
    det = RegionReader({"mouth": 6.0, "nose": -4.0}, bias=-1.0)
    fake = shapley.explain(det, textured(1), target="fake", landmarks=LANDMARKS)
    real = shapley.explain(det, textured(1), target="real", landmarks=LANDMARKS)
    assert real.target == "real" and fake.target == "fake"
    for r in REGIONS:
        assert real.extras["values"][r] == pytest.approx(-fake.extras["values"][r], abs=1e-6)
    assert real.extras["base"] == pytest.approx(1 - fake.extras["base"], abs=1e-6)


def test_no_face_says_shapley_does_not_apply(monkeypatch):
    monkeypatch.setattr(shapley, "detect_landmarks", lambda image: None)
    with pytest.raises(shapley.NoFaceError, match="do not apply"):
        shapley.explain(RegionReader({"mouth": 1.0}), textured())


def test_bad_fill_is_one_line():
    with pytest.raises(ValueError, match="fill must be one of"):
        shapley.explain(RegionReader({"mouth": 1.0}), textured(), fill="noise", landmarks=LANDMARKS)


def test_fills_blur_keeps_shape_mean_is_flat():
    image = textured()
    blur = shapley.fill_image(image, "blur")
    assert blur.shape == image.shape and blur.std() < image.astype(np.float32).std()
    mean = shapley.fill_image(image, "mean")
    assert np.allclose(mean, image.reshape(-1, 3).mean(axis=0))
    per_region = shapley.fill_image(image, "hide", hide_color=None, rmap=RMAP)
    mouth = RMAP == REGIONS.index("mouth")
    assert np.allclose(per_region[mouth], image[mouth].mean(axis=0), atol=1e-3)


def test_ranking_orders_by_value():
    assert shapley.ranking({"nose": 0.1, "mouth": 0.3, "left_eye": -0.2}) == ["mouth", "nose", "left_eye"]

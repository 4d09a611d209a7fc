"""Deletion curves on the quadrant detector, whose evidence is known to sit in the top-left quadrant."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explain import lime as lime_explain
from explain.base import Explanation
from explain.metrics.faithfulness import DeletionCurve, deletion_curve
from tests.conftest import quadrant_image


def curve(*args, **kwargs) -> DeletionCurve:
    """deletion_curve with black fill unless told: the quadrant image is flat, so the default fill (each
    superpixel's mean colour) would leave it unchanged."""
    kwargs.setdefault("hide_color", 0)
    return deletion_curve(*args, **kwargs)


def test_default_fill_is_the_superpixel_mean(quadrant_detector, lime_exp):
    """The default (the stable preset's fill) removes texture, not flat colour: on a flat image little changes
    (superpixels straddling the quadrant's edge blend a little)."""
    flat = quadrant_image(64, "top_left")
    c = deletion_curve(quadrant_detector, flat, lime_exp)
    assert c.params["hide_color"] is None and np.ptp(c.explanation_curve) < 0.05  # black fill: 0.99 -> 0.12


@pytest.fixture(scope="module")
def image():
    return quadrant_image(64, "top_left")


@pytest.fixture(scope="module")
def lime_exp(quadrant_detector, image):
    # black fill: the quadrant image is flat, so a superpixel's mean colour (the default fill) would change nothing
    return lime_explain.explain(quadrant_detector, image, num_samples=250, hide_color=0)


@pytest.fixture(scope="module")
def lime_curve(quadrant_detector, image, lime_exp):
    return curve(quadrant_detector, image, lime_exp, hide_color=0)


def hand_explanation(image, p_fake, rows, cols, target="fake") -> Explanation:
    attribution = np.zeros(image.shape[:2], np.float32)
    attribution[rows, cols] = 1.0
    return Explanation(method="hand", target=target, p_fake=p_fake, attribution=attribution)


def check_shapes(curve: DeletionCurve, k: int, n_random: int = 5):
    assert curve.fractions.shape == (k + 1,)
    assert curve.fractions[0] == 0.0 and curve.fractions[-1] == 1.0
    assert np.all(np.diff(curve.fractions) > 0)
    assert curve.explanation_curve.shape == (k + 1,)
    assert curve.random_curves.shape == (n_random, k + 1)
    assert curve.random_mean.shape == curve.random_std.shape == (k + 1,)
    assert sorted(curve.order.tolist()) == list(range(k))


def test_lime_explanation_beats_random(lime_curve, lime_exp):
    c = lime_curve
    k = lime_exp.extras["n_segments_actual"]
    check_shapes(c, k)
    assert c.method == "lime" and c.target == "fake"
    assert c.auc_explanation < c.auc_random - 0.1
    assert c.useful
    # the most important superpixel goes first
    assert c.order[0] == lime_exp.extras["top_positive"][0]
    assert c.params["segments"] == "explanation"


def test_curves_start_at_unperturbed_probability(lime_curve, lime_exp, quadrant_detector, image):
    c = lime_curve
    assert c.explanation_curve[0] == pytest.approx(lime_exp.p_target, abs=1e-5)
    assert np.allclose(c.random_curves[:, 0], c.explanation_curve[0])
    # everything hidden (black) -> the model's grey-image answer, the same for every order
    all_hidden = quadrant_detector.predict(np.zeros((1, *image.shape), np.uint8))[0]
    assert np.allclose(c.random_curves[:, -1], all_hidden, atol=1e-5)
    assert c.explanation_curve[-1] == pytest.approx(all_hidden, abs=1e-5)
    assert c.auc_explanation == pytest.approx(np.trapezoid(c.explanation_curve, c.fractions))
    assert c.auc_random == pytest.approx(np.trapezoid(c.random_curves, c.fractions, axis=1).mean())


def test_curve_points_are_the_deleted_images(quadrant_detector, image, lime_exp, lime_curve):
    """Recompute two points by hand: the first k segments of the order filled with hide_color."""
    seg = lime_exp.segments
    for k in (1, 7):
        img = image.copy()
        img[np.isin(seg, lime_curve.order[:k])] = 0
        assert lime_curve.explanation_curve[k] == pytest.approx(quadrant_detector.predict([img])[0], abs=1e-5)


def test_segments_none_uses_slic(quadrant_detector, image, lime_exp):
    exp = hand_explanation(image, lime_exp.p_fake, slice(0, 32), slice(0, 32))
    c = curve(quadrant_detector, image, exp, n_random=6, n_segments=50)
    k = int(lime_explain.segment(image, 50).max()) + 1
    check_shapes(c, k, n_random=6)
    assert c.params["segments"] == "slic" and c.params["n_segments_actual"] == k
    assert c.method == "hand"
    assert c.useful and c.auc_explanation < c.auc_random - 0.1


def test_wrong_explanation_is_not_useful(quadrant_detector, image, lime_exp):
    exp = hand_explanation(image, lime_exp.p_fake, slice(32, 64), slice(32, 64))
    for seed in (0, 1):
        c = curve(quadrant_detector, image, exp, seed=seed)
        assert c.auc_explanation >= c.auc_random - 0.02
        assert not c.useful


def test_target_real_tracks_one_minus_p(quadrant_detector, image, lime_exp):
    exp = hand_explanation(image, lime_exp.p_fake, slice(0, 32), slice(0, 32), target="real")
    c = curve(quadrant_detector, image, exp)
    assert c.target == "real"
    assert c.explanation_curve[0] == pytest.approx(1 - lime_exp.p_fake, abs=1e-5)
    # removing the fake evidence first raises P(real) fastest: a larger area than random
    assert c.auc_explanation > c.auc_random


def test_hide_color_rgb_triple(quadrant_detector, image, lime_exp):
    c = curve(quadrant_detector, image, lime_exp, hide_color=(0, 0, 255))
    blue = np.zeros_like(image)
    blue[..., 2] = 255
    assert c.explanation_curve[-1] == pytest.approx(quadrant_detector.predict([blue])[0], abs=1e-5)
    assert c.useful
    assert c.params["hide_color"] == [0, 0, 255]
    # white fill keeps the top-left bright: deleting changes nothing, so nothing is useful
    white = curve(quadrant_detector, image, lime_exp, hide_color=255)
    assert np.ptp(white.explanation_curve) < 0.05


def test_seeded_random_orders(quadrant_detector, image, lime_exp, lime_curve):
    again = curve(quadrant_detector, image, lime_exp, seed=0)
    np.testing.assert_array_equal(again.random_curves, lime_curve.random_curves)
    other = curve(quadrant_detector, image, lime_exp, seed=1)
    assert not np.allclose(other.random_curves, lime_curve.random_curves)


def test_to_dict_is_json(lime_curve):
    d = json.loads(json.dumps(lime_curve.to_dict()))
    assert d["useful"] is True and d["method"] == "lime" and d["target"] == "fake"
    assert len(d["fractions"]) == len(d["explanation_curve"]) == len(d["order"]) + 1
    assert np.array(d["random_curves"]).shape == lime_curve.random_curves.shape


def test_rejects_bad_arguments(quadrant_detector, image, lime_exp):
    with pytest.raises(ValueError):
        curve(quadrant_detector, image, lime_exp, n_random=2)
    small = hand_explanation(quadrant_image(32), lime_exp.p_fake, slice(0, 16), slice(0, 16))
    with pytest.raises(ValueError):
        curve(quadrant_detector, image, small)

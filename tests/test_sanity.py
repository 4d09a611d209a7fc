"""The model-randomisation sanity check (explain.metrics.sanity): randomised copies, rank correlation, the
check itself on a tiny model with a known answer, and the stored result the pages read."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import build_quadrant_model, quadrant_image, save_model


@pytest.fixture
def detector():
    from models.detectors.base import KerasDetector

    meta = {"input_size": 32, "calibration": {"method": "platt", "a": 2.0, "b": -0.5},
            "operating_point": {"threshold": 0.4}}
    return KerasDetector(build_quadrant_model(32), name="quadrant", metadata=meta)


def two_output_model(size: int = 32):
    """A tiny model with the detector_v2 outputs: ``p_fake`` (N, 1) first and a 4x4 ``mask``."""
    import keras

    inp = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(4, 3, strides=4, padding="same", activation="relu", name="c2")(x)
    mask = keras.layers.Conv2D(1, 1, activation="sigmoid", name="mask")(x)
    p = keras.layers.Dense(1, activation="sigmoid", name="p_fake")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inp, [p, mask], name="two_out")


def weights_of(detector):
    return [np.asarray(w) for w in detector.keras_model.get_weights()]


# --- randomized_copy -----------------------------------------------------------------------------------------

def test_randomized_copy_same_architecture_new_weights(detector):
    from explain.metrics.sanity import randomized_copy

    r = randomized_copy(detector, seed=0)
    trained, random = weights_of(detector), weights_of(r)
    assert [type(layer).__name__ for layer in r.keras_model.layers] == \
        [type(layer).__name__ for layer in detector.keras_model.layers]
    assert [layer.name for layer in r.keras_model.layers] == [layer.name for layer in detector.keras_model.layers]
    assert [w.shape for w in random] == [w.shape for w in trained]
    # every kernel is redrawn (the trained ones are 1/3 and 40; biases start at the layers' own zeros)
    assert not np.allclose(random[0], trained[0]) and not np.allclose(random[2], trained[2])
    assert np.allclose(random[1], 0) and np.allclose(random[3], 0)
    # the trained model is untouched, the metadata (calibration, operating point) kept
    assert np.allclose(weights_of(detector)[0], 1 / 3)
    assert r.calibration == detector.calibration and r.threshold == pytest.approx(0.4)
    assert r.metadata["randomized"] == {"seed": 0, "layers": "all"}
    assert r.predict([quadrant_image(64)]).shape == (1,)


def test_randomized_copy_is_reproducible_per_seed(detector):
    from explain.metrics.sanity import randomized_copy

    a, b, c = (weights_of(randomized_copy(detector, seed=s)) for s in (3, 3, 4))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_randomized_copy_keeps_both_outputs():
    from explain.metrics.sanity import randomized_copy
    from models.detectors.base import KerasDetector

    det = KerasDetector(two_output_model(), name="two", metadata={"input_size": 32})
    r = randomized_copy(det, seed=1)
    assert list(r.keras_model.output_names) == ["p_fake", "mask"]
    assert r.supports_manipulation_map
    image = quadrant_image(64)
    assert r.manipulation_map([image]).shape == (1, 64, 64)
    assert not np.allclose(r.manipulation_map([image]), det.manipulation_map([image]))


def test_partial_randomisation_keeps_the_other_layers(detector):
    from explain.metrics.sanity import cascade_layers, randomized_copy

    assert cascade_layers(detector) == ["p_fake", "bright"]  # from the output down
    r = randomized_copy(detector, seed=0, layers=["p_fake"])
    trained, random = weights_of(detector), weights_of(r)
    assert np.array_equal(random[0], trained[0]) and np.array_equal(random[1], trained[1])  # conv "bright" kept
    assert not np.allclose(random[2], trained[2])  # dense redrawn
    with pytest.raises(ValueError, match="no layer"):
        randomized_copy(detector, layers=["nope"])


def test_randomized_copy_of_nested_models():
    import keras

    from explain.metrics.sanity import randomized_copy, weighted_layers
    from models.detectors.base import KerasDetector

    member = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3, name="inner_conv"),
                               keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1, activation="sigmoid",
                                                                                         name="inner_dense")],
                              name="member")
    inp = keras.Input((32, 32, 3))
    det = KerasDetector(keras.Model(inp, member(inp)), name="nested", metadata={"input_size": 32})
    assert [p for p, _ in weighted_layers(det.keras_model)] == ["member/inner_conv", "member/inner_dense"]
    full = randomized_copy(det, seed=0)
    assert not any(np.allclose(a, b) for a, b in zip(weights_of(full)[::2], weights_of(det)[::2]))  # kernels
    top = randomized_copy(det, seed=0, layers=["member/inner_dense"])
    assert np.array_equal(weights_of(top)[0], weights_of(det)[0])
    assert np.array_equal(weights_of(top)[2], weights_of(full)[2])  # the same seeded draw as the full copy


def test_randomized_copy_needs_a_network():
    from explain.metrics.sanity import randomized_copy

    class NotANetwork:
        name = "spectrum"
        keras_model = None

    with pytest.raises(ValueError, match="no neural network"):
        randomized_copy(NotANetwork())


# --- rank_correlation ----------------------------------------------------------------------------------------

def test_rank_correlation_known_values():
    from explain.metrics.sanity import rank_correlation

    a = np.arange(16, dtype=float).reshape(4, 4) + 1
    assert rank_correlation(a, a) == pytest.approx(1.0)
    assert rank_correlation(a, a[::-1, ::-1]) == pytest.approx(-1.0)  # reversed ranks
    assert rank_correlation(a, a ** 3) == pytest.approx(1.0)  # ranks only: any increasing map
    # absolute values: a sign flip is the same map; signed it is the opposite
    assert rank_correlation(a, -a) == pytest.approx(1.0)
    assert rank_correlation(a, -a, absolute=False) == pytest.approx(-1.0)
    assert rank_correlation(a, np.zeros_like(a)) == 0.0  # a constant map has no ranking
    rng = np.random.default_rng(0)
    assert abs(rank_correlation(rng.random((64, 64)), rng.random((64, 64)))) < 0.05
    with pytest.raises(ValueError, match="shape"):
        rank_correlation(a, a[:2])


# --- check ---------------------------------------------------------------------------------------------------

def edges(_detector, image):
    """An "explainer" that never looks at the model: the image's gradient magnitude."""
    gray = image.astype(float).mean(axis=-1)
    gy, gx = np.gradient(gray)
    return np.hypot(gx, gy)


def images():
    return [quadrant_image(64, "top_left"), quadrant_image(64, "bottom_right")]


def test_check_fails_a_method_that_ignores_the_model_and_not_gradcam(detector):
    from explain.metrics import sanity

    rng = np.random.default_rng(0)
    result = sanity.check(detector, images(), ["gradcam", "edges", "noise"], landmarks=[None, None], split="synthetic",
                          custom={"edges": edges, "noise": lambda _d, im: rng.random(im.shape[:2])}, repeat=1)
    m = result["methods"]
    assert m["edges"]["n"] == 2 and m["edges"]["mean_rho"] == pytest.approx(1.0) and m["edges"]["passed"] is False
    assert m["noise"]["passed"] is True and abs(m["noise"]["mean_rho"]) < 0.1
    # Grad-CAM reads the model's weights: its map on the randomised copy is not the trained one's (with a single
    # 1x1 conv it is still close to a brightness map for either weights: rho about 0.76 for seed 0)
    assert m["gradcam"]["n"] == 2 and m["gradcam"]["mean_rho"] < 0.99
    assert m["gradcam"]["repeatability"] == pytest.approx(1.0) and m["gradcam"]["n_repeat"] == 1  # deterministic
    assert result["n_images"] == 2 and result["n_repeat"] == 1 and result["randomization"] == "full"
    assert result["split"] == "synthetic" and result["threshold"] == 0.5
    from explain.params import DEFAULTS

    assert result["target"] == "fake" and result["params"]["num_samples"] == DEFAULTS.num_samples and result["date"]


def test_check_skips_methods_that_do_not_apply(detector):
    from explain.metrics import sanity

    result = sanity.check(detector, images()[:1], ["manipulation", "shapley", "edges"], landmarks=[None],
                          custom={"edges": edges}, repeat=False)
    assert set(result["methods"]) == {"edges"} and result["n_repeat"] == 0
    assert "map head" in result["skipped"]["manipulation"]
    assert "landmarks" in result["skipped"]["shapley"]  # no face in any image
    assert result["methods"]["edges"]["repeatability"] is None


def test_maps_are_for_target_fake_on_both_models(detector):
    from explain.metrics import sanity
    from explain.params import DEFAULTS

    image = quadrant_image(64, "bottom_right")  # the trained model says real here
    assert detector.predict([image])[0] < detector.threshold
    fake = sanity.maps(detector, image, ["gradcam"], DEFAULTS)["gradcam"]
    from explain import gradcam

    assert np.allclose(fake, gradcam.explain(detector, image, target="fake").attribution)


# --- stored results ------------------------------------------------------------------------------------------

def test_save_and_failures(tmp_path, detector):
    from explain.metrics import sanity
    from models.detectors.registry import load_model

    path = save_model(build_quadrant_model(32), tmp_path, "quadrant", 32)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["explanation_checks"] = {"deletion": {"kept": True}}
    meta_path.write_text(json.dumps(meta))
    assert sanity.failures(load_model(path, cache=False)) == {}  # nothing stored yet

    rng = np.random.default_rng(0)
    result = sanity.check(detector, images()[:1], ["edges", "noise"], landmarks=[None], repeat=False,
                          custom={"edges": edges, "noise": lambda _d, im: rng.random(im.shape[:2])})
    sanity.save(path, result)
    stored = json.loads(meta_path.read_text())
    assert stored["name"] == "quadrant" and stored["input_size"] == 32  # other blocks untouched
    assert stored["explanation_checks"]["deletion"] == {"kept": True}  # other checks kept
    assert stored["explanation_checks"]["randomization"]["methods"]["edges"]["passed"] is False

    reasons = sanity.failures(load_model(path, cache=False))
    assert set(reasons) == {"edges"}  # noise passed
    line = reasons["edges"]
    assert "\n" not in line and "rho 1.00" in line and "shows the image, not the model" in line
    assert sanity.failures(stored) == reasons  # a metadata dict works too


def test_failures_without_or_with_malformed_checks():
    from explain.metrics.sanity import failures

    assert failures({}) == {}
    assert failures({"explanation_checks": None}) == {}
    assert failures({"explanation_checks": {"randomization": "bad"}}) == {}
    assert failures({"explanation_checks": {"randomization": {"methods": {"lime": {"passed": True,
                                                                                   "mean_rho": 0.1}}}}}) == {}
    got = failures({"explanation_checks": {"randomization": {"methods": {"lime": {"passed": False,
                                                                                  "mean_rho": 0.72}}}}})
    assert got == {"lime": "fails the randomisation sanity check: its map on a randomised copy of the model "
                           "correlates at rho 0.72 with the trained model's, so it shows the image, not the model"}


def test_save_merges_methods_and_failures_match_params(tmp_path, detector):
    from explain.metrics import sanity
    from explain.params import DEFAULTS

    path = save_model(build_quadrant_model(32), tmp_path, "quadrant", 32)
    first = sanity.check(detector, images()[:1], ["edges"], landmarks=[None], custom={"edges": edges}, repeat=False)
    sanity.save(path, first)
    other = DEFAULTS.with_lime({"num_samples": 123})
    second = sanity.check(detector, images()[:1], ["gradcam"], other, landmarks=[None], repeat=False)
    meta = sanity.save(path, second)
    block = meta["explanation_checks"]["randomization"]
    assert set(block["methods"]) == {"edges", "gradcam"}  # the later check of Grad-CAM kept the edges record
    assert block["methods"]["gradcam"]["params"] == {"layer": None}
    # a stored LIME failure counts only for the LIME settings it was measured with
    block["methods"]["lime"] = {"passed": False, "mean_rho": 0.8, "params": sanity.method_params("lime", other)}
    assert "lime" in sanity.failures(meta, params=other)
    assert "lime" not in sanity.failures(meta, params=DEFAULTS)
    assert "lime" in sanity.failures(meta)  # no params: every stored result
    assert "edges" in sanity.failures(meta, params=DEFAULTS)  # a custom method depends on no parameter

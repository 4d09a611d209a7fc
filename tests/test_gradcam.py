"""explain.gradcam: Grad-CAM on tf.GradientTape, nested models included, checked on a model with a known answer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import build_quadrant_model, quadrant_image

from explain import gradcam
from explain import layers as L
from models.detectors.base import KerasDetector


def detector_of(model, size):
    return KerasDetector(model, name=model.name, metadata={"input_size": size})


def nested_quadrant(kind="functional"):
    """The quadrant model used as a layer of an outer model, as a transfer-learning base would be."""
    import keras

    inner = build_quadrant_model(32)
    if kind == "sequential":
        return keras.Sequential([keras.Input((32, 32, 3)), inner, keras.layers.Activation("linear")], name="outer")
    inp = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Rescaling(1.0, name="identity")(inp)
    out = keras.layers.Activation("linear", name="linear")(inner(x))
    return keras.Model(inp, out, name="outer")


@pytest.fixture(scope="module")
def tuned_detector():
    from models.training.architectures import build_tuned

    return detector_of(build_tuned(64), 64)


def noisy(size=80, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


# --- the known answer -------------------------------------------------------------------------------------

def test_bright_top_left_patch_is_found(quadrant_detector):
    ex = gradcam.explain(quadrant_detector, quadrant_image(64, "top_left"))
    assert ex.method == "gradcam" and ex.target == "fake" and ex.p_fake > 0.99
    att = ex.attribution
    assert att.shape == (64, 64) and att.dtype == np.float32  # the image's size, not the model's 32 px
    positive = np.clip(att, 0, None)
    assert positive[:32, :32].sum() > 0.8 * positive.sum() > 0
    assert np.isclose(np.abs(att).max(), 1.0)
    assert ex.params == {"layer": "bright", "relu": True, "variant": "gradcam"}
    assert set(ex.extras) == {"layer", "cam", "weights", "layer_shape"}
    assert ex.extras["layer"] == "bright" and ex.extras["layer_shape"] == (32, 32, 1)
    assert ex.extras["cam"].shape == (32, 32) and ex.extras["weights"].shape == (1,)
    assert ex.extras["weights"][0] > 0


def test_patch_the_model_ignores(quadrant_detector):
    """A bright patch outside the looked-at quadrant: the verdict is real and the score does not depend on it.

    HiResCAM (gradient x activation per position) shows nothing there. Plain Grad-CAM cannot tell: its one
    weight per channel is positive (brightness in the top-left would raise P(fake)), so the bright
    channel lights up wherever it fires -- Grad-CAM's known blind spot, pinned here so it is not forgotten.
    """
    image = quadrant_image(64, "bottom_right")
    assert gradcam.explain(quadrant_detector, image).target == "real"

    hires = gradcam.explain(quadrant_detector, image, target="fake", variant="hirescam")
    assert hires.target == "fake" and hires.p_fake < 0.2
    assert np.abs(hires.attribution[36:60, 36:60]).max() < 1e-6

    plain = gradcam.explain(quadrant_detector, image, target="fake")
    assert plain.attribution[40:56, 40:56].min() > 0.5
    assert np.abs(plain.attribution[:32, :32]).max() < 1e-6


def test_real_and_fake_targets_have_opposite_gradients(quadrant_detector):
    image = quadrant_image(64, "top_left")
    fake = gradcam.explain(quadrant_detector, image, target="fake", relu=False)
    real = gradcam.explain(quadrant_detector, image, target="real", relu=False)
    assert real.target == "real" and fake.target == "fake"
    np.testing.assert_allclose(real.extras["weights"], -fake.extras["weights"])
    np.testing.assert_allclose(real.attribution, -fake.attribution, atol=1e-6)
    assert fake.attribution.max() == pytest.approx(1.0)
    # with the default ReLU, nothing in the image speaks for "real": an all-zero map, left at zero
    real_relu = gradcam.explain(quadrant_detector, image, target="real")
    assert not np.any(real_relu.attribution) and not np.allclose(real_relu.attribution, fake.attribution)


# --- layers -----------------------------------------------------------------------------------------------

def test_default_layer_is_the_last_conv(quadrant_detector, tuned_detector):
    from models.training.architectures import build_v1

    assert gradcam.conv_layers(quadrant_detector) == ["bright"]
    assert gradcam.conv_layers(tuned_detector) == ["conv1", "conv2", "conv3", "conv4"]
    assert gradcam.explain(tuned_detector, noisy()).extras["layer"] == "conv4"
    v1 = detector_of(build_v1(32, width=0.25), 32)
    names = gradcam.conv_layers(v1)
    assert names[0] == "stem_conv" and names[-1] == "block4_sep2" and "down4_conv" in names
    ex = gradcam.explain(v1, noisy(48))
    assert ex.extras["layer"] == "block4_sep2" and ex.attribution.shape == (48, 48)


def test_explicit_layer(tuned_detector):
    ex = gradcam.explain(tuned_detector, noisy(80), layer="conv2", target="fake")
    assert ex.params["layer"] == "conv2" and ex.attribution.shape == (80, 80)
    assert ex.extras["layer_shape"] == (29, 29, 64)
    assert ex.extras["cam"].shape == (29, 29) and ex.extras["weights"].shape == (64,)
    assert np.all(ex.attribution >= 0) and np.all(np.isfinite(ex.attribution))
    assert ex.p_fake == pytest.approx(float(tuned_detector.predict([noisy(80)])[0]), abs=1e-5)
    # a spatial non-conv layer may be named explicitly
    assert gradcam.explain(tuned_detector, noisy(80), layer="pool2").extras["layer_shape"] == (14, 14, 64)


@pytest.mark.parametrize("layer", ["nope", "p_fake", "flatten"])
def test_unknown_or_non_spatial_layer_lists_the_conv_layers(tuned_detector, layer):
    with pytest.raises(ValueError, match="conv1, conv2, conv3, conv4"):
        gradcam.explain(tuned_detector, noisy(), layer=layer)


def test_bad_arguments(quadrant_detector):
    image = quadrant_image(64)
    with pytest.raises(ValueError, match="target"):
        gradcam.explain(quadrant_detector, image, target="both")
    with pytest.raises(ValueError, match="variant"):
        gradcam.explain(quadrant_detector, image, variant="gradcam++")
    with pytest.raises(ValueError, match="uint8"):
        gradcam.explain(quadrant_detector, image.astype(np.float32))


# --- nested models ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["functional", "sequential"])
def test_nested_model_matches_the_flat_one(quadrant_detector, kind):
    outer = detector_of(nested_quadrant(kind), 32)
    assert gradcam.conv_layers(outer) == ["quadrant/bright"]
    for where in ("top_left", "bottom_right"):
        image = quadrant_image(64, where)
        flat = gradcam.explain(quadrant_detector, image, target="fake")
        for name in ("quadrant/bright", "bright", None):
            ex = gradcam.explain(outer, image, target="fake", layer=name)
            assert ex.extras["layer"] == "quadrant/bright"
            assert ex.p_fake == pytest.approx(flat.p_fake, abs=1e-7)
            np.testing.assert_allclose(ex.extras["weights"], flat.extras["weights"], rtol=1e-6)
            np.testing.assert_allclose(ex.attribution, flat.attribution, atol=1e-6)
    with pytest.raises(ValueError, match="quadrant/bright"):
        gradcam.explain(outer, quadrant_image(64), layer="quadrant/nope")


def test_layer_capture_reproduces_the_model_output():
    """The graph run that exposes the layer gives exactly the model's own output (nested and residual/BN)."""
    from models.training.architectures import build_v1

    x = np.random.default_rng(1).random((3, 32, 32, 3)).astype(np.float32)
    outer = nested_quadrant()
    ref = L.find_layer(outer, "bright", L.CONV_TYPES, "conv")
    acts, out = L.forward(outer, ref, x)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(outer(x, training=False)))
    inner = outer.get_layer("quadrant")
    np.testing.assert_array_equal(np.asarray(acts), np.asarray(inner.get_layer("bright")(x)))

    model = build_v1(32, width=0.25)
    detector = detector_of(model, 32)
    ref = L.find_layer(model, "block2_sep1", L.CONV_TYPES, "conv")
    acts, out = L.forward(model, ref, x)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(model(x, training=False)))
    sub = __import__("keras").Model(model.input, model.get_layer("block2_sep1").output)
    np.testing.assert_allclose(np.asarray(acts), np.asarray(sub(x)), atol=1e-6)
    fn = L.compiled(model, ref, 32, "activations", L.activations_fn)  # the traced path the explainers use
    _, traced = fn(x)
    np.testing.assert_allclose(np.asarray(traced)[:, 0], detector.predict_batch(x), atol=1e-6)
    # no symbolic nodes were added: the model's layers still have one output each
    assert model.get_layer("block2_sep1").output.shape[-1] == acts.shape[-1]


def test_to_dict_is_json_serialisable(quadrant_detector):
    ex = gradcam.explain(quadrant_detector, quadrant_image(64))
    summary = json.loads(json.dumps(ex.to_dict()))
    assert summary["method"] == "gradcam" and summary["extras"]["layer_shape"] == [32, 32, 1]
    assert summary["attribution"] == {"shape": [64, 64], "dtype": "float32"}
    full = json.loads(json.dumps(ex.to_dict(arrays=True)))
    assert len(full["attribution"]) == 64 and len(full["extras"]["weights"]) == 1

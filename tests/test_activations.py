"""explain.activations: one layer's feature maps, ordered for the study's 8x4 grid."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import build_quadrant_model, quadrant_image

from explain import activations
from explain.base import to_image_size
from models.detectors.base import KerasDetector


def detector_of(model, size):
    return KerasDetector(model, name=model.name, metadata={"input_size": size})


@pytest.fixture(scope="module")
def tuned_detector():
    from models.training.architectures import build_tuned

    return detector_of(build_tuned(64), 64)


def noisy(size=80, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def layer_output(detector, name, image):
    """The reference: a Keras sub-model up to the layer, on exactly the batch the model sees."""
    import keras

    model = detector.keras_model
    sub = keras.Model(model.input, model.get_layer(name).output)
    return np.asarray(sub(detector.preprocess([image]), training=False))[0]


def test_layers_lists_feature_layers_in_order(tuned_detector):
    expected = [f"{kind}{i}" for i in range(1, 5) for kind in ("conv", "bn", "pool")]
    assert activations.layers(tuned_detector) == expected
    assert activations.default_layer(tuned_detector) == "conv1"


def test_conv1_maps_ordered_by_mean(tuned_detector):
    image = noisy(80)
    ex = activations.explain(tuned_detector, image)
    assert ex.method == "activations" and ex.target in ("fake", "real")
    assert ex.p_fake == pytest.approx(float(tuned_detector.predict([image])[0]), abs=1e-5)
    extras = ex.extras
    assert set(extras) == {"layer", "maps", "channels", "means", "n_channels", "layer_shape", "zoom", "zoom_channel"}
    assert extras["layer"] == "conv1" and extras["n_channels"] == 128 and extras["layer_shape"] == (62, 62, 128)
    maps, channels, means = extras["maps"], extras["channels"], extras["means"]
    assert maps.shape == (62, 62, 32) and maps.dtype == np.float32 and len(channels) == len(means) == 32
    assert len(set(channels.tolist())) == 32
    assert np.all(np.diff(means) <= 0)  # descending

    full = layer_output(tuned_detector, "conv1", image)
    np.testing.assert_allclose(maps, full[..., channels], atol=1e-5)
    np.testing.assert_allclose(means, full.mean(axis=(0, 1))[channels], atol=1e-5)
    # the kept channels are the 32 largest means
    assert means[-1] >= np.sort(full.mean(axis=(0, 1)))[::-1][31] - 1e-6
    # the attribution: mean over ALL channels, at the image's size
    assert ex.attribution.shape == (80, 80)
    np.testing.assert_allclose(ex.attribution, to_image_size(full.mean(axis=-1), (80, 80)), atol=1e-5)
    # zoom: the first displayed channel by default
    assert extras["zoom_channel"] == channels[0]
    np.testing.assert_allclose(extras["zoom"], maps[..., 0])


def test_index_order_and_channel_counts(tuned_detector):
    image = noisy(64, seed=3)
    ex = activations.explain(tuned_detector, image, order="index", max_channels=10)
    assert ex.extras["channels"].tolist() == list(range(10)) and ex.extras["maps"].shape == (62, 62, 10)
    full = layer_output(tuned_detector, "conv1", image)
    np.testing.assert_allclose(ex.extras["maps"], full[..., :10], atol=1e-5)
    everything = activations.explain(tuned_detector, image, max_channels=None)
    assert everything.extras["maps"].shape == (62, 62, 128)
    assert sorted(everything.extras["channels"].tolist()) == list(range(128))


def test_zoom_channel(tuned_detector):
    image = noisy(64, seed=4)
    ex = activations.explain(tuned_detector, image, channel=100, max_channels=4)
    assert ex.extras["zoom_channel"] == 100 and ex.params["channel"] == 100
    np.testing.assert_allclose(ex.extras["zoom"], layer_output(tuned_detector, "conv1", image)[..., 100], atol=1e-5)
    with pytest.raises(ValueError, match="0..127"):
        activations.explain(tuned_detector, image, channel=128)


@pytest.mark.parametrize("layer, shape", [("bn1", (62, 62, 128)), ("pool1", (31, 31, 128)), ("conv3", (12, 12, 32))])
def test_other_layers(tuned_detector, layer, shape):
    image = noisy(64, seed=5)
    ex = activations.explain(tuned_detector, image, layer=layer, max_channels=8)
    assert ex.extras["layer_shape"] == shape and ex.extras["maps"].shape == shape[:2] + (8,)
    full = layer_output(tuned_detector, layer, image)
    np.testing.assert_allclose(ex.extras["maps"], full[..., ex.extras["channels"]], atol=1e-4)


@pytest.mark.parametrize("layer", ["nope", "flatten", "dense1", "p_fake"])
def test_unknown_layer_lists_the_choices(tuned_detector, layer):
    with pytest.raises(ValueError, match="conv1, bn1, pool1, conv2"):
        activations.explain(tuned_detector, noisy(), layer=layer)


def test_bad_arguments(tuned_detector):
    with pytest.raises(ValueError, match="order"):
        activations.explain(tuned_detector, noisy(), order="max")
    with pytest.raises(ValueError, match="max_channels"):
        activations.explain(tuned_detector, noisy(), max_channels=0)
    with pytest.raises(ValueError, match="target"):
        activations.explain(tuned_detector, noisy(), target="maybe")


def test_bright_layer_fires_exactly_on_the_patch(quadrant_detector):
    for where, rows, cols in (("top_left", slice(3, 13), slice(3, 13)), ("bottom_right", slice(19, 29), slice(19, 29))):
        ex = activations.explain(quadrant_detector, quadrant_image(64, where))
        zoom = ex.extras["zoom"]  # 32 px: the patch covers 2..14 (or 18..30) in each direction
        assert zoom.shape == (32, 32) and ex.extras["channels"].tolist() == [0]
        assert zoom[rows, cols].min() > 0.3
        outside = np.ones_like(zoom, dtype=bool)
        outside[rows.start - 2 : rows.stop + 2, cols.start - 2 : cols.stop + 2] = False
        assert np.abs(zoom[outside]).max() < 1e-6
        assert ex.attribution.shape == (64, 64)
        np.testing.assert_allclose(ex.attribution, to_image_size(zoom, (64, 64)), atol=1e-6)
    # not target-specific: the maps are the same whichever class is asked about
    image = quadrant_image(64)
    fake, real = (activations.explain(quadrant_detector, image, target=t) for t in ("fake", "real"))
    assert (fake.target, real.target) == ("fake", "real") and fake.p_fake == real.p_fake > 0.99
    np.testing.assert_array_equal(fake.attribution, real.attribution)


def test_nested_layer_names(quadrant_detector):
    import keras

    inp = keras.Input((32, 32, 3), name="image")
    x = keras.layers.MaxPooling2D(1, name="outer_pool")(inp)
    out = keras.layers.Activation("linear")(build_quadrant_model(32)(x))
    outer = detector_of(keras.Model(inp, out, name="outer"), 32)
    assert activations.layers(outer) == ["outer_pool", "quadrant/bright"]
    assert activations.default_layer(outer) == "quadrant/bright"
    image = quadrant_image(64)
    flat = activations.explain(quadrant_detector, image, layer="bright")
    for name in ("quadrant/bright", "bright", "outer/quadrant/bright"):
        ex = activations.explain(outer, image, layer=name)
        assert ex.extras["layer"] == "quadrant/bright" and ex.p_fake == pytest.approx(flat.p_fake, abs=1e-7)
        np.testing.assert_allclose(ex.extras["maps"], flat.extras["maps"], atol=1e-6)
    with pytest.raises(ValueError, match="outer_pool, quadrant/bright"):
        activations.explain(outer, image, layer="quadrant/gap")


def test_to_dict_is_json_serialisable(quadrant_detector):
    ex = activations.explain(quadrant_detector, quadrant_image(64))
    summary = json.loads(json.dumps(ex.to_dict()))
    assert summary["extras"]["n_channels"] == 1 and summary["extras"]["maps"]["shape"] == [32, 32, 1]
    full = json.loads(json.dumps(ex.to_dict(arrays=True)))
    assert full["extras"]["channels"] == [0] and full["params"]["layer"] == "bright"

"""explain.render: every figure function draws real explanations of the quadrant model, and png() gives PNG bytes."""

from __future__ import annotations

import dataclasses
import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import quadrant_image
from matplotlib.figure import Figure
from PIL import Image

from explain import activations, gradcam, lime, render
from explain import regions as R
from explain.metrics.faithfulness import DeletionCurve, deletion_curve
from explain.summary import METHOD_NAMES
from models.detectors.base import KerasDetector

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LM = R.Landmarks(box=(0, 0, 64, 64), left_eye=(16, 16), right_eye=(48, 16), nose=(48, 44),
                 mouth_left=(24, 56), mouth_right=(44, 56))


@pytest.fixture(scope="module")
def image():
    return quadrant_image(64, "top_left")


@pytest.fixture(scope="module")
def lime_expl(quadrant_detector, image):
    return lime.explain(quadrant_detector, image, num_samples=200, seed=0)


@pytest.fixture(scope="module")
def gradcam_expl(quadrant_detector, image):
    return gradcam.explain(quadrant_detector, image)


@pytest.fixture(scope="module")
def wide_detector():
    """A small untrained model whose first conv layer has 32 channels (for the 8x4 activation grid)."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(32, 3, padding="same", name="c32"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1, activation="sigmoid")],
                             name="wide")
    return KerasDetector(model, name="wide", metadata={"input_size": 32})


def check_png(fig, min_side=100):
    assert isinstance(fig, Figure)
    data = render.png(fig)
    assert isinstance(data, bytes) and data[:8] == PNG_SIGNATURE
    assert not plt.fignum_exists(fig.number)  # png() closes the figure
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        assert im.format == "PNG"
        w, h = im.size
    assert min_side <= w <= 3000 and min_side <= h <= 3000
    return w, h


def image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def test_lime_panels(lime_expl, image):
    fig = render.lime_panels(lime_expl, image)
    assert len(image_axes(fig)) == 3
    assert "superpixels" in fig._suptitle.get_text() and "Jaccard" not in fig._suptitle.get_text()
    w, h = check_png(fig)
    assert w > h  # three panels side by side
    fig = render.lime_panels(lime_expl, image, stability=0.75)
    assert "Jaccard) 0.75" in fig._suptitle.get_text()
    check_png(fig)


def test_gradcam_overlay(gradcam_expl, image):
    fig = render.gradcam_overlay(gradcam_expl, image)
    axes = image_axes(fig)
    assert len(axes) == 2 and len(axes[1].images) == 2  # the input, then the input under the heatmap
    assert "bright" in axes[1].get_title() and "'fake'" in axes[1].get_title()
    check_png(fig)


def test_activation_grid_has_32_maps_in_8x4(wide_detector, image):
    ex = activations.explain(wide_detector, image)
    assert ex.extras["maps"].shape[-1] == 32
    fig = render.activation_grid(ex)
    assert len(fig.axes) == 32 and len(image_axes(fig)) == 32
    assert fig.axes[0].get_subplotspec().get_geometry()[:2] == (4, 8)  # 4 rows of 8
    assert "32 of 32 channels" in fig._suptitle.get_text()
    check_png(fig)


def test_activation_grid_with_fewer_channels_than_cells(quadrant_detector, image):
    ex = activations.explain(quadrant_detector, image)  # "bright": one channel
    fig = render.activation_grid(ex)
    assert len(image_axes(fig)) == 1 and len(fig.axes) == 8
    check_png(fig)


def test_activation_zoom(wide_detector, image):
    ex = activations.explain(wide_detector, image, channel=5)
    fig = render.activation_zoom(ex)
    assert len(image_axes(fig)) == 1 and "channel 5" in fig.axes[0].get_title()
    check_png(fig)


def test_region_bars_and_overlay(lime_expl, gradcam_expl, image):
    for ex in (lime_expl, gradcam_expl):
        s = R.summarize(ex, landmarks=LM)
        fig = render.region_bars(s)
        ax = fig.axes[0]
        assert len(ax.patches) == len(s.ranking) == len(R.REGIONS)
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels[-1] == R.REGION_NAMES[s.ranking[0]] == "left eye (viewer's left)"  # the top one at the top
        assert METHOD_NAMES[ex.method] in ax.get_title()  # "LIME", "Grad-CAM"
        check_png(fig)
        fig = render.region_overlay(s, image)
        assert len(fig.axes[0].images) == 2 and len(fig.axes[0].collections) == 1  # image, regions; keypoints
        assert "mtcnn" in fig.axes[0].get_title()
        legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert legend == [R.REGION_NAMES[r] for r in R.REGIONS]  # every region named, eyes as the viewer sees
        check_png(fig)


def test_region_overlay_without_a_face(lime_expl, image):
    s = R.RegionSummary("lime", "fake", False, {}, [], None, None)
    fig = render.region_overlay(s, image)
    assert fig.axes[0].get_title() == "No face found" and len(fig.axes[0].images) == 1
    check_png(fig)


def test_deletion_plot_title_follows_usefulness(quadrant_detector, lime_expl, image):
    curve = deletion_curve(quadrant_detector, image, lime_expl)
    assert curve.useful  # removing the bright patch first kills P(fake) at once
    fig = render.deletion_plot(curve)
    title = fig.axes[0].get_title()
    assert "faster than random" in title and "not faster" not in title
    assert len(fig.axes[0].lines) == 2
    check_png(fig)

    x = np.linspace(0, 1, 5)
    slow = DeletionCurve(fractions=x, explanation_curve=np.ones(5), random_curves=np.tile(1 - x, (5, 1)),
                         random_mean=1 - x, random_std=np.zeros(5), auc_explanation=1.0, auc_random=0.5,
                         order=np.arange(4), target="fake", method="gradcam")
    assert not slow.useful
    fig = render.deletion_plot(slow)
    assert "not faster than random" in fig.axes[0].get_title()
    check_png(fig)


def test_png_respects_dpi(gradcam_expl, image):
    small = check_png(render.gradcam_overlay(gradcam_expl, image), min_side=50)
    with Image.open(io.BytesIO(render.png(render.gradcam_overlay(gradcam_expl, image), dpi=240))) as im:
        big = im.size
    assert big[0] > 1.5 * small[0] and big[1] > 1.5 * small[1]


def test_overlay_keeps_unmasked_pixels_for_uint8_and_float_inputs():
    """Regression: stacking two overlays divided the float image by 255 again and painted the panel black."""
    from explain.render import FAKE_RGB, _overlay

    img = np.full((4, 4, 3), 200, np.uint8)
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = True
    once = _overlay(img, mask, FAKE_RGB)
    twice = _overlay(once, np.zeros((4, 4), bool), FAKE_RGB)
    assert np.allclose(once[1:, 1:], 200 / 255) and np.allclose(twice, once)


# --- one visual language: fake/real colours with a legend, text at least render.FONT points -------------------

def texts(fig) -> list:
    from matplotlib.text import Text

    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def all_figures(lime_expl, gradcam_expl, image, quadrant_detector):
    from explain.manipulation import METHOD
    from explain.params import Params
    from explain.pipeline import Bundle
    from explain.summary import summarize

    s = R.summarize(lime_expl, landmarks=LM)
    heat = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    manip = dataclasses.replace(gradcam_expl, method=METHOD, extras={"map": heat})
    shap = dataclasses.replace(gradcam_expl, method="shapley", extras={
        "values": dict(zip(R.REGIONS, (0.3, -0.1, 0.05, 0.0, 0.1, 0.05))), "base": 0.2, "full": 0.6, "fill": "blur"})
    bundle = Bundle("m", 0.6, 0.5, "fake", "fake", Params(), explanations={"shapley": shap})
    return {
        "lime": render.lime_panels(lime_expl, image, stability=0.8),
        "gradcam": render.gradcam_overlay(gradcam_expl, image),
        "manipulation": render.manipulation_overlay(manip, image),
        "activations": render.activation_grid(activations.explain(quadrant_detector, image)),
        "regions": render.region_bars(s), "regions_map": render.region_overlay(s, image),
        "deletion": render.deletion_plot(deletion_curve(quadrant_detector, image, lime_expl)),
        "compare": render.lime_compare([("a", 0.9, "fake", lime_expl), ("b", 0.2, "real", lime_expl)], image),
        "waterfall": render.waterfall(summarize(bundle, sanity_failures={})),
    }


def test_every_figure_has_text_at_least_body_size_and_a_sane_width(lime_expl, gradcam_expl, image,
                                                                     quadrant_detector):
    # where the Explain page shows them: inches such that FONT-pt text stays at about 14 px or more in an 830 px
    # main column (2/3 of it: the waterfall; 1/2: region bars and deletion curves; 1/3: the region map)
    widest = {"waterfall": 8.2, "regions": 6.2, "deletion": 6.2, "regions_map": 4.2}
    for name, fig in all_figures(lime_expl, gradcam_expl, image, quadrant_detector).items():
        with Image.open(io.BytesIO(render.png(fig, dpi=100))) as im:  # ticks are made while drawing
            inches = im.size[0] / 100
        sizes = {t.get_text(): t.get_fontsize() for t in texts(fig)}
        assert sizes and min(sizes.values()) >= render.FONT, (name, sizes)
        assert inches <= widest.get(name, 12), (name, inches)


def test_signed_figures_use_the_fake_real_colours_with_a_legend(lime_expl, gradcam_expl, image):
    for fig in (render.lime_panels(lime_expl, image), render.gradcam_overlay(gradcam_expl, image)):
        words = " ".join(t.get_text() for t in texts(fig))
        assert "toward fake" in words and "toward real" in words
        plt.close(fig)
    # regions for target "real": the evidence for real is drawn in the real colour, the legend says which is which
    real = dataclasses.replace(lime_expl, target="real", attribution=-lime_expl.attribution)
    fig = render.region_bars(R.summarize(real, landmarks=LM))
    ax = fig.axes[0]
    top = ax.patches[-1]  # drawn at the top: the most evidence for 'real'
    assert np.allclose(top.get_facecolor()[:3], render.REAL_RGB)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["toward fake", "toward real"]
    plt.close(fig)
    fake = render.region_bars(R.summarize(lime_expl, landmarks=LM))
    assert np.allclose(fake.axes[0].patches[-1].get_facecolor()[:3], render.FAKE_RGB)
    plt.close(fake)


def test_lime_top10_colours_flip_with_the_target(lime_expl, image):
    from explain.render import _pos_neg

    real = dataclasses.replace(lime_expl, target="real", extras={**lime_expl.extras,
                                                                 "mask_pos_neg": -lime_expl.extras["mask_pos_neg"]})
    assert np.allclose(_pos_neg(image, lime_expl), _pos_neg(image, real))  # same evidence, same colours
    for_target = lime_expl.extras["mask_pos_neg"] > 0
    px = _pos_neg(image, lime_expl)[for_target].mean(axis=0)
    assert px[0] > px[2]  # evidence for 'fake' is reddish


def test_waterfall_adds_up_and_marks_the_threshold():
    from explain.params import Params
    from explain.pipeline import Bundle
    from explain.summary import summarize

    values = dict(zip(R.REGIONS, (0.3, -0.1, 0.05, 0.0, 0.1, 0.05)))
    shap = dataclasses.replace(lime_like(), extras={"values": values, "base": 0.2, "full": 0.6, "fill": "blur"})
    s = summarize(Bundle("m", 0.6, 0.5, "fake", "fake", Params(), explanations={"shapley": shap}),
                  sanity_failures={})
    fig = render.waterfall(s)
    ax = fig.axes[0]
    bars = ax.patches
    assert bars[0].get_width() == pytest.approx(0.2) and bars[-1].get_width() == pytest.approx(0.6)
    left_eye = bars[1]  # the largest |value| first
    assert left_eye.get_x() == pytest.approx(0.2) and left_eye.get_width() == pytest.approx(0.3)
    assert np.allclose(left_eye.get_facecolor()[:3], render.FAKE_RGB)
    right_eye = next(b for b in bars if b.get_width() < 0)
    assert np.allclose(right_eye.get_facecolor()[:3], render.REAL_RGB)
    assert any(line.get_xdata()[0] == 0.5 for line in ax.lines)  # the threshold
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "left eye (viewer's left)" in labels
    check_png(fig)
    empty = summarize(Bundle("m", 0.6, 0.5, "fake", "fake", Params(), face_found=False), sanity_failures={})
    fig = render.waterfall(empty)
    assert "No region Shapley values" in fig.axes[0].texts[0].get_text()
    check_png(fig)


def lime_like():
    from explain.base import Explanation

    return Explanation("shapley", "fake", 0.6, np.zeros((8, 8), np.float32))


def test_compare_titles_never_overlap_another_panel(lime_expl, image):
    """Six models in two rows: no panel's title sits on another panel's image (issue 14, item 7)."""
    items = [(f"model_{i}", 0.7, "fake", lime_expl) for i in range(6)]
    fig = render.lime_compare(items, image)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = [a for a in fig.axes if a.images]
    assert len(panels) == 6
    for a in panels:
        title = a.title.get_window_extent(renderer)
        assert not any(title.overlaps(b.get_window_extent(renderer)) for b in panels if b is not a)
    plt.close(fig)

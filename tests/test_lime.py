"""LIME explainer on detectors with a known answer.

conftest.quadrant_detector (only the brightness of the top-left quadrant matters) is explained with the study
preset (black fill: a switched-off bright superpixel goes dark); TextureDetector (only the texture of the top-left
quadrant matters) with the stable preset, whose mean-colour fill removes texture but keeps colour.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from explain import lime as lime_explain
from explain.params import DEFAULTS, PRESETS
from models.detectors.base import Detector
from tests.conftest import quadrant_image

N = 300  # LIME samples per run in these tests
STUDY = {k: v for k, v in PRESETS["study"].items() if k != "num_samples"}  # the study's SLIC, fill and kernel


class TextureDetector(Detector):
    """P(fake) grows with the pixel spread (texture) of the top-left quadrant; colour does not matter."""

    def __init__(self):
        self.name, self.input_size, self.metadata = "texture", 64, {}

    def predict(self, images, batch_size: int = 256):
        x = np.asarray(images, np.float64)
        q = x.shape[1] // 2
        spread = x[:, :q, :q].std(axis=(1, 2, 3)) / 40.0
        return (1.0 / (1.0 + np.exp(-8.0 * (spread - 0.5)))).astype(np.float32)


def texture_image(size: int = 64) -> np.ndarray:
    """Flat grey, with seeded noise in the top-left quadrant."""
    img = np.full((size, size, 3), 120, np.uint8)
    q = size // 2
    img[:q, :q] = np.clip(120 + np.random.default_rng(0).normal(0, 50, (q, q, 3)), 0, 255).astype(np.uint8)
    return img


class RecordingDetector(Detector):
    """Wraps a detector and keeps every batch it is asked to score."""

    def __init__(self, inner):
        self.inner, self.name, self.input_size, self.metadata = inner, "recording", inner.input_size, {}
        self.batches: list[np.ndarray] = []

    def predict(self, images, batch_size: int = 256):
        self.batches.append(np.stack([np.asarray(i) for i in images]))
        return self.inner.predict(images, batch_size=batch_size)


def top_left_mask(shape) -> np.ndarray:
    mask = np.zeros(shape[:2], bool)
    mask[: shape[0] // 2, : shape[1] // 2] = True
    return mask


@pytest.fixture(scope="module")
def fake_image():
    return quadrant_image(64, "top_left")


@pytest.fixture(scope="module")
def fake_exp(quadrant_detector, fake_image):
    return lime_explain.explain(quadrant_detector, fake_image, num_samples=N, **STUDY)


def test_segment_ids_are_zero_based_and_contiguous(fake_image):
    seg = lime_explain.segment(fake_image, 100, 1, 1)
    k = int(seg.max()) + 1
    assert seg.shape == fake_image.shape[:2]
    assert np.array_equal(np.unique(seg), np.arange(k))
    assert k > 20  # n_segments=100 on 64 px really splits the image
    default = lime_explain.segment(fake_image)  # the stable preset's 30 regular superpixels
    assert np.array_equal(np.unique(default), np.arange(int(default.max()) + 1))
    assert 10 < default.max() + 1 < k


def test_verdict_is_fake_and_top_segments_in_top_left(fake_exp, fake_image):
    e = fake_exp
    assert e.method == "lime" and e.target == "fake"
    assert e.p_fake > 0.99
    assert e.attribution.shape == fake_image.shape[:2] and e.attribution.dtype == np.float32
    tl = top_left_mask(fake_image.shape)
    top = e.extras["top_positive"]
    assert len(top) == 5
    assert all(e.extras["weights"][i] > 0 for i in top)
    in_tl = tl[np.isin(e.segments, top)].mean()
    assert in_tl > 0.8
    assert e.attribution[tl].mean() > e.attribution[~tl].mean()
    assert e.attribution[tl].mean() > 0.01


def test_weights_index_every_segment(fake_exp):
    e = fake_exp
    k = e.extras["n_segments_actual"]
    assert np.array_equal(np.unique(e.segments), np.arange(k))
    assert e.extras["weights"].shape == (k,) and e.extras["weights"].dtype == np.float32
    assert np.array_equal(e.attribution, e.extras["weights"][e.segments])


def test_masks_match_top_sets(fake_exp):
    e = fake_exp
    w, seg = e.extras["weights"], e.segments
    assert e.extras["mask_positive"].dtype == np.int8
    assert np.array_equal(e.extras["mask_positive"] == 1, np.isin(seg, e.extras["top_positive"]))
    top_abs = e.extras["top_abs"]
    assert len(top_abs) == 10
    assert list(top_abs) == [int(i) for i in np.argsort(-np.abs(w), kind="stable")[:10]]
    pn = e.extras["mask_pos_neg"]
    assert set(np.unique(pn)) <= {-1, 0, 1}
    for i in top_abs:
        assert (pn[seg == i] == np.sign(w[i])).all()
    assert (pn[~np.isin(seg, top_abs)] == 0).all()


def test_extras_and_params(fake_exp):
    e = fake_exp
    assert set(e.extras) == {"weights", "intercept", "score", "local_pred", "top_positive", "top_abs",
                             "mask_positive", "mask_pos_neg", "n_segments_actual", "member_seeds"}
    assert 0.5 < e.extras["score"] <= 1.0  # the local linear fit explains this simple model well
    assert e.extras["member_seeds"] == [0]
    assert e.params == {"n_segments": 100, "compactness": 1, "sigma": 1, "num_samples": N, "hide_color": 0,
                        "seed": 0, "kernel_width": 0.25, "consensus": 1, "batch_size": 250, "max_side": 256,
                        "working_size": [64, 64]}
    assert e.seconds > 0


def test_large_image_explained_on_working_copy_maps_back_to_full_size(quadrant_detector):
    from tests.conftest import quadrant_image

    big = np.kron(quadrant_image(64, "top_left"), np.ones((8, 8, 1), np.uint8))  # 512 px, same picture
    e = lime_explain.explain(quadrant_detector, big, num_samples=200, seed=0, **STUDY)
    assert e.params["working_size"] == [256, 256]
    assert e.attribution.shape == e.segments.shape == (512, 512)
    assert e.extras["mask_positive"].shape == (512, 512)
    tl = e.attribution[:256, :256].mean()
    assert tl > e.attribution[256:, 256:].mean() and tl > 0


def test_target_real_flips_weights(quadrant_detector, fake_image, fake_exp):
    real = lime_explain.explain(quadrant_detector, fake_image, target="real", num_samples=N, **STUDY)
    assert real.target == "real"
    assert np.array_equal(real.segments, fake_exp.segments)
    corr = np.corrcoef(real.attribution.ravel(), fake_exp.attribution.ravel())[0, 1]
    assert corr < -0.9
    np.testing.assert_allclose(real.extras["weights"], -fake_exp.extras["weights"], atol=1e-5)
    # score and local_pred are the target's own fit
    assert real.extras["local_pred"] == pytest.approx(1 - fake_exp.extras["local_pred"], abs=1e-4)


def test_verdict_real_for_bottom_right_patch(quadrant_detector):
    e = lime_explain.explain(quadrant_detector, quadrant_image(32, "bottom_right"), num_samples=50)
    assert e.target == "real" and e.p_fake < 0.5


def test_every_superpixel_is_switched_off_exactly(quadrant_detector, fake_image):
    hide = (7, 8, 9)  # a colour the image does not contain
    rec = RecordingDetector(quadrant_detector)
    e = lime_explain.explain(rec, fake_image, num_samples=120, batch_size=50, hide_color=hide)
    seg, k = e.segments, e.extras["n_segments_actual"]
    assert len(rec.batches[0]) == 1  # the verdict call
    samples = np.concatenate(rec.batches[1:])
    assert [len(b) for b in rec.batches[1:]] == [50, 50, 20]
    assert samples.dtype == np.uint8 and samples.shape == (120, *fake_image.shape)
    assert np.array_equal(samples[0], fake_image)  # LIME's first sample is the unperturbed image
    switched_off = np.zeros(k, bool)
    for img in samples:
        for i in range(k):
            px, orig = img[seg == i], fake_image[seg == i]
            off = (px == hide).all()
            assert off or np.array_equal(px, orig), f"segment {i} partly hidden"
            switched_off[i] |= off
    assert switched_off.all(), f"never switched off: {np.flatnonzero(~switched_off)}"
    assert len(e.extras["weights"]) == k


def test_lime_trap_one_based_segments_are_never_switched_off(fake_image):
    """Documents why segment() relabels: lime 0.2.0.1 switches feature i off with ``segments == i``."""
    from lime import lime_image

    seg = lime_explain.segment(fake_image) + 1  # what slic's default start_label=1 gives
    k = int(seg.max())
    seen = []

    def classifier_fn(imgs):
        seen.append(imgs)
        return np.zeros((len(imgs), 2))

    data, _ = lime_image.LimeImageExplainer(random_state=0).data_labels(
        fake_image, np.zeros_like(fake_image), seg, classifier_fn, num_samples=40, batch_size=40)
    assert data.shape == (40, k)  # one feature per unique id ...
    imgs = np.concatenate(seen)
    assert (imgs[:, seg == k] == fake_image[seg == k]).all()  # ... but the last superpixel is never hidden


def test_same_seed_reproducible_and_independent_of_global_rng(quadrant_detector, fake_image, fake_exp):
    np.random.seed(12345)
    np.random.rand(7)
    again = lime_explain.explain(quadrant_detector, fake_image, num_samples=N, seed=0, **STUDY)
    np.testing.assert_array_equal(again.extras["weights"], fake_exp.extras["weights"])
    np.testing.assert_array_equal(again.extras["mask_positive"], fake_exp.extras["mask_positive"])
    np.testing.assert_array_equal(again.extras["mask_pos_neg"], fake_exp.extras["mask_pos_neg"])
    assert again.extras["top_positive"] == fake_exp.extras["top_positive"]


def test_different_seed_changes_weights(quadrant_detector, fake_image, fake_exp):
    other = lime_explain.explain(quadrant_detector, fake_image, num_samples=N, seed=1, **STUDY)
    assert np.array_equal(other.segments, fake_exp.segments)  # SLIC is deterministic
    assert not np.allclose(other.extras["weights"], fake_exp.extras["weights"])


def test_progress_reports_each_batch(quadrant_detector):
    calls = []
    lime_explain.explain(quadrant_detector, quadrant_image(32, "top_left"), num_samples=130, batch_size=50,
                         progress=lambda done, total: calls.append((done, total)))
    assert calls == [(50, 130), (100, 130), (130, 130)]


def test_to_dict_is_json(fake_exp):
    d = json.loads(json.dumps(fake_exp.to_dict()))
    assert d["method"] == "lime" and d["target"] == "fake"
    assert d["extras"]["top_positive"] == fake_exp.extras["top_positive"]
    full = json.loads(json.dumps(fake_exp.to_dict(arrays=True)))
    assert len(full["extras"]["weights"]) == fake_exp.extras["n_segments_actual"]


def test_rejects_bad_input(quadrant_detector, fake_image):
    with pytest.raises(ValueError):
        lime_explain.explain(quadrant_detector, fake_image.astype(np.float32), num_samples=10)
    with pytest.raises(ValueError):
        lime_explain.explain(quadrant_detector, fake_image, target="maybe", num_samples=10)


def _stock_lime(detector, img, seg, *, seed, num_samples, hide_color=0, kernel_width=0.25):
    from lime import lime_image

    def classifier(batch):
        p = detector.predict(np.asarray(batch, np.uint8))
        return np.stack([1 - p, p], axis=1)

    return lime_image.LimeImageExplainer(kernel_width=kernel_width, random_state=seed).explain_instance(
        img, classifier, labels=(0, 1), top_labels=None, hide_color=hide_color, num_samples=num_samples,
        batch_size=50, segmentation_fn=lambda _i: seg)


@pytest.mark.parametrize("hide_color,kernel_width", [(0, 0.25), (None, 0.25), (0, 1.0)])
def test_one_member_matches_stock_lime_exactly(quadrant_detector, hide_color, kernel_width):
    """consensus=1 draws the same samples and gives the same weights as lime 0.2.0.1's own explainer."""
    img = quadrant_image(64, "top_left")
    seg = lime_explain.segment(img, 100, 1, 1)
    stock = _stock_lime(quadrant_detector, img, seg, seed=3, num_samples=150, hide_color=hide_color,
                        kernel_width=kernel_width)
    ours = lime_explain.explain(quadrant_detector, img, target="fake", seed=3, num_samples=150, batch_size=50,
                                hide_color=hide_color, kernel_width=kernel_width, consensus=1, n_segments=100,
                                compactness=1, sigma=1)
    assert np.array_equal(ours.segments, seg)
    k = len(ours.extras["weights"])
    np.testing.assert_allclose(ours.extras["weights"], [dict(stock.local_exp[1])[i] for i in range(k)], atol=1e-6)
    assert ours.extras["score"] == pytest.approx(stock.score, abs=1e-9)
    assert ours.extras["intercept"] == pytest.approx(stock.intercept[1], abs=1e-9)


def test_consensus_averages_its_members_scored_in_one_pass(quadrant_detector, fake_image):
    """A consensus of 3 is the mean of 3 stock-lime fits with seeds seed*3 .. seed*3+2, each on its share."""
    rec = RecordingDetector(quadrant_detector)
    e = lime_explain.explain(rec, fake_image, target="fake", seed=1, num_samples=301, batch_size=128,
                             **{**STUDY, "consensus": 3})
    assert e.extras["member_seeds"] == [3, 4, 5] == lime_explain.member_seeds(1, 3)
    assert [len(b) for b in rec.batches[1:]] == [128, 128, 45]  # members' samples batched together
    members = [_stock_lime(quadrant_detector, fake_image, e.segments, seed=s, num_samples=n)
               for s, n in zip((3, 4, 5), (101, 100, 100))]
    k = e.extras["n_segments_actual"]
    mean = np.mean([[dict(m.local_exp[1])[i] for i in range(k)] for m in members], axis=0)
    np.testing.assert_allclose(e.extras["weights"], mean, atol=1e-6)
    # each member's samples reached the detector: the stock members' first samples are in the recorded pass
    samples = np.concatenate(rec.batches[1:])
    assert np.array_equal(samples[0], fake_image) and np.array_equal(samples[101], fake_image)
    assert not np.array_equal(samples[1], samples[102])


def test_consensus_seeds_are_disjoint_and_reach_the_sampler(quadrant_detector, fake_image):
    assert lime_explain.member_seeds(0, 1) == [0] and lime_explain.member_seeds(5, 1) == [5]
    sets = [set(lime_explain.member_seeds(s, 4)) for s in (0, 1, 2)]
    assert all(not (a & b) for a, b in ((sets[0], sets[1]), (sets[0], sets[2]), (sets[1], sets[2])))
    with pytest.raises(ValueError):
        lime_explain.member_seeds(0, 0)
    with pytest.raises(ValueError):
        lime_explain.explain(quadrant_detector, fake_image, num_samples=5, consensus=3)
    runs = {}
    for seed in (0, 0, 1):
        rec = RecordingDetector(quadrant_detector)
        e = lime_explain.explain(rec, fake_image, num_samples=200, consensus=2, seed=seed)
        samples = np.concatenate(rec.batches[1:])
        if seed in runs:  # same seed: the same samples and identical weights
            np.testing.assert_array_equal(samples, runs[seed][0])
            np.testing.assert_array_equal(e.extras["weights"], runs[seed][1])
        runs[seed] = (samples, e.extras["weights"])
    assert not np.array_equal(runs[0][0], runs[1][0])
    assert not np.allclose(runs[0][1], runs[1][1])


@pytest.fixture(scope="module")
def texture_exp():
    return lime_explain.explain(TextureDetector(), texture_image())  # every default: the stable preset


def test_stable_preset_finds_the_texture_with_mean_fill(texture_exp):
    e = texture_exp
    assert e.params["hide_color"] is None and e.params["n_segments"] == DEFAULTS.n_segments == 30
    assert e.params["num_samples"] == DEFAULTS.num_samples and e.target == "fake"
    tl = top_left_mask(e.segments.shape)
    top = e.extras["top_positive"]
    assert len(top) == 5
    assert tl[np.isin(e.segments, top)].mean() > 0.8
    assert e.attribution[tl].mean() > 0.01 > abs(e.attribution[~tl].mean())


def test_stable_preset_same_seed_identical_other_seed_differs(texture_exp):
    again = lime_explain.explain(TextureDetector(), texture_image(), seed=0)
    np.testing.assert_array_equal(again.extras["weights"], texture_exp.extras["weights"])
    assert again.extras["top_positive"] == texture_exp.extras["top_positive"]
    other = lime_explain.explain(TextureDetector(), texture_image(), seed=1)
    assert np.array_equal(other.segments, texture_exp.segments)
    assert not np.allclose(other.extras["weights"], texture_exp.extras["weights"])


def test_black_fill_misses_what_the_mean_fill_sees():
    """Why the fill matters: black removes texture and colour; the mean colour removes only texture."""
    img, det = texture_image(), TextureDetector()
    seg = lime_explain.segment(img)
    mean_fill = lime_explain._fudged(img, seg, None)
    assert det.predict([mean_fill])[0] < 0.1 < 0.9 < det.predict([img])[0]
    for s in np.unique(seg):  # each superpixel's mean colour, as lime 0.2.0.1 fills it
        np.testing.assert_array_equal(mean_fill[seg == s], np.broadcast_to(
            img[seg == s].mean(axis=0).astype(np.uint8), mean_fill[seg == s].shape))

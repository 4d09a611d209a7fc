"""explain.summary: the Summary tab's verdict, waterfall, method rows (trusted or greyed with the reason),
agreement and headline, on synthetic bundles and on one real pipeline run with fixed landmarks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import FACE_LANDMARKS, quadrant_image, stats_detector

from explain import pipeline, regions, render
from explain.base import Explanation
from explain.metrics.faithfulness import DeletionCurve
from explain.params import Params
from explain.pipeline import Bundle
from explain.regions import REGIONS, RegionSummary
from explain.summary import STABILITY_MIN, summarize

LANDMARKS = regions.Landmarks(**FACE_LANDMARKS)
# Shapley values for target "fake": they add up to full - base = 0.86 - 0.30 = 0.56
VALUES = {"left_eye": 0.05, "right_eye": -0.02, "nose": 0.08, "mouth": 0.21, "rest_of_face": 0.14,
          "outside_face": 0.10}




def shapley(target="fake", values=VALUES, base=0.30, full=0.86) -> Explanation:
    if target == "real":  # v = 1 - P(fake): every value's sign flips
        values, base, full = {r: -v for r, v in values.items()}, 1 - base, 1 - full
    return Explanation("shapley", target, 0.86, np.zeros((4, 4), np.float32),
                       extras={"values": dict(values), "base": base, "full": full, "fill": "blur"})


def region_summary(method: str, top: str, target="fake") -> RegionSummary:
    ranking = [top] + [r for r in REGIONS if r != top]
    stats = {r: {"mean": 1.0 - 0.1 * i, "share": 0.1, "pixels": 10} for i, r in enumerate(ranking)}
    return RegionSummary(method, target, True, stats, ranking, LANDMARKS, None)


def curve(method: str, useful: bool, target="fake") -> DeletionCurve:
    x = np.linspace(0, 1, 5)
    auc = (0.2, 0.5) if useful else (0.6, 0.4)
    return DeletionCurve(fractions=x, explanation_curve=1 - x, random_curves=np.tile(1 - x, (5, 1)),
                         random_mean=1 - x, random_std=np.zeros(5), auc_explanation=auc[0], auc_random=auc[1],
                         order=np.arange(4), target=target, method=method)


def bundle(tops: dict[str, str], useful: dict[str, bool], target="fake", stability=None, with_shapley=True,
           p_fake=0.86) -> Bundle:
    b = Bundle(model="synthetic", p_fake=p_fake, threshold=0.5, verdict="fake" if p_fake >= 0.5 else "real",
               target=target, params=Params(), landmarks=LANDMARKS, face_found=True, stability=stability)
    if with_shapley:
        b.explanations["shapley"] = shapley(target)
    for m, top in tops.items():
        b.explanations[m] = Explanation(m, target, p_fake, np.zeros((4, 4), np.float32))
        b.regions[m] = region_summary(m, top, target)
        if m in useful:
            b.deletion[m] = curve(m, useful[m], target)
    return b


def test_waterfall_goes_from_base_to_p_fake_by_region():
    s = summarize(bundle({}, {}), sanity_failures={})
    assert s.base == pytest.approx(0.30) and s.fill == "blur"
    assert [w.region for w in s.waterfall] == ["mouth", "rest_of_face", "outside_face", "nose", "left_eye",
                                               "right_eye"]  # largest |value| first
    assert s.waterfall[0].start == pytest.approx(0.30) and s.waterfall[-1].end == pytest.approx(0.86)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(s.waterfall, s.waterfall[1:]))
    assert s.waterfall[0].name == "mouth" and s.row("shapley").top_inner == "mouth"
    assert s.row("shapley").trusted and s.row("shapley").reason is None
    assert s.headline == "Fake (P 0.86): the mouth adds +0.21 to P(fake)."  # no other method to compare


def test_target_real_is_flipped_onto_the_fake_scale():
    """Explaining 'real', the values are evidence for real: the waterfall still reads in P(fake)."""
    s = summarize(bundle({}, {}, target="real"), sanity_failures={})
    assert s.base == pytest.approx(0.30) and s.waterfall[-1].end == pytest.approx(0.86)
    assert {w.region: w.value for w in s.waterfall} == pytest.approx(VALUES)
    assert s.row("shapley").top_inner == "right_eye"  # the only region toward real
    assert "the right eye (viewer's right) takes 0.02 off P(fake)" in s.headline


def test_trusted_methods_agree():
    s = summarize(bundle({"gradcam": "mouth", "lime": "mouth"}, {"gradcam": True, "lime": True}),
                  sanity_failures={}, unsure=True)
    assert [r.method for r in s.methods] == ["shapley", "gradcam", "lime"] and all(r.trusted for r in s.methods)
    assert s.agreement.agree is True and s.agreement.region == "mouth"
    assert s.agreement.basis == ["shapley", "gradcam", "lime"]
    assert s.verdict_label == "unsure (leans fake)"
    assert s.headline == ("Unsure (leans fake) (P 0.86): the mouth adds +0.21 to P(fake); the Shapley values, "
                          "Grad-CAM and LIME agree on the mouth.")
    row = s.row("gradcam")
    assert (row.auc_explanation, row.auc_random) == (0.2, 0.5) and "0.200 vs random 0.500" in row.faithfulness


def test_method_failing_its_deletion_test_is_greyed_and_never_the_basis():
    s = summarize(bundle({"gradcam": "nose", "lime": "mouth"}, {"gradcam": False, "lime": True}), sanity_failures={})
    cam = s.row("gradcam")
    assert not cam.trusted and "fails its deletion test" in cam.reason and "0.600 vs 0.400" in cam.reason
    assert cam.top_inner == "nose"  # still shown
    assert [r.method for r in s.methods] == ["shapley", "lime", "gradcam"]  # ranked after every trusted one
    assert "gradcam" not in s.agreement.basis and s.agreement.agree is True  # its "nose" does not count
    assert "Grad-CAM" not in s.headline and "agree on the mouth" in s.headline


def test_sanity_failure_is_greyed_with_its_reason():
    s = summarize(bundle({"gradcam": "mouth", "lime": "nose"}, {"gradcam": True, "lime": True}),
                  sanity_failures={"lime": "the map barely changes when the weights are randomised"})
    lime = s.row("lime")
    assert not lime.trusted and "model-randomisation" in lime.reason and "barely changes" in lime.reason
    assert s.methods[-1] is lime and s.agreement.basis == ["shapley", "gradcam"] and s.agreement.agree
    s = summarize(bundle({}, {}), sanity_failures={"shapley": "no change"})
    assert not s.row("shapley").trusted and s.agreement.basis == [] and s.agreement.agree is None


def test_untested_and_unstable_methods_are_not_trusted():
    s = summarize(bundle({"lime": "mouth"}, {}), sanity_failures={})
    assert not s.row("lime").trusted and "not tested" in s.row("lime").reason
    low = {"mean_jaccard": STABILITY_MIN - 0.3}
    s = summarize(bundle({"lime": "mouth"}, {"lime": True}, stability=low), sanity_failures={})
    assert not s.row("lime").trusted and "unstable" in s.row("lime").reason


def test_trusted_methods_that_disagree_are_named():
    s = summarize(bundle({"gradcam": "nose", "manipulation": "mouth"}, {"gradcam": True, "manipulation": True}),
                  sanity_failures={})
    assert s.agreement.agree is False and s.agreement.region == "mouth" and s.agreement.disagree == {"gradcam": "nose"}
    assert s.headline.endswith("the trusted methods disagree: the mouth for the Shapley values and the "
                               "manipulation map, the nose for Grad-CAM.")


def test_without_shapley_the_majority_of_trusted_methods_is_the_basis():
    b = bundle({"gradcam": "nose", "lime": "nose", "manipulation": "mouth"},
               {"gradcam": True, "lime": True, "manipulation": False}, with_shapley=False)
    b.face_found = True
    s = summarize(b, sanity_failures={})
    assert s.waterfall == [] and s.base is None
    assert s.agreement.region == "nose" and s.agreement.agree is True and "manipulation" not in s.agreement.basis


def test_pending_lime_and_not_applicable_methods():
    b = bundle({"gradcam": "mouth"}, {"gradcam": True})
    b.notes["manipulation"] = "The manipulation map does not apply to synthetic (it has no map head)."
    s = summarize(b, sanity_failures={}, pending=("lime",))
    lime = s.row("lime")
    assert lime.status == "pending" and not lime.trusted and lime.reason == "computing…"
    assert s.methods[-1] is lime and "lime" not in s.agreement.basis
    assert s.not_applicable == {"manipulation": b.notes["manipulation"]} and s.row("manipulation") is None
    b.regions["gradcam"].regions = {r: {"mean": 0.0, "share": 0.0, "pixels": 10} for r in REGIONS}  # empty map
    s = summarize(b, sanity_failures={})
    assert s.row("gradcam").top_inner is None and not s.row("gradcam").trusted
    assert "no evidence for 'fake'" in s.row("gradcam").reason and s.agreement.basis == ["shapley"]
    b.face_found, b.explanations = False, {}
    s = summarize(b, sanity_failures={})
    assert s.headline == "Fake (P 0.86): no face found, so no region breakdown."


def test_summary_of_a_real_pipeline_run(monkeypatch):
    """StatsDetector (P(fake) from the top-left quadrant's brightness) on the quadrant image with fixed landmarks:
    the Shapley values add up to P(fake), and the left eye (in the bright quadrant) is the top inner region."""
    monkeypatch.setattr(regions, "detect_landmarks", lambda image: LANDMARKS)
    params = Params(num_samples=150, n_segments=30)
    b = pipeline.run(stats_detector(), quadrant_image(64), methods=("shapley", "lime", "regions"), params=params)
    s = summarize(b, sanity_failures={})
    assert s.waterfall[-1].end == pytest.approx(b.p_fake, abs=1e-4)
    assert s.row("shapley").top_inner == "left_eye" and s.row("shapley").trusted
    assert s.row("lime").status == "done" and s.row("lime").trusted == b.deletion["lime"].useful
    assert "left eye (viewer's left)" in s.headline
    fig = render.waterfall(s)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0] == "every region blurred" and labels[-1] == "this image"
    assert len(fig.axes[0].patches) == 2 + len(REGIONS)
    render.png(fig)
    no_deletion = pipeline.run(stats_detector(), quadrant_image(64), methods=("shapley", "lime", "regions"),
                               params=dataclasses.replace(params, deletion=False))
    assert not summarize(no_deletion, sanity_failures={}).row("lime").trusted

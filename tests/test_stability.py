"""explain.metrics.stability: LIME's top-k agreement across seeds (conftest.quadrant_detector with the study preset,
the texture detector of test_lime with the stable one) and the warning's advice."""

from __future__ import annotations

import pytest

from explain import lime as lime_explain
from explain.metrics import stability
from explain.params import PRESETS, Params
from tests.conftest import quadrant_image
from tests.test_lime import STUDY, TextureDetector, texture_image

N = 300  # LIME samples per run in these tests


@pytest.fixture(scope="module")
def fake_image():
    return quadrant_image(64, "top_left")


@pytest.fixture(scope="module")
def fake_exp(quadrant_detector, fake_image):
    return lime_explain.explain(quadrant_detector, fake_image, num_samples=N, **STUDY)


def test_stability_high_for_clear_signal(quadrant_detector, fake_image, fake_exp):
    s = stability.stability(quadrant_detector, fake_image, seeds=(0, 1, 2), k=5, num_samples=N, **STUDY)
    assert s["seeds"] == [0, 1, 2] and s["top_k"] == 5
    assert len(s["sets"]) == 3 and all(len(x) == 5 for x in s["sets"])
    assert s["sets"][0] == sorted(fake_exp.extras["top_positive"])
    assert [p["seeds"] for p in s["jaccard_pairs"]] == [[0, 1], [0, 2], [1, 2]]
    assert 0.0 <= s["mean_jaccard"] <= 1.0
    assert s["mean_jaccard"] > 0.5
    assert len(s["explanations"]) == 3 and [e.params["seed"] for e in s["explanations"]] == [0, 1, 2]


def test_stability_exposes_unstable_sets(quadrant_detector, fake_image):
    # with 20 superpixels the bright patch is one superpixel: the other four "top" ones are sampling noise
    calls = []
    s = stability.stability(quadrant_detector, fake_image, seeds=(0, 1, 2), k=5, num_samples=200,
                            progress=lambda d, t: calls.append((d, t)), **{**STUDY, "n_segments": 20})
    assert 0.0 <= s["mean_jaccard"] < 0.5
    assert len({tuple(x) for x in s["sets"]}) > 1
    assert calls[-1] == (600, 600) and all(t == 600 for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    with pytest.raises(ValueError):
        stability.stability(quadrant_detector, fake_image, seeds=(0,), num_samples=10)


def test_jaccard_and_top_positive(fake_exp):
    assert stability.jaccard([], []) == 1.0 and stability.jaccard([1, 2], [2, 3]) == pytest.approx(1 / 3)
    top = stability.top_positive(fake_exp)
    assert len(top) <= 5 and set(top) == set(fake_exp.extras["top_positive"])


def test_reuse_skips_the_seed_already_computed(monkeypatch, quadrant_detector, fake_image, fake_exp):
    """An explanation for the verdict, passed as ``reuse``, is not recomputed (target "verdict" included)."""
    seeds = []
    real = lime_explain.explain
    monkeypatch.setattr(lime_explain, "explain", lambda *a, **k: seeds.append(k["seed"]) or real(*a, **k))
    s = stability.stability(quadrant_detector, fake_image, target="verdict", seeds=(0, 1, 2), num_samples=N,
                            reuse=fake_exp, **STUDY)
    assert seeds == [1, 2] and s["explanations"][0] is fake_exp
    seeds.clear()
    stability.stability(quadrant_detector, fake_image, target="real", seeds=(0, 1), num_samples=N, reuse=fake_exp,
                        **STUDY)
    assert seeds == [0, 1]  # fake_exp shows the evidence for "fake": not reusable for "real"


def test_stable_preset_is_stable_and_its_consensus_members_are_disjoint():
    """The stable preset (the defaults) on a texture signal: the three seeds agree; with a consensus of 2 the
    three runs draw from six different sampler seeds."""
    s = stability.stability(TextureDetector(), texture_image(), seeds=(0, 1, 2), num_samples=600)
    assert s["mean_jaccard"] >= stability.STABLE_AT
    assert stability.advice(s["mean_jaccard"], Params()) is None
    c = stability.stability(TextureDetector(), texture_image(), seeds=(0, 1, 2), num_samples=600, consensus=2)
    members = [tuple(e.extras["member_seeds"]) for e in c["explanations"]]
    assert members == [(0, 1), (2, 3), (4, 5)]


def test_advice_by_preset_and_threshold():
    study, stable = Params.preset("study"), Params.preset("stable")
    assert stability.STABLE_AT == 0.5
    assert stability.advice(0.5, study) is None and stability.advice(0.9, stable) is None
    for params in (study, stable, Params(n_segments=100)):  # study, stable and a custom setting
        line = stability.advice(0.25, params)
        assert line.startswith("Unstable") and "0.25" in line and "\n" not in line
        assert "number of samples" not in line and "raise" not in line.lower()  # more samples do not fix it
    assert "stable preset" in stability.advice(0.49, study) and "Switch" in stability.advice(0.49, study)
    assert "Switch" in stability.advice(0.3, Params(n_segments=100))
    assert "Shapley" in stability.advice(0.3, stable) and "Switch" not in stability.advice(0.3, stable)
    fewer = stability.advice(0.3, stable.with_lime(num_samples=1000))  # the stable superpixels, fewer samples
    assert "1,500" in fewer and "1,000" in fewer and "Switch" not in fewer
    assert stability.advice(0.3, stable.with_lime(seed=7)) == stability.advice(0.3, stable)  # the seed is not a preset
    assert set(PRESETS) == {"stable", "study"}

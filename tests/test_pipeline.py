"""explain.pipeline.run on a tiny synthetic Keras model saved in tmp_path (the quadrant model of conftest)."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
from conftest import FACE_LANDMARKS, build_quadrant_model, quadrant_image, save_model, stats_detector

from explain import gradcam, lime, pipeline, regions
from explain.metrics import faithfulness
from explain.params import DEFAULTS, LIME_FIELDS, Params
from explain.regions import Landmarks
from models.detectors.registry import load_model

FAST = Params(num_samples=120, n_segments=30)
LANDMARKS = Landmarks(**FACE_LANDMARKS)




@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    path = save_model(build_quadrant_model(32), tmp_path_factory.mktemp("pipeline_model"), "quadrant", 32)
    return load_model(path)


@pytest.fixture
def face(monkeypatch):
    """No mtcnn: every image has LANDMARKS."""
    calls = []
    monkeypatch.setattr(regions, "detect_landmarks", lambda image: calls.append(1) or LANDMARKS)
    return calls


def test_everything_by_default(detector, face):
    image = quadrant_image(64)
    b = pipeline.run(detector, image, params=FAST)
    assert b.model == "quadrant" and b.verdict == "fake" and b.target == "fake" and b.threshold == 0.5
    assert b.p_fake == pytest.approx(float(detector.predict([image])[0]))
    assert list(b.explanations) == ["shapley", "lime", "gradcam", "activations"]
    assert list(b.attributions) == ["lime", "gradcam"]
    assert sum(b.explanations["shapley"].extras["values"].values()) == pytest.approx(
        b.explanations["shapley"].extras["full"] - b.explanations["shapley"].extras["base"], abs=1e-5)
    assert b.face_found is True and b.landmarks == LANDMARKS and set(b.regions) == {"lime", "gradcam"}
    assert b.regions["lime"].ranking and set(b.deletion) == {"lime", "gradcam"}
    assert all(isinstance(c, faithfulness.DeletionCurve) for c in b.deletion.values())
    assert b.stability is None and b.not_applicable == []
    assert list(b.timings) == ["landmarks", "shapley", "lime", "gradcam", "activations", "regions",
                               "deletion_lime", "deletion_gradcam"]
    assert all(v >= 0 for v in b.timings.values())
    assert b.timings["lime"] == b.explanations["lime"].seconds
    assert b.timings["deletion_lime"] == b.deletion["lime"].seconds


def test_methods_subset_is_respected(detector, face):
    image = quadrant_image(64)
    b = pipeline.run(detector, image, methods=("gradcam",), params=FAST)
    assert list(b.explanations) == ["gradcam"] and b.face_found is None and not b.regions and not face
    assert set(b.deletion) == {"gradcam"} and "lime" not in b.timings
    b = pipeline.run(detector, image, methods=["activations"], params=FAST)
    assert list(b.explanations) == ["activations"] and not b.deletion and b.face_found is None
    b = pipeline.run(detector, image, methods=("lime", "regions"), params=dataclasses.replace(FAST, deletion=False))
    assert list(b.explanations) == ["lime"] and set(b.regions) == {"lime"} and not b.deletion and len(face) == 1
    with pytest.raises(ValueError, match="unknown method"):
        pipeline.run(detector, image, methods=("lime", "shap"), params=FAST)


def test_not_applicable_methods_are_reported(face):
    b = pipeline.run(stats_detector(), quadrant_image(64), params=FAST)
    assert b.not_applicable == ["gradcam", "activations"]
    assert list(b.explanations) == ["shapley", "lime"] and set(b.deletion) == {"lime"} and set(b.regions) == {"lime"}
    assert b.notes["gradcam"].startswith("Grad-CAM needs") and "stats" in b.notes["activations"]
    assert not pipeline.applies(stats_detector(), "gradcam") and pipeline.applies(stats_detector(), "lime")
    b = pipeline.run(stats_detector(), quadrant_image(64), methods=("lime",), params=FAST)
    assert b.not_applicable == []  # only what was asked for


def test_no_face_shapley_says_it_does_not_apply(monkeypatch):
    monkeypatch.setattr(regions, "detect_landmarks", lambda image: None)
    b = pipeline.run(stats_detector(), quadrant_image(64), methods=("shapley", "lime", "regions"), params=FAST)
    assert b.face_found is False and "shapley" not in b.explanations and not b.regions
    assert b.not_applicable == ["shapley"] and "do not apply" in b.notes["shapley"]
    assert "lime" in b.explanations  # the pixel methods still run


def test_params_defaults_are_the_defaults():
    from explain.params import PRESETS

    assert inspect.signature(pipeline.run).parameters["params"].default == Params() == DEFAULTS
    p = Params()
    # LIME's defaults are the stable preset (issue 13); the study's LIME is Params.preset("study")
    assert (p.target, p.n_segments, p.compactness, p.sigma, p.num_samples, p.hide_color, p.seed, p.kernel_width,
            p.consensus, p.layer) == ("verdict", 30, 10.0, 1.0, 1500, None, 0, 0.25, 1, None)
    assert p.preset_name == "stable" and PRESETS["stable"] == {k: v for k, v in p.lime_kwargs().items() if k != "seed"}
    study = Params.preset("study")
    assert study.lime_kwargs() == {"n_segments": 100, "compactness": 1.0, "sigma": 1.0, "num_samples": 1000,
                                   "hide_color": 0, "seed": 0, "kernel_width": 0.25, "consensus": 1}
    assert study.preset_name == "study"
    assert Params.preset("study", seed=4, stability=True) == dataclasses.replace(study, seed=4, stability=True)
    assert Params(num_samples=999).preset_name is None
    with pytest.raises(ValueError):
        Params.preset("fast")
    assert {"kernel_width", "consensus"} <= set(LIME_FIELDS)  # in every cache key (lime_items)
    assert dict(study.lime_items()) != dict(p.lime_items())
    assert p.deletion is True and p.stability is False and p.stability_seeds == (0, 1, 2)
    # the explainers and the CLI read their defaults from Params
    lime_defaults = inspect.signature(lime.explain).parameters
    assert {k: lime_defaults[k].default for k in LIME_FIELDS} == p.lime_kwargs()
    assert lime_defaults["target"].default == p.target
    curve = inspect.signature(faithfulness.deletion_curve).parameters
    assert (curve["n_random"].default, curve["seed"].default, curve["n_segments"].default) == (
        p.deletion_random, p.seed, p.n_segments)
    from explain.cli import params_of, parse_args

    args = parse_args(["x.png"])
    assert (args.preset, args.seed, args.layer, args.target) == ("stable", p.seed, p.layer, p.target)
    assert params_of(args) == p
    assert params_of(parse_args(["x.png", "--preset", "study"])) == study
    assert Params().with_lime((("num_samples", 5),), seed=3) == Params(num_samples=5, seed=3)
    with pytest.raises(ValueError):
        Params().with_lime({"layer": "x"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.seed = 1


def test_progress_reaches_one(detector, face):
    calls = []
    pipeline.run(detector, quadrant_image(64), params=dataclasses.replace(FAST, stability=True),
                 progress=lambda f, m: calls.append((f, m)))
    fractions = [f for f, _ in calls]
    assert fractions[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in fractions)
    assert fractions == sorted(fractions) and all(isinstance(m, str) and m for _, m in calls)
    assert any(m.startswith("LIME") for _, m in calls) and any(m.startswith("Stability") for _, m in calls)


def test_same_result_as_the_explainers_themselves(detector, face):
    image = quadrant_image(64)
    params = dataclasses.replace(FAST, seed=7, stability=True)
    b = pipeline.run(detector, image, methods=("lime", "gradcam"), params=params)
    direct = lime.explain(detector, image, num_samples=120, n_segments=30, seed=7)
    e = b.explanations["lime"]
    assert np.array_equal(e.attribution, direct.attribution) and np.array_equal(e.segments, direct.segments)
    assert e.params == direct.params and e.extras["top_positive"] == direct.extras["top_positive"]
    cam = gradcam.explain(detector, image)
    assert np.allclose(b.explanations["gradcam"].attribution, cam.attribution)
    curve = faithfulness.deletion_curve(detector, image, direct, seed=7, n_segments=30)
    assert np.array_equal(b.deletion["lime"].explanation_curve, curve.explanation_curve)
    assert b.deletion["lime"].auc_random == curve.auc_random
    assert b.stability["seeds"] == [7, 8, 9] and "explanations" not in b.stability
    assert 0.0 <= b.stability["mean_jaccard"] <= 1.0


def test_cache_reuses_every_step(detector, face, monkeypatch):
    image = quadrant_image(64)
    cache = pipeline.memory_cache()
    first = pipeline.run(detector, image, params=FAST, cache=cache)

    def boom(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(lime, "explain", boom)
    monkeypatch.setattr(gradcam, "explain", boom)
    monkeypatch.setattr(faithfulness, "deletion_curve", boom)
    again = pipeline.run(detector, image, params=FAST, cache=cache)
    assert again.explanations["lime"] is first.explanations["lime"]
    assert all(again.deletion[m] is first.deletion[m] for m in first.deletion)
    assert len(face) == 1  # landmarks found once
    with pytest.raises(AssertionError, match="recomputed"):  # other parameters: computed again
        pipeline.run(detector, image, params=dataclasses.replace(FAST, seed=1), cache=cache)

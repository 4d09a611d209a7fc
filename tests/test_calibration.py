"""models.calibration: Platt scaling, reliability data, choosing and saving the operating point, and the
saved threshold used by every verdict (Score, the predict CLI, the explainers)."""

from __future__ import annotations

import io
import json
import math
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest
from conftest import build_oracle_model, build_quadrant_model, make_dataset_dir, save_model
from PIL import Image

import models.calibration as calibration_cli
from models.analysis import calibration as C

# --- pure numbers ------------------------------------------------------------------------------------------


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _logit(p):
    return np.log(p) - np.log1p(-p)


@pytest.fixture(scope="module")
def overconfident():
    """Labels drawn from p_true, and a model three times too confident: p_raw = sigmoid(3 * logit(p_true))."""
    rng = np.random.default_rng(0)
    p_true = rng.uniform(0.02, 0.98, 4000)
    y = (rng.random(4000) < p_true).astype(int)
    return y, _sigmoid(3.0 * _logit(p_true)), p_true


def test_platt_recovers_a_known_miscalibration_and_lowers_ece(overconfident):
    y, p_raw, p_true = overconfident
    cal = C.fit_platt(y, p_raw)
    assert cal["method"] == "platt" and "fallback" not in cal
    assert cal["a"] == pytest.approx(1 / 3, abs=0.05) and cal["b"] == pytest.approx(0.0, abs=0.1)
    p_cal = C.apply(p_raw, cal)
    assert np.abs(p_cal - p_true).max() < 0.05
    before, after = C.reliability(y, p_raw), C.reliability(y, p_cal)
    assert before["ece"] > 0.1 and after["ece"] < 0.03 and after["ece"] < before["ece"] / 3
    assert after["brier"] < before["brier"]
    json.dumps(cal)  # plain floats, storable in the model's JSON


def test_apply_is_monotone_float32_and_identity_without_calibration(overconfident):
    y, p_raw, _ = overconfident
    p = np.sort(np.concatenate([p_raw, [0.0, 1e-12, 0.5, 1 - 1e-12, 1.0]]))
    for cal in ({"method": "platt", "a": 0.3, "b": 0.4}, {"method": "platt", "a": 3.0, "b": -2.0}, C.fit_platt(y, p_raw)):
        out = C.apply(p, cal)
        assert out.dtype == np.float32 and out.shape == p.shape
        assert np.all(np.diff(out) >= 0) and np.all((out >= 0) & (out <= 1))
        # ranking kept: same order as the raw scores wherever those differ enough for float32
        np.testing.assert_allclose(C.invert(C.apply(np.array([0.2, 0.7]), cal), cal), [0.2, 0.7], atol=1e-5)
    np.testing.assert_array_equal(C.apply(p, None), p.astype(np.float32))
    np.testing.assert_array_equal(C.apply(p, {}), p.astype(np.float32))
    np.testing.assert_array_equal(C.apply(p, {"method": "identity"}), p.astype(np.float32))
    assert C.apply(np.zeros((0,), np.float32), {"method": "platt", "a": 2.0, "b": 0.0}).shape == (0,)
    with pytest.raises(ValueError, match="a > 0"):
        C.apply(p, {"method": "platt", "a": -1.0, "b": 0.0})
    with pytest.raises(ValueError, match="method"):
        C.apply(p, {"method": "isotonic"})


def test_platt_falls_back_to_identity_when_not_monotone(overconfident):
    y, p_raw, _ = overconfident
    cal = C.fit_platt(1 - y, p_raw)  # scores anti-correlated with the labels
    assert (cal["a"], cal["b"]) == (1.0, 0.0) and "not monotone" in cal["fallback"]
    with pytest.raises(ValueError, match="both"):
        C.fit_platt([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.raises(ValueError, match="length"):
        C.fit_platt([0, 1], [0.5])
    with pytest.raises(ValueError, match="probabilities"):
        C.fit_platt([0, 1], [0.5, 1.5])


def test_platt_on_separable_scores_stays_finite():
    cal = C.fit_platt([0, 0, 0, 1, 1, 1], [0.0, 0.01, 0.02, 0.98, 0.99, 1.0])
    assert cal["a"] > 0 and math.isfinite(cal["a"]) and math.isfinite(cal["b"])


def test_reliability_matches_sklearn_calibration_curve(overconfident):
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss

    y, p_raw, _ = overconfident
    r = C.reliability(y, p_raw, bins=10)
    frac, mean = calibration_curve(y, p_raw, n_bins=10)
    np.testing.assert_allclose(r["fraction_fake"], frac)
    np.testing.assert_allclose(r["mean_predicted"], mean)
    assert sum(r["count"]) == r["n"] == len(y) and r["bins"] == 10
    assert len(r["bin_lower"]) == len(r["bin_upper"]) == len(r["count"])
    assert all(lo <= m <= hi for lo, m, hi in zip(r["bin_lower"], r["mean_predicted"], r["bin_upper"]))
    assert r["brier"] == pytest.approx(brier_score_loss(y, p_raw))
    ece = sum(c * abs(f - m) for c, f, m in zip(r["count"], r["fraction_fake"], r["mean_predicted"])) / len(y)
    assert r["ece"] == pytest.approx(ece)
    json.dumps(r)
    # perfectly calibrated within each bin: ECE 0
    assert C.reliability([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])["ece"] == pytest.approx(0.0)


def test_threshold_for_recall_is_the_highest_reaching_the_target(overconfident):
    y, p, _ = overconfident
    scores = np.unique(p)
    for target in (0.01, 0.3, 0.5, 0.9, 0.95, 0.999, 1.0):
        t = C.threshold_for_recall(y, p, target)
        assert C.rates_at(y, p, t)["recall"] >= target
        higher = scores[scores > t]
        if len(higher):  # the next score up (and so anything higher) misses the target
            assert C.rates_at(y, p, higher[0])["recall"] < target
    # brute force on a small set with ties
    y2 = np.array([1, 1, 1, 1, 0, 0, 0, 1, 0, 1])
    p2 = np.array([0.9, 0.8, 0.8, 0.4, 0.7, 0.3, 0.8, 0.2, 0.1, 0.6])
    for target in np.linspace(0.05, 1.0, 20):
        best = max(t for t in np.unique(p2) if C.rates_at(y2, p2, t)["recall"] >= target - 1e-12)
        assert C.threshold_for_recall(y2, p2, target) == best
    for bad in (0, -0.1, 1.01, float("nan")):
        with pytest.raises(ValueError):
            C.threshold_for_recall(y, p, bad)
    with pytest.raises(ValueError, match="fake"):
        C.threshold_for_recall([0, 0], [0.1, 0.2], 0.5)


def test_threshold_sweep_and_rates_at_agree(overconfident):
    y, p, _ = overconfident
    s = C.threshold_sweep(y, p)
    assert set(s) == {"threshold", "precision", "recall", "fpr", "accuracy", "flagged"}
    n = len(s["threshold"])
    assert n == len(np.unique(p)) and all(len(v) == n for v in s.values())
    assert np.all(np.diff(s["threshold"]) > 0)
    assert np.all(np.diff(s["recall"]) <= 0) and np.all(np.diff(s["fpr"]) <= 0)
    assert s["recall"][0] == 1.0 and s["fpr"][0] == 1.0
    for i in (0, 1, n // 3, n // 2, n - 1):
        r = C.rates_at(y, p, s["threshold"][i])
        for k in ("precision", "recall", "fpr", "accuracy"):
            assert s[k][i] == pytest.approx(r[k]), k
        assert s["flagged"][i] == r["tp"] + r["fp"]


def test_rates_at_counts():
    r = C.rates_at([1, 1, 0, 0, 1], [0.9, 0.4, 0.6, 0.1, 0.5], 0.5)
    assert (r["tp"], r["fp"], r["tn"], r["fn"], r["n"]) == (2, 1, 1, 1, 5)
    assert r["precision"] == pytest.approx(2 / 3) and r["recall"] == pytest.approx(2 / 3)
    assert r["fpr"] == pytest.approx(0.5) and r["accuracy"] == pytest.approx(0.6)
    assert C.rates_at([0, 0], [0.1, 0.2], 0.5)["precision"] == 0.0  # nothing flagged: 0, not an error


# --- saving it and loading it back -------------------------------------------------------------------------


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
    """tmp assets folder with the 32 px oracle model (P(fake) known from the image) and its JSON."""
    from models.detectors import registry as det

    folder = tmp_path / "assets"
    save_model(build_oracle_model(32), folder, "oracle", input_size=32)
    meta = json.loads((folder / "oracle.json").read_text())
    meta["metrics"] = {"test": {"overall": {"roc_auc": 1.0}}}
    (folder / "oracle.json").write_text(json.dumps(meta))
    monkeypatch.setattr(det, "ASSETS_DIR", folder)
    monkeypatch.setattr(det, "_CACHE", {})
    return folder


def grey(value: int, size: int = 32) -> np.ndarray:
    """A uniform image: the oracle scores it sigmoid(20 * (value / 255 - 0.6)); 164 -> P(fake) ~ 0.70."""
    return np.full((size, size, 3), value, np.uint8)


def test_save_operating_point_round_trips_and_keeps_other_metadata(model_dir):
    import models

    d0 = models.load_model("oracle")
    assert d0.threshold == 0.5 and models.load_model("oracle") is d0
    op = C.save_operating_point("oracle", 0.9, target_recall=0.8, by="test")
    assert op["threshold"] == 0.9 and op["target_recall"] == 0.8 and op["split"] == "val" and op["by"] == "test"
    assert "T" in op["saved"]
    meta = json.loads((model_dir / "oracle.json").read_text())
    assert meta["operating_point"] == op
    assert meta["name"] == "oracle" and meta["input_size"] == 32 and meta["metrics"]["test"]["overall"]["roc_auc"] == 1.0
    assert not [p for p in model_dir.iterdir() if p.name.endswith(".tmp")]  # the temp file was moved in place
    d1 = models.load_model("oracle")  # cache keyed on the JSON: no restart needed
    assert d1 is not d0 and d1.threshold == 0.9 and d1.operating_point == op
    assert d1.keras_model is d0.keras_model  # only the settings changed: the weights were not reloaded
    assert models.load_model("oracle") is d1
    assert d1.verdict(0.7) == "real" and d0.verdict(0.7) == "fake"
    # by path, and by name in an explicit assets folder
    assert C.save_operating_point(model_dir / "oracle.keras", 0.25)["threshold"] == 0.25
    assert C.save_operating_point("oracle", 0.3, assets_dir=model_dir)["by"] == "page"
    assert models.load_model("oracle").threshold == 0.3


@pytest.mark.parametrize("bad", [0, 1, 0.0, 1.0, -0.2, 1.5, float("nan"), float("inf"), "x", None, True])
def test_save_operating_point_validates(model_dir, bad):
    before = (model_dir / "oracle.json").read_text()
    with pytest.raises(ValueError):
        C.save_operating_point("oracle", bad)
    assert (model_dir / "oracle.json").read_text() == before


def test_save_operating_point_errors(model_dir):
    from models import ModelNotFoundError

    with pytest.raises(ModelNotFoundError):
        C.save_operating_point("nope", 0.5)
    with pytest.raises(ValueError, match="target recall"):
        C.save_operating_point("oracle", 0.5, target_recall=1.5)


def test_restore_operating_point_undoes_a_save(model_dir):
    """Undo of the Models page: the block saved before goes back exactly; none saved before = no block."""
    import models

    original = (model_dir / "oracle.json").read_text()
    assert C.current_operating_point("oracle") is None
    C.save_operating_point("oracle", 0.9)
    assert models.load_model("oracle").threshold == 0.9
    assert C.restore_operating_point("oracle", None) is None
    assert json.loads((model_dir / "oracle.json").read_text()) == json.loads(original)  # block removed, rest kept
    assert models.load_model("oracle").threshold == 0.5
    first = C.save_operating_point("oracle", 0.3, target_recall=0.8)
    previous = C.current_operating_point("oracle")
    assert previous == first
    C.save_operating_point("oracle", 0.7)
    assert models.load_model("oracle").threshold == 0.7
    assert C.restore_operating_point("oracle", previous) == first
    assert json.loads((model_dir / "oracle.json").read_text())["operating_point"] == first  # saved time kept too
    assert models.load_model("oracle").threshold == 0.3
    with pytest.raises(ValueError):
        C.restore_operating_point("oracle", {"threshold": 1.5})
    assert models.load_model("oracle").threshold == 0.3


def test_a_corrupt_operating_point_or_calibration_is_one_clear_error(model_dir):
    import models

    meta = json.loads((model_dir / "oracle.json").read_text())
    for block in ({"operating_point": {"threshold": 1.7}}, {"calibration": {"method": "platt", "a": -2, "b": 0}},
                  {"calibration": {"method": "magic"}}):
        (model_dir / "oracle.json").write_text(json.dumps({**meta, **block}))
        with pytest.raises(models.ModelNotFoundError, match="bad metadata in oracle.json"):
            models.load_model("oracle")


def test_predict_is_calibrated_and_predict_raw_is_not(model_dir):
    import models

    images = [grey(v) for v in (60, 150, 164, 170, 240)]
    raw = models.load_model("oracle").predict(images)
    cal = {"method": "platt", "a": 0.5, "b": -0.3}
    meta = json.loads((model_dir / "oracle.json").read_text())
    (model_dir / "oracle.json").write_text(json.dumps({**meta, "calibration": cal}))
    d = models.load_model("oracle")
    assert d.calibration == cal
    np.testing.assert_allclose(d.predict_raw(images), raw, atol=1e-6)
    p = d.predict(images)
    assert p.dtype == np.float32 and p.shape == (5,)
    np.testing.assert_allclose(p, C.apply(raw, cal), atol=1e-6)
    assert np.abs(p - raw).max() > 0.05  # it did change the numbers
    np.testing.assert_array_equal(np.argsort(p), np.argsort(raw))  # not the ranking
    x = d.preprocess(images)
    np.testing.assert_allclose(d.predict_batch(x), p, atol=1e-6)
    np.testing.assert_allclose(d.predict_batch_raw(x), raw, atol=1e-6)


def test_spectrum_detector_is_calibrated_too():
    from models.detectors.spectrum import BINS, SpectrumDetector

    rng = np.random.default_rng(0)
    det = SpectrumDetector("s", np.zeros(BINS), np.ones(BINS), rng.normal(0, 0.05, BINS), [0.1],
                           metadata={"calibration": {"method": "platt", "a": 2.0, "b": 0.5},
                                     "operating_point": {"threshold": 0.8}})
    images = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    raw = det.predict_raw(images)
    np.testing.assert_allclose(det.predict(images), C.apply(raw, det.calibration), atol=1e-6)
    assert det.threshold == 0.8


def test_score_and_predict_cli_use_the_saved_threshold(model_dir, tmp_path):
    import models
    from models.predict import main as predict_main
    from models.scoring.stream import score_paths

    path = tmp_path / "grey.png"
    Image.fromarray(grey(164)).save(path)

    def run_cli(*extra):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            rc = predict_main(["--model", "oracle", "--crop", "none", *extra, str(path)])
        return rc, out.getvalue()

    (score,) = score_paths(models.load_model("oracle"), [str(path)], crop="none")
    assert score.p_fake == pytest.approx(0.70, abs=0.01) and score.threshold == 0.5 and score.verdict == "fake"
    rc, text = run_cli()
    assert rc == 0 and text.split("\t")[1] == "fake"

    C.save_operating_point("oracle", 0.9)
    (score,) = score_paths(models.load_model("oracle"), [str(path)], crop="none")
    assert score.threshold == 0.9 and score.verdict == "real"
    assert score.to_dict()["threshold"] == 0.9 and score.to_dict()["verdict"] == "real"
    rc, text = run_cli()
    assert rc == 0 and text.split("\t")[1] == "real"
    rc, text = run_cli("--json")
    row = json.loads(text)
    assert row["verdict"] == "real" and row["threshold"] == 0.9 and row["p_fake"] == pytest.approx(0.70, abs=0.01)


# --- the explainers ----------------------------------------------------------------------------------------


def test_resolve_target_honours_the_threshold():
    from explain.base import resolve_target

    assert resolve_target("verdict", 0.7) == "fake"
    assert resolve_target("verdict", 0.7, 0.9) == "real"
    assert resolve_target("verdict", 0.9, 0.9) == "fake"
    assert resolve_target("fake", 0.1, 0.9) == "fake" and resolve_target("real", 0.99, 0.2) == "real"


@pytest.fixture(scope="module")
def strict_quadrant():
    """The quadrant model with a calibration and a 0.95 operating point."""
    from models.detectors.base import KerasDetector

    meta = {"input_size": 32, "calibration": {"method": "platt", "a": 0.3, "b": 0.0},
            "operating_point": {"threshold": 0.95}}
    return KerasDetector(build_quadrant_model(32), name="strict", metadata=meta)


def test_explainers_report_calibrated_p_and_use_the_threshold(strict_quadrant):
    from conftest import quadrant_image

    from explain import activations, gradcam, lime

    image = quadrant_image(64, "top_left")
    p = float(strict_quadrant.predict([image])[0])
    raw = float(strict_quadrant.predict_raw([image])[0])
    assert 0.5 < p < 0.95 and abs(p - raw) > 0.01  # "fake" at 0.5, "real" at the saved 0.95
    for e in (gradcam.explain(strict_quadrant, image), activations.explain(strict_quadrant, image),
              lime.explain(strict_quadrant, image, num_samples=40, n_segments=16)):
        assert e.p_fake == pytest.approx(p, abs=1e-5), e.method
        assert e.target == "real", e.method


def test_gradcam_map_is_unchanged_by_calibration(strict_quadrant):
    from conftest import quadrant_image

    from explain import gradcam
    from models.detectors.base import KerasDetector

    plain = KerasDetector(strict_quadrant.keras_model, name="plain", metadata={"input_size": 32})
    image = quadrant_image(64, "top_left")
    a = gradcam.explain(strict_quadrant, image, target="fake")
    b = gradcam.explain(plain, image, target="fake")
    np.testing.assert_allclose(a.attribution, b.attribution, atol=1e-6)
    assert a.p_fake != pytest.approx(b.p_fake)


def test_explain_cli_summary_has_the_threshold(tmp_path, monkeypatch):
    from explain.cli import main as explain_main
    from models.detectors import registry as det

    monkeypatch.setattr(det, "_CACHE", {})
    path = save_model(build_quadrant_model(32), tmp_path / "m", "quadrant", input_size=32)
    C.save_operating_point(path, 0.9)
    image = tmp_path / "grey.png"
    Image.fromarray(grey(171)).save(image)  # the quadrant model: sigmoid(40 * (171 / 255 - 0.6) - 2) ~ 0.70
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        rc = explain_main([str(image), "--model", str(path), "--crop", "none", "--method", "activations",
                           "--no-deletion", "--json", "--out", str(tmp_path / "out")])
    assert rc == 0
    s = json.loads(out.getvalue())
    assert s["threshold"] == 0.9 and s["verdict"] == "real" and s["p_fake"] == pytest.approx(0.70, abs=0.01)
    assert s["calibrated"] is False


# --- calibrating a model -----------------------------------------------------------------------------------


def _run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = calibration_cli.main(argv)
    return rc, out.getvalue(), err.getvalue()


def test_calibration_cli_writes_the_calibration_block(model_dir, tmp_path):
    import models

    data = make_dataset_dir(tmp_path / "data", splits=("val",), n_per_class=10, size=32)
    rc, out, err = _run_cli(["oracle", "--data", str(data), "--target-recall", "0.9"])
    assert rc == 0, err
    assert out.startswith("oracle: a=") and "ECE" in out and "threshold" in out
    meta = json.loads((model_dir / "oracle.json").read_text())
    cal = meta["calibration"]
    assert {"method", "a", "b", "split", "n", "ece_before", "ece_after", "brier_before", "brier_after"} <= set(cal)
    assert cal["method"] == "platt" and cal["split"] == "val" and cal["n"] == 20 and cal["a"] > 0
    assert all(math.isfinite(cal[k]) for k in ("a", "b", "ece_before", "ece_after", "brier_before", "brier_after"))
    op = meta["operating_point"]
    assert op["by"] == "cli" and op["split"] == "val" and op["target_recall"] == 0.9 and 0 < op["threshold"] < 1
    assert meta["metrics"]["test"]["overall"]["roc_auc"] == 1.0 and meta["name"] == "oracle"  # the rest is kept

    d = models.load_model("oracle")
    from models.data.files import list_files

    files = list_files(data, "val")
    p = d.predict([np.asarray(Image.open(f).convert("RGB")) for f in files.paths])
    raw = d.predict_raw([np.asarray(Image.open(f).convert("RGB")) for f in files.paths])
    np.testing.assert_allclose(p, C.apply(raw, cal), atol=1e-6)
    assert d.threshold == op["threshold"] and C.rates_at(files.y, p, d.threshold)["recall"] >= 0.9


def test_recalibrating_moves_an_existing_operating_point(model_dir, tmp_path):
    import models

    data = make_dataset_dir(tmp_path / "data", splits=("val",), n_per_class=10, size=32, seed=3)
    images, y = C.decode_split(data, "val")
    raw = models.load_model("oracle").predict_raw(images)
    t_raw = float(np.sort(raw)[7])  # some threshold between scores
    C.save_operating_point("oracle", t_raw)
    before = raw >= t_raw
    r = C.calibrate_model("oracle", data)
    d = models.load_model("oracle")
    assert d.threshold == r["operating_point"]["threshold"] and r["operating_point"]["moved_from"] == t_raw
    np.testing.assert_array_equal(d.predict(images) >= d.threshold, before)  # the same verdicts on val


def test_calibration_cli_errors(model_dir, tmp_path):
    data = make_dataset_dir(tmp_path / "data", splits=("val",), n_per_class=3, size=32)
    for argv in ([], ["oracle", "--all", "--data", str(data)], ["nope", "--data", str(data)],
                 ["oracle", "--data", str(tmp_path / "missing")],
                 ["oracle", "--data", str(data), "--target-recall", "1.5"]):
        rc, out, err = _run_cli(argv)
        assert rc == 2 and out == "", argv
        assert err.startswith("error: ") and err.count("\n") == 1, (argv, err)
    assert "calibration" not in json.loads((model_dir / "oracle.json").read_text())


def test_calibrate_model_sharpens_an_underconfident_model_and_keeps_a_perfect_one(tmp_path):
    import models

    data = make_dataset_dir(tmp_path / "data", splits=("val",), n_per_class=20, size=32, seed=5)
    timid = build_oracle_model(32)
    w, b = timid.layers[-1].get_weights()
    timid.layers[-1].set_weights([w / 10, b / 10])  # P(fake) = sigmoid(2 * (mean - 0.6)): always near 0.5
    path = save_model(timid, tmp_path / "m", "timid", input_size=32)
    r = C.calibrate_model(path, data)
    assert "fallback" not in r and r["a"] > 1  # sharpened
    assert r["ece_after"] < r["ece_before"] and r["brier_after"] < r["brier_before"]
    assert r["operating_point"] is None and models.load_model(path, cache=False).calibration["a"] == r["a"]

    sharp = save_model(build_oracle_model(32), tmp_path / "m", "sharp", input_size=32)  # already ~perfect
    r = C.calibrate_model(sharp, data)
    assert (r["a"], r["b"]) == (1.0, 0.0) and "Brier" in r["fallback"] and r["ece_after"] == r["ece_before"]

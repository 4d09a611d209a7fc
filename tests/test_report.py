"""explain.report (image, batch, provenance): self-contained HTML reports of one image and of a batch (synthetic models only)."""

from __future__ import annotations

import base64
import hashlib
import io
import re

import numpy as np
import pytest
from conftest import build_quadrant_model, quadrant_image, save_model
from PIL import Image

from explain import pipeline
from explain.params import Params
from explain.regions import Landmarks
from explain.report.batch import batch_report, normalize_row
from explain.report.image import image_report
from explain.report.provenance import model_version
from models.detectors.base import Detector
from models.detectors.registry import load_model

LIME = {"num_samples": 200, "n_segments": 50}
PARAMS = Params().with_lime(LIME)
IMG_SRC = re.compile(r'<img[^>]*\ssrc="data:image/png;base64,([A-Za-z0-9+/=]+)"')


class BrightnessDetector(Detector):
    """Not a neural network (like the spectrum baseline): P(fake) from the top-left quadrant's brightness."""

    supports_gradcam = False
    supports_activations = False

    def __init__(self, name="bright_stats"):
        self.name, self.input_size, self.metadata = name, 32, {"architecture": "stats"}

    def predict_raw(self, images, batch_size=256):
        x = self.preprocess(images)
        top_left = x[:, :16, :16].mean(axis=(1, 2, 3))
        return (1 / (1 + np.exp(-20 * (top_left - 0.6)))).astype(np.float32)


@pytest.fixture(scope="module")
def saved_quadrant(tmp_path_factory):
    """The quadrant model saved to a file (so it has a sha256), loaded the way the app loads models."""
    path = save_model(build_quadrant_model(32), tmp_path_factory.mktemp("report_models"), "quadrant", 32)
    return load_model(path), path


@pytest.fixture(scope="module")
def full_report(saved_quadrant):
    det, _ = saved_quadrant
    steps = []
    html = image_report(quadrant_image(64), model=det, models=[det, BrightnessDetector()], params=PARAMS,
                               crop_info={"image": "face<script>alert(1)</script>.png", "mode": "auto"},
                               progress=lambda f, m: steps.append((f, m)))
    return html, steps


def images_of(html: str) -> list[Image.Image]:
    out = []
    for data in IMG_SRC.findall(html):
        raw = base64.b64decode(data, validate=True)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        im = Image.open(io.BytesIO(raw))
        im.load()
        assert im.format == "PNG" and im.size[0] > 0
        out.append(im)
    return out


def assert_self_contained(html: str):
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    low = html.lower()
    assert "<script" not in low
    assert not re.search(r'(src|href)\s*=\s*["\']?\s*(https?:)?//', low), "external resource"
    assert "http://" not in low and "https://" not in low
    assert "<link" not in low and "@import" not in low and "url(" not in low
    assert all(src.startswith("data:image/png;base64,") for src in re.findall(r'src="([^"]*)"', html))


def test_image_report_is_self_contained_with_valid_pngs(full_report):
    html, steps = full_report
    assert_self_contained(html)
    pngs = images_of(html)
    # crop, model input, LIME, Grad-CAM, 2 deletion curves (no face in the synthetic image: no region figures)
    assert len(pngs) >= 6
    assert steps and steps[-1][0] == 1.0 and all(0 <= f <= 1 for f, _ in steps)


def test_image_report_sections(full_report, saved_quadrant):
    html, _ = full_report
    det, path = saved_quadrant
    for heading in ("Image", "Verdicts of all models", "Summary", "LIME", "Grad-CAM", "Facial regions",
                    "Faithfulness: deletion curves", "Parameters", "Model versions", "Provenance"):
        assert f"<h2>{heading}</h2>" in html, heading
    # a verdict row per model, with P(fake), verdict and threshold
    verdicts = html.split("<h2>Verdicts of all models</h2>")[1].split("</table>")[0]
    assert "<b>quadrant</b> (explained)" in verdicts and "bright_stats" in verdicts
    assert verdicts.count("<tr>") == 3 and "FAKE" in verdicts and "0.500" in verdicts
    # parameters: LIME's as used, the target, the crop
    params = html.split("<h2>Parameters</h2>")[1].split("</section>")[0]
    assert "LIME num_samples</th><td>200<" in params and "LIME n_segments</th><td>50<" in params
    assert "target asked</th><td>verdict<" in params and "target explained</th><td>fake<" in params
    assert "crop: mode</th><td>auto<" in params and "deletion curve (lime)" in params
    # model versions: sha256 of the file, first 12 shown, all 64 in the title
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert model_version(det)["sha256"] == sha
    assert f'<code title="{sha}">{sha[:12]}</code>' in html and "quadrant.keras" in html
    assert re.search(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", html)
    assert "numpy " in html and "keras " in html  # library versions


def test_malicious_file_name_is_escaped(full_report):
    html, _ = full_report
    assert "<script>" not in html
    assert "face&lt;script&gt;alert(1)&lt;/script&gt;.png" in html


def test_no_face_says_so(full_report):
    html, _ = full_report
    regions = html.split("<h2>Facial regions</h2>")[1].split("</section>")[0]
    assert "No face found" in regions and "<img" not in regions
    summary = html.split("<h2>Summary</h2>")[1].split("</section>")[0]
    assert "no face found, so no region breakdown" in summary and "<img" not in summary


def test_model_version_fields(saved_quadrant):
    det, path = saved_quadrant
    v = model_version(det)
    assert v["name"] == "quadrant" and v["file"] == "quadrant.keras" and v["input_size"] == 32
    assert v["threshold"] == 0.5 and v["calibrated"] is False and v["operating_point"] is False
    assert v["test_roc_auc"] is None and v["created"] is None
    det2 = BrightnessDetector()
    det2.metadata = {"created": "2026-01-01T00:00:00+00:00", "metrics": {"test": {"overall": {"roc_auc": 0.9}}},
                     "calibration": {"method": "platt", "a": 1.0, "b": 0.0}, "operating_point": {"threshold": 0.3}}
    v2 = model_version(det2)
    assert v2["sha256"] is None and v2["test_roc_auc"] == 0.9 and v2["calibrated"] is True
    assert v2["calibration"] == "platt" and v2["threshold"] == 0.3 and v2["operating_point"] is True


def test_detector_without_gradcam_says_it_does_not_apply():
    det = BrightnessDetector()
    html = image_report(quadrant_image(64), model=det, models=[], params=Params().with_lime(LIME, deletion=False))
    assert_self_contained(html)
    cam = html.split("<h2>Grad-CAM</h2>")[1].split("</section>")[0]
    assert "does not apply" in cam and "<img" not in cam
    assert "Deletion curves were not computed" in html
    assert html.split("<h2>Verdicts of all models</h2>")[1].split("</table>")[0].count("<tr>") == 2
    assert "— (not from a file)" in html


def test_precomputed_explanations_and_figures_are_reused(monkeypatch, quadrant_detector):
    """With the cache of the caller's pipeline run, the report recomputes nothing and reuses given figures."""
    from explain import gradcam, lime, regions, render
    from explain.metrics import stability

    image = quadrant_image(64)
    lm = Landmarks(box=(10.0, 8.0, 44.0, 50.0), left_eye=(22.0, 26.0), right_eye=(42.0, 26.0), nose=(32.0, 36.0),
                   mouth_left=(24.0, 46.0), mouth_right=(40.0, 46.0))
    monkeypatch.setattr(regions, "detect_landmarks", lambda img: lm)
    monkeypatch.setattr(stability, "stability", lambda *a, **k: {"mean_jaccard": 0.2, "sets": [[1], [2], [3]]})
    params = Params().with_lime(LIME, stability=True)
    cache = pipeline.memory_cache()
    bundle = pipeline.run(quadrant_detector, image, methods=("lime", "gradcam", "regions"), params=params,
                          cache=cache)
    marker = render.png(render.deletion_plot(bundle.deletion["lime"]))

    def boom(*a, **k):
        raise AssertionError("recomputed")

    for module, name in ((lime, "explain"), (gradcam, "explain"), (regions, "detect_landmarks"),
                         (stability, "stability")):
        monkeypatch.setattr(module, name, boom)
    monkeypatch.setattr("explain.metrics.faithfulness.deletion_curve", boom)
    html = image_report(image, model=quadrant_detector, models=[], params=params, cache=cache,
                        figures={"deletion_lime": marker, "deletion_gradcam": marker})
    assert_self_contained(html)
    assert base64.b64encode(marker).decode() in html
    regions_html = html.split("<h2>Facial regions</h2>")[1].split("</section>")[0]
    assert "No face found" not in regions_html and "left eye" in regions_html and regions_html.count("<img") == 3
    assert "Unstable" in html and "top-5 agreement across 3 seeds" in html
    summary = html.split("<h2>Summary</h2>")[1].split("</section>")[0]
    assert 'alt="region Shapley values waterfall"' in summary and "Region Shapley values" in summary
    lime_row = next(r for r in summary.split("<tr>") if "LIME" in r)
    assert '<span class="untrusted">' in lime_row and "unstable" in lime_row  # greyed, with the reason
    assert "left eye (viewer&#x27;s left)" in html
    images_of(html)


# --- batch --------------------------------------------------------------------------------------------

def batch_rows():
    return [
        {"path": "a.png", "face": "1", "box_x": "3", "crop": "face", "p_fake": "0.40", "verdict": "real",
         "model": "quadrant", "error": ""},
        {"path": "b.png", "face": "1", "crop": "face", "p_fake": "0.97", "verdict": "fake", "model": "quadrant",
         "error": ""},
        {"path": "<b>evil</b>.png", "face": "", "crop": "", "p_fake": "", "verdict": "", "model": "quadrant",
         "error": "cannot read <b>evil</b>.png: not an image"},
        {"path": "c.png", "face": 2, "crop": "center", "p_fake": 0.75, "verdict": "fake", "model": "quadrant",
         "error": None},
        {"path": "d.png", "face": "1", "crop": "face", "p_fake": "0.10", "verdict": "real", "model": "quadrant",
         "error": float("nan")},
    ]


def test_batch_report_orders_top_n_and_has_histogram(quadrant_detector):
    loaded = []

    def load(row):
        loaded.append(row["path"])
        return quadrant_image(64, "top_left" if row["p_fake"] > 0.5 else "bottom_right")

    html = batch_report(batch_rows(), load, model=quadrant_detector, top_n=2, params=PARAMS)
    assert_self_contained(html)
    assert loaded == ["b.png", "c.png"]  # highest P(fake) first, only the top 2
    assert html.index("1. b.png") < html.index("2. c.png") and "a.png" not in html.split("Top 2")[1]
    assert "P(fake) histogram" in html and len(images_of(html)) >= 1 + 2 * 3  # histogram + crop, LIME, Grad-CAM
    summary = html.split("<h2>Summary</h2>")[1].split("</section>")[0]
    assert "images</th><td>5<" in summary and "crops scored</th><td>4<" in summary and "errors</th><td>1<" in summary
    assert "verdict fake</th><td>2<" in summary and "verdict real</th><td>2<" in summary
    assert "&lt;b&gt;evil&lt;/b&gt;.png: not an image" in summary and "<b>evil</b>" not in html
    assert "quadrant" in html.split("<h2>Model version</h2>")[1]


def test_batch_report_load_failure_is_shown(quadrant_detector):
    def load(row):
        raise OSError(f"{row['path']} vanished")

    html = batch_report(batch_rows(), load, model=quadrant_detector, top_n=1, params=PARAMS)
    assert "Could not load this crop: OSError: b.png vanished" in html


def test_batch_report_spectrum_like_model_has_no_gradcam():
    html = batch_report(batch_rows()[:2], lambda r: quadrant_image(64), model=BrightnessDetector(), top_n=5,
                               params=PARAMS)
    assert "Grad-CAM does not apply" in html and html.count('alt="LIME panels"') == 2


def test_empty_batch():
    html = batch_report([], lambda r: pytest.fail("nothing to load"))
    assert_self_contained(html)
    assert "This batch is empty" in html and "Top " not in html


def test_all_error_batch():
    rows = [{"path": f"x{i}.png", "face": "", "p_fake": "", "verdict": "", "model": "m", "error": f"bad {i}"}
            for i in range(7)]
    html = batch_report(rows, lambda r: pytest.fail("nothing to load"), model="no_such_model_xyz")
    assert_self_contained(html)
    assert "No crop of this batch could be scored: 7 of 7 rows are errors" in html
    assert "bad 0" in html and "bad 4" in html and "bad 5" not in html and "and 2 more" in html


def test_normalize_row():
    r = normalize_row({"path": " a.png ", "face": "2", "p_fake": " 0.25 ", "verdict": "real", "model": "m",
                              "error": "  "})
    assert r["p_fake"] == 0.25 and r["face"] == 2 and r["error"] is None and r["path"] == "a.png"
    assert normalize_row({"p_fake": "nan", "error": float("nan")})["p_fake"] is None


def test_rows_from_models_batch_are_accepted():
    batch = pytest.importorskip("models.scoring.batch")
    row = batch.Row("x.png", 1, 1, 2, 3, 4, "face", 0.8, "fake", "quadrant")
    r = normalize_row(row)
    assert r["p_fake"] == 0.8 and r["face"] == 1 and r["error"] is None and r["crop"] == "face"
    assert (r["box_x"], r["box_y"], r["box_w"], r["box_h"]) == (1, 2, 3, 4)

"""Streamlit AppTests for every page: Home and Predict (sample path, upload path, bad upload, compare)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO

TIMEOUT = 180


def app() -> AppTest:
    return AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)


def predict_page() -> AppTest:
    at = app()
    at.run()
    at.switch_page("pages/predict.py").run()
    assert not at.exception, at.exception
    return at


def sample_page(prefix: str = "Astronaut") -> AppTest:
    """Predict in Sample mode on the built-in sample whose label starts with ``prefix``."""
    at = predict_page()
    at.radio[0].set_value("Sample").run()
    box = at.selectbox(key="predict_sample")
    box.select_index([i for i, o in enumerate(box.options) if o.startswith(prefix)][0]).run()
    assert not at.exception, at.exception
    return at


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def verdict_text(at: AppTest) -> str:
    texts = [m.value for m in at.markdown if "Verdict" in m.value]
    assert texts, "no verdict shown"
    return texts[0]


def test_home_lists_installed_models_with_metrics():
    from models import list_models

    at = app()
    at.run()
    assert not at.exception
    assert at.title[0].value == "Deepfake Lens"
    table = at.dataframe[0].value
    assert set(table["model"]) == set(list_models())
    assert table["test ROC AUC"].notna().all()
    assert table["default"].sum() <= 1
    assert any("signal, not proof" in m.value for m in at.markdown)
    # beside the in-distribution test AUC: the default recipe's mean AUC on sources held out of training
    from models.analysis.catalog import default_generalisation, generalisation_sentence

    g = default_generalisation()
    assert g is not None and g["model"] in set(table["model"])
    sentence = [m.value for m in at.markdown if "never saw in training" in m.value]
    assert sentence and generalisation_sentence(g) in sentence[0]
    assert f"{g['mean_auc']:.3f}" in sentence[0] and f"{g['test_auc']:.3f}" in sentence[0]


def test_predict_opens_on_the_demo_pair_read_by_detector_v2_with_detector_v1_beside():
    """Issue 14: the first screen is the astronaut beside a fake made from her at run time; detector_v2 (the
    model the demo is made for, labelled so) calls the fake fake; v1's reading sits beside it."""
    from models import load_model
    from models.analysis import demo

    at = predict_page()
    assert at.radio[0].value == "Demo pair"
    assert at.sidebar.selectbox[0].value == "detector_v2"
    assert any("demonstration, not a test" in i.value and "the mouth" in i.value for i in at.info)
    tables = [d.value for d in at.dataframe if list(d.value.columns) == ["model", "P(fake)", "verdict"]]
    assert len(tables) == 2  # the real photo, then the fake
    pair = demo.make_demo()
    for table, pixels in zip(tables, (pair.real, pair.fake)):
        assert list(table["model"]) == ["detector_v2", "detector_v1"]
        for _, row in table.iterrows():
            expected = demo.read(load_model(row["model"]), pixels)
            assert row["P(fake)"] == pytest.approx(expected.p_fake, abs=1e-5)
            assert row["verdict"] == expected.label
    fake_v2 = tables[1].iloc[0]
    assert fake_v2["verdict"] == "fake"  # confidently: not "unsure (leans fake)"
    assert any("unsure" in c.value and "not a verdict" in c.value for c in at.caption)
    # below the pair: the closer look opens on the demo fake, with its edit named
    assert at.radio(key="predict_demo_pick").value == "the demo fake"
    assert verdict_text(at).startswith("### Verdict: :red-background[FAKE]")
    assert any("Edited here: the mouth" in c.value for c in at.caption)
    at.radio(key="predict_demo_pick").set_value("the astronaut").run()
    assert not at.exception, at.exception
    assert any("Ground truth: **real**" in c.value for c in at.caption)


def test_predict_demo_typicality_counts_each_models_catches():
    at = predict_page()
    at.toggle(key="predict_typical").set_value(True).run()
    assert not at.exception, at.exception
    table = [d.value for d in at.dataframe if "caught" in d.value.columns][0]
    assert list(table["model"]) == ["detector_v2", "detector_v1"]
    assert (table["fake"] + table["unsure"] + table["real"] == table["n"]).all()
    assert table["n"].iloc[0] == 16


def test_predict_explain_button_hands_the_image_and_its_edit_to_explain():
    at = predict_page()
    at.button(key="predict_to_explain").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Explain"
    assert at.radio(key="explain_mode").value == "From Predict"
    assert at.selectbox(key="explain_model").value == "detector_v2"  # the model the verdict came from
    assert any("Edited here: the mouth" in c.value for c in at.caption)


def test_predict_sample_shows_verdict_and_gauge():
    at = sample_page()
    assert at.sidebar.selectbox[0].value == "detector_v1"  # outside the demo: the shipped default
    text = verdict_text(at)
    assert ("FAKE" in text) != ("REAL" in text)
    p = float(at.metric[0].value.rstrip("%")) / 100
    assert 0.0 <= p <= 1.0
    # The gauge is a progress bar at the same P(fake).
    assert abs(at.get("progress")[0].value - round(p * 100)) <= 1
    # Original and model-resolution views are both shown.
    assert len(at.get("image")) >= 2


def test_predict_upload_path():
    at = predict_page()
    at.radio[0].set_value("Upload").run()
    assert any("Upload a face image" in i.value for i in at.info)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, size=(80, 80, 3), dtype=np.uint8)
    at.file_uploader[0].upload("face.png", png_bytes(img), "image/png").run()
    assert not at.exception, at.exception
    assert verdict_text(at)
    assert not at.error


def test_predict_bad_upload_shows_one_line_error():
    at = predict_page()
    at.radio[0].set_value("Upload").run()
    at.file_uploader[0].upload("broken.jpg", b"this is not an image", "image/jpeg").run()
    assert not at.exception
    assert len(at.error) == 1
    msg = at.error[0].value
    assert "broken.jpg" in msg and "\n" not in msg and "Traceback" not in msg
    assert not [m for m in at.markdown if "Verdict" in m.value]


def test_predict_uploader_takes_any_file_and_says_plainly_why_a_pdf_is_not_an_image():
    """Issue 14: a PDF is not refused by extension (a silent red chip); intake's plain line is shown, and
    the decoder's own words sit in a "Technical detail" expander."""
    at = predict_page()
    at.radio[0].set_value("Upload").run()
    assert list(at.file_uploader[0].proto.type) == []  # no extension filter in the browser
    pdf = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    at.file_uploader[0].upload("scan.pdf", pdf, "application/pdf").run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["scan.pdf: this is a PDF document, not an image; export the page as "
                                           "PNG or JPEG"]
    details = [x for x in at.expander if x.label == "Technical detail"]
    assert len(details) == 1
    code = [c.value for c in details[0].code]
    assert len(code) == 1 and "cannot identify image file" in code[0] and "%PDF" in code[0]
    assert not [m for m in at.markdown if "Verdict" in m.value]


def test_predict_compare_all_models_matches_single_predictions():
    from models import list_models, load_model
    from models.analysis.catalog import ASTRONAUT, load_sample
    from models.scoring.stream import analyse

    at = sample_page()
    at.sidebar.toggle[0].set_value(True).run()
    assert not at.exception
    table = [d.value for d in at.dataframe if "threshold" in d.value.columns][0]
    assert list(table["model"]) == list_models()
    crop = analyse(load_sample(ASTRONAUT), "auto")[0][0][1]  # the astronaut's face, cropped as the data was
    for _, row in table.iterrows():
        det = load_model(row["model"])
        expected = float(det.predict([crop])[0])
        assert row["P(fake)"] == pytest.approx(expected, abs=1e-5)
        assert row["threshold"] == pytest.approx(det.threshold)
        assert row["verdict"] == ("fake" if expected >= det.threshold else "real")


def test_predict_shows_unsure_beside_the_verdict_and_the_map_line(monkeypatch):
    from models import default_model_name
    from models.detectors.base import Detector

    at = sample_page()
    assert any(f"does not apply to {default_model_name()} (it has no map head)" in c.value for c in at.caption)
    assert any("Spread of P(fake) over 6 views" in c.value for c in at.caption)
    monkeypatch.setattr(Detector, "unsure", lambda self, p, s: np.ones(np.shape(p), dtype=bool))
    at.run()
    assert not at.exception, at.exception
    text = verdict_text(at)
    leans = "fake" if "FAKE" in text else "real"
    assert f"unsure (leans {leans})" in text


def test_predict_compare_with_lime_masks_side_by_side():
    from models import list_models

    at = predict_page()
    at.sidebar.toggle[0].set_value(True).run()
    at.sidebar.toggle[1].set_value(True).run()
    assert not at.exception, at.exception
    assert any(s.value == "LIME masks, side by side" for s in at.subheader)
    table = [d.value for d in at.dataframe if any(c.startswith("top-5 overlap") for c in d.value.columns)][0]
    assert set(table["model"]) == set(list_models())
    assert any(b.label == "Download comparison.png" for b in at.get("download_button"))


@pytest.mark.integration
def test_predict_dataset_sample_shows_ground_truth(shared_data, monkeypatch):
    monkeypatch.setenv("DEEPFAKE_DATA", str(shared_data))
    at = sample_page()
    box = at.selectbox(key="predict_sample")
    fakes = [s for s in box.options if s.startswith("test/fake")]
    assert fakes, "dataset test images should be offered as samples"
    box.select_index(box.options.index(fakes[0])).run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Ground truth: **fake**") for c in captions), captions


def test_predict_shows_the_uploads_provenance_beside_the_verdict_and_says_when_they_disagree(monkeypatch):
    """Issue 17: a JPEG with Content Credentials declaring an AI generator: the card names them; when the model
    says real, a warning says the two disagree. A built-in sample has no file: the card says so."""
    from models.detectors.base import Detector
    from tests.c2pa_util import signed_jpeg

    at = sample_page()
    assert any(c.value.startswith("**Provenance**: not available") for c in at.caption)
    monkeypatch.setattr(Detector, "verdict", lambda self, p: "real")
    at.radio[0].set_value("Upload").run()
    face = np.asarray(Image.open(io.BytesIO(png_bytes(np.full((96, 96, 3), 120, np.uint8)))))
    buf = io.BytesIO()
    Image.fromarray(face).save(buf, format="JPEG")
    at.file_uploader[0].upload("gen.jpg", signed_jpeg(buf.getvalue()), "image/jpeg").run()
    assert not at.exception, at.exception
    card = [m.value for m in at.markdown if m.value.startswith("**Provenance**")]
    assert card and "Content Credentials: created by an AI generator (claim generator TestGen AI 1.0)" in card[0]
    assert "signer not verified" in card[0]
    assert [w.value for w in at.warning if "declares itself" in w.value] == [
        "This image declares itself AI-generated, but the model says real."]

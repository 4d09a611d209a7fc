"""AppTest for the Explain page: the Summary tab first, sample with a face, caching of LIME (and of the first
phase's steps), no-face and bad uploads."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import explain.gradcam
import explain.lime
import explain.metrics.stability
import explain.shapley
from explain.metrics.faithfulness import DeletionCurve
from tests.conftest import REPO

TIMEOUT = 300




def explain_page(samples: int = 200, stability: bool = True, deletion: bool = True, model: str = "tuned_cnn"):
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.run()
    # Cheap settings before the page first computes (widgets read their keys from session state).
    at.session_state["lime_samples_stable"] = samples
    at.session_state["lime_stability"] = stability
    at.session_state["deletion"] = deletion
    at.session_state["explain_model"] = model
    at.switch_page("pages/explain.py").run()
    assert not at.exception, at.exception
    return at


def png_bytes(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_explain_sample_shows_every_panel_with_downloads(monkeypatch):
    # Grad-CAM fails its deletion test here: the Summary must grey it, with the reason, after the trusted ones.
    monkeypatch.setattr(DeletionCurve, "useful", property(lambda self: self.method != "gradcam"))
    at = explain_page()
    assert any("Verdict" in m.value for m in at.markdown)
    summary = at.tabs[0]
    assert summary.label == "Summary"
    headline = [m.value for m in summary.markdown if m.value.startswith("#### ")]
    assert len(headline) == 1 and re.match(r"#### (Fake|Real|Unsure \(leans (fake|real)\)) \(P \d\.\d\d\)", headline[0])
    table = next(m.value for m in summary.markdown if m.value.startswith("| Method"))
    rows = table.splitlines()[2:]
    assert rows[0].startswith("| **Region Shapley values** |") and rows[0].endswith("| yes |")
    assert "LIME" in table and "computing" not in table  # the second phase is in
    cam = next(i for i, row in enumerate(rows) if "Grad-CAM" in row)
    assert rows[cam].startswith("| :gray[Grad-CAM] |") and "fails its deletion test" in rows[cam]
    assert all(i < cam for i, row in enumerate(rows) if row.endswith("| yes |"))  # never ranked as trusted
    assert "Grad-CAM" not in headline[0]  # an untrusted method never counts as agreeing
    assert any(c.value == "The manipulation map does not apply to tuned_cnn (it has no map head)."
               for c in summary.caption)
    assert any(d.proto.label == "Download waterfall.png" for d in summary.get("download_button"))
    labels = [m.label for m in at.metric]
    assert "P(fake)" in labels and "Top-5 agreement across 3 seeds" in labels and "Superpixels" in labels
    tab_labels = [t.label for t in at.tabs]
    assert tab_labels == ["Summary", "LIME", "Grad-CAM", "Activations", "Manipulation map", "Regions",
                          "Faithfulness", "Compare models"]
    downloads = {d.proto.label for d in at.get("download_button")}
    for name in ("waterfall", "lime", "gradcam", "activations", "activation_zoom", "regions_map", "regions_lime",
                 "regions_gradcam", "deletion_lime", "deletion_gradcam"):
        assert f"Download {name}.png" in downloads, downloads
    # The astronaut has a face: the region summary names a top region for both methods.
    tops = [c.value for c in at.caption if ": top region" in c.value]
    assert len(tops) == 2
    assert at.selectbox(key="act_layer").value == "conv1"  # the first conv layer, as the study plotted
    assert any("The manipulation map does not apply to tuned_cnn (it has no map head)." == c.value for c in at.caption)
    assert any(m.value.startswith("### Verdict:") for m in at.markdown)


def test_display_options_do_not_recompute_lime(monkeypatch):
    calls, first_phase = [], []
    real = explain.lime.explain

    def counting(*args, **kwargs):
        calls.append(kwargs.get("seed"))
        return real(*args, **kwargs)

    monkeypatch.setattr(explain.lime, "explain", counting)
    for module in (explain.shapley, explain.gradcam):
        monkeypatch.setattr(module, "explain", lambda *a, _real=module.explain, **k: first_phase.append(1) or _real(*a, **k))
    at = explain_page(samples=300, stability=False, deletion=False)
    assert calls, "LIME should run once"
    assert len(first_phase) == 2, "the second phase recomputed the Summary's Shapley values or Grad-CAM"
    n = len(calls)
    at.radio(key="act_order").set_value("index").run()
    at.selectbox(key="act_layer").set_value("pool1").run()
    assert not at.exception
    assert len(calls) == n, "changing a display option recomputed LIME"
    assert len(first_phase) == 2, "changing a display option recomputed the Summary"
    at.sidebar.slider(key="lime_samples_stable").set_value(400).run()
    assert len(calls) == n + 1, "changing a LIME parameter must recompute it"


def test_explanations_are_cached_per_session_only(monkeypatch):
    """Results derived from an image are never shared between sessions (privacy of uploads)."""
    calls = []
    real = explain.lime.explain
    monkeypatch.setattr(explain.lime, "explain", lambda *a, **k: calls.append(1) or real(*a, **k))
    explain_page(samples=200, stability=False, deletion=False)
    explain_page(samples=200, stability=False, deletion=False)  # a second session: computes again
    assert len(calls) == 2


def test_unstable_lime_is_flagged_and_the_map_head_joins_the_summary(monkeypatch):
    """detector_v2 has a map head: the manipulation map is one of the Summary's methods. An unstable LIME is
    warned about on its tab and greyed on the Summary."""
    monkeypatch.setattr(explain.metrics.stability, "stability",
                        lambda *a, **k: {"mean_jaccard": 0.2, "sets": [[1], [2], [3]]})
    at = explain_page(samples=200, model="detector_v2")
    assert any(w.value.startswith("Unstable") for w in at.warning)
    table = next(m.value for m in at.tabs[0].markdown if m.value.startswith("| Method"))
    lime = next(row for row in table.splitlines() if "LIME" in row)
    assert lime.startswith("| :gray[LIME] |") and "unstable" in lime and "Jaccard 0.20" in lime
    assert "Manipulation map" in table and "does not apply" not in " ".join(c.value for c in at.tabs[0].caption)
    assert "Download manipulation.png" in {d.proto.label for d in at.get("download_button")}
    # the study's LIME is one click away, with its own settings, and the advice names what works
    at.sidebar.radio(key="lime_preset").set_value("study").run()
    assert not at.exception
    assert at.sidebar.slider(key="lime_samples_study").value == 1000
    assert at.sidebar.slider(key="lime_segments_study").value == 100
    assert any("Switch to the stable preset" in w.value for w in at.warning)


def test_upload_without_face_says_so_and_keeps_pixel_explanations():
    at = explain_page(samples=200, stability=False, deletion=False)
    at.radio(key="explain_mode").set_value("Upload").run()
    rng = np.random.default_rng(0)
    img = np.full((96, 96, 3), 120, np.uint8)
    img[10:40, 10:40] = rng.integers(0, 255, (30, 30, 3), dtype=np.uint8)
    at.file_uploader[0].upload("pattern.png", png_bytes(img), "image/png").run()
    assert not at.exception, at.exception
    assert any("No face found" in i.value for i in at.info)
    downloads = {d.proto.label for d in at.get("download_button")}
    assert "Download lime.png" in downloads and "Download gradcam.png" in downloads


def test_bad_upload_one_line_error():
    at = explain_page(samples=200, stability=False, deletion=False)
    at.radio(key="explain_mode").set_value("Upload").run()
    at.file_uploader[0].upload("junk.png", b"\x89PNG\r\n\x1a\n not really", "image/png").run()
    assert not at.exception
    assert len(at.error) == 1 and "junk.png" in at.error[0].value and "\n" not in at.error[0].value


@pytest.mark.integration
def test_explain_dataset_image(shared_data, monkeypatch):
    monkeypatch.setenv("DEEPFAKE_DATA", str(shared_data))
    at = explain_page(samples=200, stability=False, deletion=False, model="detector_v1")
    box = at.selectbox(key="explain_sample")
    fake = next(s for s in box.options if s.startswith("test/fake"))
    box.select_index(box.options.index(fake)).run()
    assert not at.exception, at.exception
    assert any(c.value.startswith("Ground truth: **fake**") for c in at.caption)


def test_spectrum_baseline_gets_lime_but_no_gradcam_or_activations():
    at = explain_page(samples=200, stability=False, deletion=False, model="spectrum")
    assert not at.exception, at.exception
    assert any("not a neural network" in i.value for i in at.info)
    assert any("does not apply" in i.value for i in at.info)
    downloads = {d.proto.label for d in at.get("download_button")}
    assert "Download lime.png" in downloads and "Download gradcam.png" not in downloads


def test_compare_models_tab_shows_every_model_side_by_side():
    """Every installed model's verdict and LIME mask on the same face; LIME for the page's model is reused."""
    from models import list_models

    at = explain_page(stability=False, deletion=False)
    n_lime = len([k for k in at.session_state["_explanations"] if k[0] == "lime"])
    assert n_lime == 1
    at.sidebar.toggle(key="explain_compare").set_value(True).run()
    assert not at.exception, at.exception
    table = [d.value for d in at.dataframe if "top-5 overlap with tuned_cnn" in d.value.columns]
    assert table, "no comparison table"
    table = table[0]
    assert list(table["model"])[0] == "tuned_cnn" and set(table["model"]) == set(list_models())
    assert table["P(fake)"].between(0, 1).all()
    assert set(table["verdict"]) <= {"real", "fake"}
    assert table["top-5 overlap with tuned_cnn"].iloc[0] == 1.0
    # One LIME run per model, the page's own one reused (same key).
    assert len([k for k in at.session_state["_explanations"] if k[0] == "lime"]) == len(list_models())
    assert any(b.label == "Download comparison.png" for b in at.get("download_button"))


def test_html_report_download_reuses_the_page_explanations(monkeypatch):
    """'Prepare an HTML report' offers one self-contained HTML file built from the page's LIME (not recomputed),
    with every installed model's verdict."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    from models import list_models

    stored = []
    real_store = MemoryMediaFileStorage.load_and_get_id

    def capture(self, path_or_data, mimetype, kind, filename=None):
        stored.append((mimetype, filename, path_or_data))
        return real_store(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", capture)
    calls = []
    real_lime = explain.lime.explain
    monkeypatch.setattr(explain.lime, "explain", lambda *a, **k: calls.append(1) or real_lime(*a, **k))
    at = explain_page(samples=200, stability=False, deletion=False)
    assert "Download HTML report" not in {d.proto.label for d in at.get("download_button")}  # built only on demand
    n_lime = len(calls)
    at.toggle(key="explain_report").set_value(True).run()
    assert not at.exception, at.exception
    assert len(calls) == n_lime, "the report recomputed LIME"
    assert "Download HTML report" in {d.proto.label for d in at.get("download_button")}
    reports = [(name, data) for mime, name, data in stored if mime == "text/html"]
    assert reports, "no HTML download"
    name, data = reports[-1]
    assert name.endswith("_report.html")
    html = data.decode("utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html.lower()
    assert 'src="data:image/png;base64,' in html and "http://" not in html and "https://" not in html
    verdicts = html.split("<h2>Verdicts of all models</h2>")[1].split("</table>")[0]
    for model in list_models():
        assert model in verdicts, model
    assert "<b>tuned_cnn</b> (explained)" in verdicts
    assert 'alt="deletion curve lime"' in html and 'alt="Grad-CAM overlay"' in html  # computed for the report
    assert "LIME num_samples</th><td>200<" in html


def test_explanations_queue_and_say_their_place_or_that_the_server_is_busy(monkeypatch):
    """Issue 16: the Explain page's phases go through the server's bounded queue. Another session holding the
    only slot: this one waits, told its place, and finishes when the slot frees; with no room left it says
    "busy" in one line instead of waiting."""
    import threading

    from explain import queue as explain_queue
    from pages import _shared

    told = []
    real_text = _shared.waiting_text
    monkeypatch.setattr(_shared, "waiting_text", lambda n: told.append(n) or real_text(n))
    q = explain_queue.WorkQueue(slots=1, max_waiting=4)
    monkeypatch.setattr(explain_queue, "SHARED", q)
    q.acquire()  # another session's phase is running
    threading.Timer(3.0, q.release).start()
    at = explain_page(samples=200, stability=False, deletion=False)
    assert told and told[0] == 1  # it waited behind the one running, and said so
    assert [s.label for s in at.status] == ["Summary ready", "Explained"]
    assert q.state() == (0, 0)

    full = explain_queue.WorkQueue(slots=1, max_waiting=0)
    monkeypatch.setattr(explain_queue, "SHARED", full)
    full.acquire()
    at = explain_page(samples=300, stability=False, deletion=False)  # new settings: LIME must compute again
    busy = [s for s in at.status if s.label.startswith("The server is busy")]
    assert len(busy) == 1 and busy[0].state == "error"
    full.release()


def test_explain_upload_shows_its_provenance_card_and_keeps_gps_hidden():
    """Issue 17: a camera JPEG edited in Photoshop, with a GPS location: the card names camera and editor, says a
    location is there, and shows none of it."""
    from tests.c2pa_util import jpeg
    from tests.test_provenance import exif

    at = explain_page(samples=200, stability=False, deletion=False)
    at.radio(key="explain_mode").set_value("Upload").run()
    face = np.asarray(Image.open(io.BytesIO(png_bytes(np.full((96, 96, 3), 110, np.uint8)))))
    data = jpeg(face, exif=exif("Canon", "Canon EOS 5D", "Adobe Photoshop 25.0", gps=True).tobytes())
    at.file_uploader[0].upload("edited.jpg", data, "image/jpeg").run()
    assert not at.exception, at.exception
    card = [m.value for m in at.markdown if m.value.startswith("**Provenance**")]
    assert card == ["**Provenance** (what the file declares, not part of the score): EXIF: Canon Canon EOS 5D, "
                    "edited in Adobe Photoshop 25.0."]
    assert any(c.value.startswith("The file holds a GPS location; it is not shown") for c in at.caption)
    texts = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "48" not in texts and "51" not in texts  # the coordinates (48° 51′ N) appear nowhere


def test_under_load_the_stability_check_waits_for_a_click(monkeypatch):
    """Issue 16: with another explanation running on the server, LIME comes without its 3-seed stability check
    (two thirds of the phase), and one click runs it."""
    from explain import queue as explain_queue

    q = explain_queue.WorkQueue(slots=2, max_waiting=4)
    monkeypatch.setattr(explain_queue, "SHARED", q)
    q.acquire()  # another session's phase holds one of the two slots
    at = explain_page(samples=200, stability=True, deletion=False)
    assert any("stability check across 3 seeds was postponed: 1 other explanation was running" in i.value
               for i in at.info)
    assert not [m for m in at.metric if m.label.startswith("Top-5 agreement")]
    at.button(key="explain_stability_button").click().run()
    assert not at.exception, at.exception
    assert [m for m in at.metric if m.label.startswith("Top-5 agreement")]
    assert not any("was postponed" in i.value for i in at.info)
    q.release()

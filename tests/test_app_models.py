"""AppTest for the Models page: the comparison table, every tab, and saving an operating point."""

from __future__ import annotations

import json
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO

TIMEOUT = 240


def models_page(**state) -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    at.switch_page("pages/models.py").run()
    assert not at.exception, at.exception
    return at


def test_models_page_compares_every_installed_model():
    from models import list_models

    at = models_page()
    assert at.title[0].value == "Models"
    assert not at.warning, [w.value for w in at.warning]  # every model has cached, fresh scores
    table = at.dataframe[0].value
    assert set(table["model"]) == set(list_models())
    for col in ("accuracy", "precision", "recall", "F1", "ROC AUC", "ms / image", "params", "file KB"):
        assert table[col].notna().all(), col
    assert (table["ms / image"] > 0).all()
    assert table["ROC AUC"].max() > 0.9  # the default detector
    labels = [t.label for t in at.tabs]
    assert labels == ["Per source", "Per kind", "ROC", "Confusion", "Training curves", "Threshold & calibration",
                      "Cross-source"]
    # Per source (within-source AUC), per kind, cross-source tables all rendered with numbers.
    frames = [d.value for d in at.dataframe]
    per_source = frames[1]
    assert {"source", "kind", "n real", "n fake"} <= set(per_source.columns)
    assert "lfw_faceswap" in set(per_source["source"])
    assert per_source["source"].is_unique  # one row per source, not a cross product of counts
    assert len(per_source) == len(set(per_source["source"]))
    assert any("held-out source" in f.columns for f in frames)
    assert any("kind" in f.columns and "swap" in set(f["kind"]) for f in frames)


def test_models_page_threshold_suggestion_moves_the_slider():
    at = models_page(models_threshold_model="detector_v1")
    at.number_input(key="models_target_recall").set_value(0.95).run()
    at.button(key="models_use_suggestion").click().run()
    assert not at.exception
    slider = at.slider(key="models_threshold_detector_v1")
    suggestion = [m.value for m in at.markdown if "Suggested operating point" in m.value][0]
    assert f"{slider.value:.3f}" in suggestion
    rates = [d.value for d in at.dataframe if "split" in d.value.columns][0]
    assert set(rates["split"]) == {"val", "test"}
    val_recall = float(rates[rates["split"] == "val"]["recall"].iloc[0])
    assert val_recall >= 0.95 - 1e-9


def test_models_page_saves_operating_point_after_confirmation_and_undoes_it(tmp_path, monkeypatch):
    """Save asks first (old -> new), writes only on Confirm, and Undo puts the old block back. All in a copy of
    assets/, never the real one."""
    import models.analysis.zoo as zoo
    import models.detectors.registry as detector_module

    assets = tmp_path / "models"
    shutil.copytree(REPO / "assets" / "models", assets)
    monkeypatch.setattr(detector_module, "ASSETS_DIR", assets)
    monkeypatch.setattr(detector_module, "DEFAULT_FILE", assets / "DEFAULT")
    monkeypatch.setattr(zoo, "ASSETS_DIR", assets)
    before = (assets / "tuned_cnn.json").read_bytes()
    old = json.loads(before).get("operating_point", {}).get("threshold", 0.5)
    assert f"{old:.3f}" != "0.420"
    at = models_page(models_threshold_model="tuned_cnn", models_latency=False)
    at.slider(key="models_threshold_tuned_cnn").set_value(0.42).run()
    at.button(key="models_save_threshold").click().run()
    assert not at.exception, at.exception
    assert (assets / "tuned_cnn.json").read_bytes() == before  # nothing written before the confirmation
    assert at.button(key="models_confirm_threshold").label == f"Confirm: threshold {old:.3f} → 0.420"
    at.button(key="models_cancel_threshold").click().run()
    assert not [b for b in at.button if b.key == "models_confirm_threshold"]
    assert (assets / "tuned_cnn.json").read_bytes() == before
    at.button(key="models_save_threshold").click().run()
    at.button(key="models_confirm_threshold").click().run()
    assert not at.exception, at.exception
    assert any(f"Saved ({old:.3f} → 0.420)" in s.value for s in at.success), [s.value for s in at.success]
    meta = json.loads((assets / "tuned_cnn.json").read_text())
    assert meta["operating_point"]["threshold"] == pytest.approx(0.42)
    assert meta["operating_point"]["by"] == "page"
    from models import load_model

    assert load_model(assets / "tuned_cnn.keras").threshold == pytest.approx(0.42)
    at.button(key="models_undo_threshold").click().run()
    assert not at.exception, at.exception
    assert json.loads((assets / "tuned_cnn.json").read_text()) == json.loads(before)
    assert load_model(assets / "tuned_cnn.keras").threshold == pytest.approx(old)
    assert any(f"back at threshold {old:.3f}" in i.value for i in at.info)
    assert (REPO / "assets" / "models" / "tuned_cnn.json").read_bytes() == before  # the shipped file untouched


def test_models_page_training_curves_and_calibration_tabs():
    from models import default_model_name

    at = models_page(models_threshold_model="detector_v1", models_latency=False)
    assert default_model_name() != "baseline_cnn"  # the first model with curves: the tab used to open on it
    assert at.selectbox(key="models_history_model").value == default_model_name()
    captions = " ".join(c.value for c in at.caption)
    assert "Best epoch" in captions and "python -m models.train" in captions
    assert any("Platt-scaled" in m.value for m in at.markdown)


@pytest.mark.parametrize("page", ["predict", "explain", "batch", "models", "errors"])
def test_pages_without_any_model_say_so_in_one_line(page, tmp_path, monkeypatch):
    import models.detectors.registry as detector_module

    monkeypatch.setattr(detector_module, "ASSETS_DIR", tmp_path)
    monkeypatch.setattr(detector_module, "DEFAULT_FILE", tmp_path / "DEFAULT")
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "No models installed" in errors[0]

"""AppTests for the Dataset and Error analysis pages: without data, on a synthetic dataset, on the shared data."""

from __future__ import annotations

import csv
import re

import pytest
from streamlit.testing.v1 import AppTest

from models.analysis import explore
from tests.conftest import REPO, make_dataset_dir

TIMEOUT = 300
# Cheap Explain settings, for the tests that click through to it (the widgets read their keys from state).
CHEAP_EXPLAIN = {"lime_samples_stable": 200, "lime_stability": False, "deletion": False}


def open_page(page: str, **state) -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.run()
    for k, v in state.items():
        at.session_state[k] = v
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def frame(at: AppTest, *columns: str):
    """The first dataframe shown with all of ``columns``."""
    frames = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert frames, f"no dataframe with {columns}"
    return frames[0]


def gallery_captions(at: AppTest) -> list[str]:
    return [c for im in at.image for c in im.captions if c]


@pytest.fixture
def synthetic(tmp_path):
    """train/val/test, source "a" (4 per class) and "b" (2 per class), and a manifest naming their sources."""
    root = tmp_path / "data"
    make_dataset_dir(root, n_per_class=4, source="a")
    make_dataset_dir(root, n_per_class=2, source="b", seed=1)
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["split", "label", "file", "source", "original_name"])
        for row in explore.list_images(root):
            w.writerow([row["split"], row["label"], row["file"], row["source"], row["name"]])
    return root


# --- Dataset ------------------------------------------------------------------------------------------------

def test_dataset_page_without_data_says_how_to_set_it(monkeypatch, tmp_path):
    monkeypatch.delenv("DEEPFAKE_DATA", raising=False)
    monkeypatch.setattr("models.data.files.data_root", lambda explicit=None: tmp_path / "no-data")  # not the repo's data/
    at = open_page("pages/dataset.py")
    assert at.title[0].value == "Dataset"
    assert any("DEEPFAKE_DATA" in i.value and "export" in i.value for i in at.info)
    assert not at.dataframe and not at.image


def test_dataset_page_on_synthetic_dataset(synthetic, monkeypatch):
    monkeypatch.setenv("DEEPFAKE_DATA", str(synthetic))
    at = open_page("pages/dataset.py")
    assert [t.label for t in at.tabs] == ["Class balance", "Images", "Mean face"]
    assert any("counted from `manifest.csv`" in c.value for c in at.caption)
    per_split = frame(at, "split", "share fake")
    assert per_split.to_dict("records") == [
        {"split": s, "real": 6, "fake": 6, "total": 12, "share fake": 0.5} for s in ("train", "val", "test")]
    per_source = frame(at, "source", "test real").set_index("source")
    assert per_source.loc["a", "test real"] == 4 and per_source.loc["b", "fake"] == 6
    # The grid: 36 images in two pages of 24, captions "<class> · <file name>", an Explain button each.
    assert any(c.value.startswith("36 images match; showing 24") for c in at.caption)
    captions = gallery_captions(at)
    assert len(captions) == 24 and all(re.fullmatch(r"(real|fake) · (a|b)__(real|fake)\d\.png", c) for c in captions)
    assert len([b for b in at.button if b.label == "Explain"]) == 24
    at.selectbox(key="ds_split").set_value("test").run()
    at.selectbox(key="ds_label").set_value("fake").run()
    at.selectbox(key="ds_source").set_value("b").run()
    assert not at.exception
    assert gallery_captions(at)[:2] == ["fake · b__fake0.png", "fake · b__fake1.png"]
    assert any(c.value.startswith("2 images match") for c in at.caption)
    # The mean face of the test split (default): 6 reals, 6 fakes; fakes are brighter (their top-left quadrant).
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Real images"] == "6" and metrics["Fake images"] == "6"
    assert float(metrics["Brightness fake − real"]) > 0.05
    at.selectbox(key="ds_mean_source").set_value("a").run()
    assert {m.label: m.value for m in at.metric}["Real images"] == "4"


def test_dataset_page_pages_through_images(tmp_path, monkeypatch):
    # 30 images, no manifest; file names longer than a caption
    root = make_dataset_dir(tmp_path / "data", splits=("test",), n_per_class=15, source="a_rather_long_collection")
    monkeypatch.setenv("DEEPFAKE_DATA", str(root))
    at = open_page("pages/dataset.py")
    assert any("counted from the folders" in c.value for c in at.caption)
    page = at.number_input(key="ds_page_all_all_all")
    assert page.label == "Page (of 2)"
    page.set_value(2).run()
    assert any(c.value.startswith("30 images match; showing 6 (25–30)") for c in at.caption)
    captions = gallery_captions(at)
    assert len(captions) == 6
    # Long names are cut in the middle to one fixed length (both ends kept); the full name is the button's tooltip.
    assert len({len(c) for c in captions}) == 1
    assert all(re.fullmatch(r"(real|fake) · a_ra…\w{3}\.png", c) for c in captions), captions
    helps = [b.help for b in at.button if b.label == "Explain"]
    files = [r["file"] for r in explore.paginate(explore.list_images(root), 2)[0]]
    assert len(helps) == 6 and all(f in h for f, h in zip(files, helps)), helps


def test_dataset_grid_explain_button_opens_the_image_in_explain(synthetic, monkeypatch):
    monkeypatch.setenv("DEEPFAKE_DATA", str(synthetic))
    at = open_page("pages/dataset.py", explain_model="tuned_cnn", **CHEAP_EXPLAIN)
    first = explore.list_images(synthetic)[0]
    at.button(key=f"ds_explain_{first['file']}").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Explain"
    handed = at.session_state["_handoff_image"]
    assert (handed["path"], handed["origin"], handed["truth"], handed["source"]) == (
        first["path"], "dataset", first["label"], first["source"])
    assert at.radio(key="explain_mode").value == "From dataset"


# --- Error analysis -----------------------------------------------------------------------------------------

def test_errors_page_without_data_says_how_to_set_it(monkeypatch, tmp_path):
    monkeypatch.delenv("DEEPFAKE_DATA", raising=False)
    monkeypatch.setattr("models.data.files.data_root", lambda explicit=None: tmp_path / "no-data")
    at = open_page("pages/errors.py")
    assert at.title[0].value == "Error analysis"
    assert any("DEEPFAKE_DATA" in i.value for i in at.info)


@pytest.mark.integration
def test_errors_page_galleries_breakdown_and_explain(shared_data, monkeypatch):
    from models.analysis.zoo import load_scores, threshold_of
    from models.detectors.registry import read_metadata

    monkeypatch.setenv("DEEPFAKE_DATA", str(shared_data))
    model = "tuned_cnn"
    from models.detectors.base import KerasDetector

    runs, real_predict = [], KerasDetector.predict_raw
    monkeypatch.setattr(KerasDetector, "predict_raw", lambda self, *a, **k: runs.append(1) or real_predict(self, *a, **k))
    at = open_page("pages/errors.py", errors_model=model, **CHEAP_EXPLAIN)
    assert not runs, "the first render ran a model: the galleries must come from the cached scores"
    # cached, fresh scores, files all present; tuned_cnn has no region Shapley cache (make eval: v1 and v2 only)
    assert not at.warning and [i.value for i in at.info] == [
        "No region Shapley values cached for tuned_cnn: `make eval` caches them for detector_v1 and detector_v2 "
        "only. For tuned_cnn: `python -m explain.shapley_cache --models tuned_cnn --split test`."]
    assert any("From the cached evaluation `tuned_cnn.eval.csv`" in c.value for c in at.caption)

    scores = load_scores(model, "test")
    threshold = threshold_of(read_metadata(REPO / "assets" / "models" / f"{model}.keras"))
    fp, fn = explore.mistakes(scores, threshold, shared_data)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Threshold"] == f"{threshold:.3f}"
    assert metrics["False positives"] == f"{len(fp):,}" and metrics["False negatives"] == f"{len(fn):,}"
    assert [t.label for t in at.tabs] == [f"False positives ({len(fp):,})", f"False negatives ({len(fn):,})"]

    by_source = frame(at, "source", "FP rate")
    assert by_source["FP"].sum() == len(fp) and by_source["FN"].sum() == len(fn)
    assert {"lfw_faceswap", "basemax_fakefaces"} <= set(by_source["source"])
    assert (by_source.set_index("source").loc["basemax_fakefaces", "FP"]) == 0  # no reals there

    # Galleries: FPs by P(fake) descending, then FNs ascending; all at the model's own threshold.
    captions = gallery_captions(at)
    p = [float(re.match(r"(\d\.\d{3}) · ", c).group(1)) for c in captions]
    # One line of one length each: P(fake) and the file name cut in the middle; the full name in the tooltip.
    assert len({len(c) for c in captions}) == 1 and all(c.endswith(".jpg") for c in captions)
    helps = [b.help for b in at.button if b.label == "Explain"]
    assert fp[0]["file"] in helps[0] and "…" in captions[0] and "/" not in captions[0]
    n_fp = min(len(fp), explore.PER_PAGE)
    p_fp, p_fn = p[:n_fp], p[n_fp : n_fp + min(len(fn), explore.PER_PAGE)]
    assert p_fp == sorted(p_fp, reverse=True) and min(p_fp) >= round(threshold, 3)
    assert p_fn == sorted(p_fn) and max(p_fn) <= round(threshold, 3)
    assert p_fp[0] == pytest.approx(fp[0]["p_fake"], abs=5e-4)
    assert frame(at, "file", "p_fake")["file"].tolist() == [r["file"] for r in fp]

    # One click on the most confident false positive opens it on the Explain page, with this model.
    at.button(key=f"errors_explain_fp_{fp[0]['file']}").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Explain"
    handed = at.session_state["_handoff_image"]
    assert handed["path"] == fp[0]["path"] and handed["origin"] == "error analysis"
    assert handed["truth"] == "real" and handed["source"] == fp[0]["source"]
    assert at.radio(key="explain_mode").value == "From error analysis"
    assert at.selectbox(key="explain_model").value == model
    assert any("Verdict" in m.value for m in at.markdown)
    assert any(c.value.startswith("Ground truth: **real**") for c in at.caption)


def test_errors_page_scores_on_the_fly_without_cached_scores(synthetic, monkeypatch):
    """The cached scores belong to the shared data: on another dataset the page scores its test split itself."""
    monkeypatch.setenv("DEEPFAKE_DATA", str(synthetic))
    at = open_page("pages/errors.py", errors_model="baseline_cnn")
    assert any("scoring this dataset's test split now" in i.value for i in at.info)
    assert any(c.value.startswith("Scored just now (12 images") for c in at.caption)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test images"] == "12"
    n_fp, n_fn = int(metrics["False positives"]), int(metrics["False negatives"])
    by_source = frame(at, "source", "FP rate")
    assert set(by_source["source"]) == {"a", "b"}
    assert by_source["FP"].sum() == n_fp and by_source["FN"].sum() == n_fn
    assert len(gallery_captions(at)) == n_fp + n_fn
    at.run()  # kept for the session: not scored again
    assert not at.exception
    assert any(c.value.startswith("Scored just now") for c in at.caption)


# --- Error analysis: what drives the mistakes (region Shapley values from the cache) -------------------------

@pytest.fixture
def cached_eval(synthetic, tmp_path, monkeypatch):
    """Cached test scores of baseline_cnn and detector_v1 on the synthetic data in a tmp assets folder, read by the page: three
    reals scored fake (FPs) and two fakes scored real (FNs) at any sensible threshold."""
    from models.analysis import zoo
    from models.analysis.evaluate import eval_csv_path, save_scores

    folder = tmp_path / "assets"
    rows = [(r["file"], r["source"], int(r["label"] == "fake"), 0.01 if r["label"] == "real" else 0.99)
            for r in explore.list_images(synthetic, split="test")]
    fps = [r[0] for r in rows if r[2] == 0][:3]
    fns = [r[0] for r in rows if r[2] == 1][:2]
    rows = [(f, s, y, 0.99 if f in fps else 0.01 if f in fns else p) for f, s, y, p in rows]
    for model in ("baseline_cnn", "detector_v1"):
        save_scores(eval_csv_path(model, "test", folder), rows)
    monkeypatch.setenv("DEEPFAKE_DATA", str(synthetic))
    monkeypatch.setattr(zoo, "eval_file", lambda name, split="test", folder_=None: eval_csv_path(name, split, folder))
    return folder, fps, fns


def test_errors_page_shows_what_drives_the_mistakes(cached_eval):
    from explain import aggregate
    from explain.aggregate import PhiRow
    from models.data.landmarks import REGIONS

    folder, fps, fns = cached_eval
    zero = dict.fromkeys(REGIONS, 0.0)
    phi = [PhiRow(f, 0.99, {**zero, "mouth": 0.3, "nose": 0.1}, 0.59, 0.99) for f in fps[:2]]
    phi += [PhiRow(fps[2], 0.99)]  # no landmarks: counted, not explained
    phi += [PhiRow(fns[0], 0.01, {**zero, "left_eye": -0.2, "mouth": 0.05}, 0.16, 0.01),
            PhiRow(fns[1], 0.01, {**zero, "left_eye": -0.1, "nose": -0.15}, 0.26, 0.01)]
    aggregate.write_csv(phi, aggregate.cache_path("baseline_cnn", "test", folder))
    at = open_page("pages/errors.py", errors_model="baseline_cnn")
    assert any("From the cached evaluation `baseline_cnn.eval.csv` (12 test images)" in c.value for c in at.caption)
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["False positives"], metrics["False negatives"]) == ("3", "2")
    assert "What drives the mistakes" in [h.value for h in at.subheader]
    lines = [m.value for m in at.markdown]
    assert "False positives (n=2) are driven mostly by the mouth (mean +0.30 P(fake); top region in 100%)." in lines
    left_eye = aggregate.region_phrase("left_eye")
    assert (f"False negatives (n=2) are driven mostly by {left_eye} (mean \u22120.15 P(fake); top region in 50%)."
            in lines)
    assert any(c.value.startswith("1 of the 5 mistakes have no facial landmarks") for c in at.caption)
    table = frame(at, "set", "region", "mean φ (P(fake))")
    assert len(table) == 4 * len(REGIONS)
    assert list(dict.fromkeys(table["set"])) == ["False positives", "False negatives", "All reals (n=3, reference)",
                                                 "All fakes (n=2, reference)"]  # the cached rows of each class
    assert table.set_index(["set", "region"]).loc[("False negatives", "nose"), "mean φ (P(fake))"] == \
        pytest.approx(-0.075)
    assert not at.warning  # the cache is newer than the model file


def test_errors_page_says_to_run_make_eval_without_the_shapley_cache(cached_eval):
    at = open_page("pages/errors.py", errors_model="baseline_cnn")
    assert "What drives the mistakes" in [h.value for h in at.subheader]
    assert any(i.value.startswith("No region Shapley values cached for baseline_cnn: `make eval` caches them for "
                                  "detector_v1 and detector_v2 only") for i in at.info)
    assert len(gallery_captions(at)) == 5  # the rest of the page is unaffected
    at.selectbox(key="errors_model").set_value("detector_v1").run()  # a model make eval caches: say to run it
    assert not at.exception, at.exception
    assert "No region Shapley values cached for detector_v1 (`detector_v1.shapley-test.csv`): run `make eval`." in [
        i.value for i in at.info]

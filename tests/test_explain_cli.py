"""``python -m explain``: in-process runs of explain.cli.main on the quadrant model, error paths, and one subprocess."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, build_quadrant_model, quadrant_image, save_model
from PIL import Image

from explain.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """(image path, model path) in a temporary folder: the 64 px top-left quadrant image, the saved 32 px model."""
    root = tmp_path_factory.mktemp("explain_cli")
    image = root / "face.png"
    Image.fromarray(quadrant_image(64, "top_left")).save(image)
    model = save_model(build_quadrant_model(32), root / "models", "quadrant", 32)
    return image, model


def run_main(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def all_json(files, tmp_path_factory):
    image, model = files
    out = tmp_path_factory.mktemp("all_out")
    rc, stdout, stderr = run_main([image, "--model", model, "--method", "all", "--json", "--out", out,
                                   "--num-samples", 200])
    return rc, stdout, stderr, out


def assert_png_file(path):
    path = Path(path)
    assert path.is_file() and path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as im:
        im.load()
        assert im.size[0] >= 100 and im.size[1] >= 100


def test_all_json_is_one_object(all_json, files):
    rc, stdout, _, _ = all_json
    assert rc == 0
    summary = json.loads(stdout)  # exactly one JSON document, nothing else on stdout
    assert isinstance(summary, dict) and stdout.strip().count("\n") == 0
    assert {"path", "model", "verdict", "p_fake", "seconds", "regions", "figures", "deletion"} <= set(summary)
    assert summary["path"] == str(files[0]) and summary["model"] == "quadrant"
    assert summary["verdict"] == "fake" and summary["p_fake"] > 0.9 and summary["target"] == "verdict"
    assert {"lime", "gradcam", "activations", "deletion_lime", "deletion_gradcam", "landmarks"} <= set(
        summary["seconds"])
    assert all(v >= 0 for v in summary["seconds"].values())
    assert summary["activations"] == {"layer": "bright", "n_channels": 1}
    assert summary["lime"]["n_segments"] >= 1 and summary["lime"]["top_positive"]


def test_all_json_deletion_and_regions(all_json):
    summary = json.loads(all_json[1])
    assert set(summary["deletion"]) == {"lime", "gradcam"}
    lime = summary["deletion"]["lime"]
    assert lime["auc_explanation"] < lime["auc_random"] and lime["faster_than_random"] is True
    assert set(summary["regions"]) == {"lime", "gradcam"}
    if summary["face_found"]:
        for ranking in summary["regions"].values():
            assert {r["region"] for r in ranking} <= {"left_eye", "right_eye", "nose", "mouth", "rest_of_face",
                                                      "outside_face"}
    else:  # mtcnn sees no face in a grey square with a bright patch: no ranking, no region figures
        assert summary["face_found"] is False
        assert all(ranking == [] for ranking in summary["regions"].values())
        assert not any("regions_" in Path(f).name for f in summary["figures"])


def test_all_json_figures_exist(all_json):
    _, stdout, _, out = all_json
    figures = json.loads(stdout)["figures"]
    names = {Path(f).name for f in figures}
    assert {"lime.png", "gradcam.png", "activations.png", "activation_zoom.png", "deletion_lime.png",
            "deletion_gradcam.png"} <= names
    assert len(names) == len(figures)
    for f in figures:
        assert Path(f).parent == out
        assert_png_file(f)
    assert {p.name for p in out.iterdir()} == names  # nothing written that is not listed


def test_gradcam_only(files, tmp_path):
    image, model = files
    rc, stdout, _ = run_main([image, "--model", model, "--method", "gradcam", "--json", "--out", tmp_path])
    assert rc == 0
    summary = json.loads(stdout)
    assert "lime" not in summary and "lime" not in summary["seconds"]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(Path(f).name for f in summary["figures"])
    assert "gradcam.png" in names and "deletion_gradcam.png" in names and "lime.png" not in names
    assert set(names) <= {"gradcam.png", "deletion_gradcam.png", "regions_gradcam.png", "regions_map.png"}
    assert set(summary["deletion"]) == {"gradcam"}


def test_text_mode_prints_the_verdict(files, tmp_path, capsys):
    image, model = files
    rc = main([str(image), "--model", str(model), "--method", "gradcam", "--out", str(tmp_path), "--no-deletion"])
    stdout = capsys.readouterr().out
    assert rc == 0
    lines = stdout.splitlines()
    assert lines[0].startswith(f"{image}: fake (P(fake) ") and lines[0].endswith(") by quadrant")
    assert any(line.strip().startswith("figures: ") and str(tmp_path) in line for line in lines)
    assert not any("deletion" in line for line in lines)
    names = {p.name for p in tmp_path.iterdir()}
    assert "gradcam.png" in names and names <= {"gradcam.png", "regions_gradcam.png", "regions_map.png"}
    if "no face found" in stdout:  # no empty per-method region lines when there is nothing to rank
        assert not any(line.strip().startswith("regions (") for line in lines)


@pytest.fixture
def astronaut_face(tmp_path) -> Path:
    """The astronaut's face (a real photo mtcnn finds) as a PNG file."""
    from skimage.data import astronaut

    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut()[30:230, 130:330]).save(path)
    return path


@pytest.mark.slow
def test_a_real_face_gets_region_rankings_and_figures(files, tmp_path, astronaut_face):
    from explain.cli import format_summary
    from explain.regions import REGIONS

    _, model = files
    image = astronaut_face
    rc, stdout, _ = run_main([image, "--model", model, "--method", "regions", "--json", "--no-deletion",
                              "--num-samples", 200, "--out", tmp_path / "out"])
    assert rc == 0
    summary = json.loads(stdout)
    assert summary["face_found"] is True and set(summary["regions"]) == {"lime", "gradcam"}
    for ranking in summary["regions"].values():
        assert sorted(r["region"] for r in ranking) == sorted(REGIONS)
        means = [r["mean"] for r in ranking]
        assert means == sorted(means, reverse=True)
    names = {Path(f).name for f in summary["figures"]}
    assert names == {"lime.png", "gradcam.png", "regions_lime.png", "regions_gradcam.png", "regions_map.png"}
    for f in summary["figures"]:
        assert_png_file(f)
    text = format_summary(summary)
    assert f"regions (lime, evidence for '{summary['verdict']}'): {summary['regions']['lime'][0]['region']}" in text
    assert "no face found" not in text


def test_all_on_a_face_tells_the_summary_with_exact_shapley_values(files, tmp_path, astronaut_face):
    from explain.cli import format_summary
    from explain.regions import REGIONS

    _, model = files
    image = astronaut_face
    rc, stdout, _ = run_main([image, "--model", model, "--method", "all", "--json", "--no-deletion",
                              "--num-samples", 200, "--out", tmp_path / "out"])
    assert rc == 0
    summary = json.loads(stdout)
    story = summary["summary"]
    shap = story["shapley"]
    assert set(shap["values"]) == set(REGIONS) and shap["fill"] == "blur"
    target_p = summary["p_fake"] if story["verdict"].endswith("fake") or story["verdict"] == "fake" else 1 - summary["p_fake"]
    assert sum(shap["values"].values()) == pytest.approx(shap["full"] - shap["base"], abs=1e-5)
    assert shap["full"] == pytest.approx(target_p, abs=1e-4)
    assert story["methods"][0]["method"] == "shapley" and story["headline"]
    assert any(m["method"] == "lime" and not m["trusted"] and "not tested" in m["reason"] for m in story["methods"])
    assert "shapley_waterfall.png" in {Path(f).name for f in summary["figures"]}
    text = format_summary(summary)
    assert story["headline"] in text and "region Shapley values" in text and "not trusted: lime" in text


def assert_one_error_line(rc, err, *fragments):
    assert rc == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_image(files, tmp_path, capsys):
    _, model = files
    missing = tmp_path / "nope.png"
    rc = main([str(missing), "--model", str(model), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert_one_error_line(rc, captured.err, "nope.png")
    assert captured.out == ""


def test_not_an_image(files, tmp_path, capsys):
    _, model = files
    bogus = tmp_path / "notes.png"
    bogus.write_text("this is not an image\n")
    rc = main([str(bogus), "--model", str(model), "--out", str(tmp_path / "out"), "--json"])
    captured = capsys.readouterr()
    assert_one_error_line(rc, captured.err, "notes.png")
    assert captured.out == ""


def test_unknown_model(files, tmp_path, capsys):
    image, _ = files
    rc = main([str(image), "--model", "no_such_model_xyz", "--out", str(tmp_path / "out"), "--json"])
    captured = capsys.readouterr()
    assert_one_error_line(rc, captured.err, "no_such_model_xyz")
    assert captured.out == ""


@pytest.mark.parametrize("option", ["--num-samples", "--n-segments"])
def test_non_positive_counts_are_bad_input(files, tmp_path, capsys, option):
    image, model = files
    rc = main([str(image), "--model", str(model), "--method", "lime", option, "0", "--out", str(tmp_path)])
    assert_one_error_line(rc, capsys.readouterr().err, option)


@pytest.mark.slow
def test_module_entry_point(files, tmp_path):
    image, model = files
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-m", "explain", str(image), "--model", str(model), "--method", "lime", "--no-deletion",
         "--json", "--num-samples", "200", "--out", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["verdict"] == "fake" and summary["deletion"] == {}
    assert (tmp_path / "lime.png").is_file()


# --- --report: one self-contained HTML file --------------------------------------------------------------

@pytest.fixture
def no_installed_models(monkeypatch):
    """The report tabulates every installed model's verdict; keep these tests to the quadrant model."""
    import models

    monkeypatch.setattr(models, "list_models", lambda *a, **k: [])


def test_report_writes_one_html_file(files, tmp_path, no_installed_models):
    import base64

    image, model = files
    target = tmp_path / "reports" / "face.html"
    rc, stdout, stderr = run_main([image, "--model", model, "--method", "lime", "--num-samples", 200, "--json",
                                   "--out", tmp_path / "out", "--report", target])
    assert rc == 0, stderr
    summary = json.loads(stdout)
    assert summary["report"] == str(target) and target.is_file()
    html = target.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html.lower() and "http" not in html.lower()
    assert "<title>Deepfake Lens report: face.png</title>" in html
    assert "<b>quadrant</b> (explained)" in html
    # the CLI's own LIME figure is embedded as computed, and what --method left out is added (Grad-CAM)
    assert base64.b64encode((tmp_path / "out" / "lime.png").read_bytes()).decode() in html
    assert 'alt="Grad-CAM overlay"' in html and 'alt="deletion curve lime"' in html
    assert "LIME num_samples</th><td>200<" in html and "crop: mode</th><td>auto<" in html
    assert {p.name for p in (tmp_path / "out").iterdir()} == {Path(f).name for f in summary["figures"]}


def test_report_text_mode_names_the_file(files, tmp_path, no_installed_models, capsys):
    image, model = files
    target = tmp_path / "r.html"
    rc = main([str(image), "--model", str(model), "--method", "gradcam", "--no-deletion", "--num-samples", "200",
               "--out", str(tmp_path / "out"), "--report", str(target)])
    out = capsys.readouterr().out
    assert rc == 0 and f"report: {target}" in out
    html = target.read_text(encoding="utf-8")
    assert 'alt="LIME panels"' in html and "Deletion curves were not computed" in html


def test_report_bad_image_exits_2_and_writes_nothing(files, tmp_path, capsys):
    _, model = files
    bogus = tmp_path / "notes.png"
    bogus.write_text("this is not an image\n")
    target = tmp_path / "report.html"
    rc = main([str(bogus), "--model", str(model), "--out", str(tmp_path / "out"), "--report", str(target)])
    assert_one_error_line(rc, capsys.readouterr().err, "notes.png")
    assert not target.exists()


def test_report_to_a_folder_is_bad_input(files, tmp_path, capsys):
    image, model = files
    rc = main([str(image), "--model", str(model), "--out", str(tmp_path / "out"), "--report", str(tmp_path)])
    assert_one_error_line(rc, capsys.readouterr().err, "--report")


def test_preset_picks_lime_parameters(files, tmp_path, monkeypatch):
    """The default is the stable preset, --preset study the study's LIME; --n-segments overrides a preset's."""
    from explain import lime as lime_module

    seen = []
    real = lime_module.explain
    monkeypatch.setattr(lime_module, "explain", lambda *a, **k: seen.append(k) or real(*a, **k))
    image, model = files
    presets = []
    for extra in ([], ["--preset", "study"], ["--preset", "study", "--n-segments", "40"]):
        rc, stdout, _ = run_main([image, "--model", model, "--method", "lime", "--no-deletion", "--json",
                                  "--out", tmp_path, *extra])
        assert rc == 0
        presets.append(json.loads(stdout)["lime"]["preset"])
    assert presets == ["stable", "study", None]
    got = [(k["n_segments"], k["compactness"], k["num_samples"], k["hide_color"]) for k in seen]
    assert got == [(30, 10.0, 1500, None), (100, 1.0, 1000, 0), (40, 1.0, 1000, 0)]
    with pytest.raises(SystemExit):
        main([str(image), "--preset", "fast"])

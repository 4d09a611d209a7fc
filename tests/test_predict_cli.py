"""python -m models.predict as a subprocess: good files, bad files, --json, unknown model.

Each subprocess imports TensorFlow (seconds), so all four invocations start together in one
module-scoped fixture and the tests read their results.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_face
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


def own_lines(stderr: str) -> list[str]:
    """Non-empty stderr lines. TensorFlow's start-up chatter is silenced by models._quiet, so none is expected."""
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("predict_inputs")
    rng = np.random.default_rng(0)
    good_png = d / "fake face.png"  # a space in the name, to check the path column
    Image.fromarray(synthetic_face(rng, True, 32)).save(good_png)
    good_jpg = d / "real.jpg"
    Image.fromarray(synthetic_face(rng, False, 32)).save(good_jpg, quality=95)
    big_jpg = d / "big.jpeg"
    Image.fromarray(rng.integers(0, 256, size=(128, 128, 3), dtype=np.uint8)).save(big_jpg, quality=90)
    truncated = d / "truncated.jpg"
    truncated.write_bytes(big_jpg.read_bytes()[:200])
    text = d / "notes.jpg"
    text.write_text("this is a text file, not a JPEG\n")
    missing = d / "missing.png"
    return {"png": good_png, "jpg": good_jpg, "missing": missing, "text": text, "truncated": truncated}


@pytest.fixture(scope="module")
def runs(files, oracle_model_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    model = ["--model", str(oracle_model_path), "--crop", "none"]  # the synthetic files are face crops
    good = [str(files["png"]), str(files["jpg"])]
    mixed = [str(files["png"]), str(files["missing"]), str(files["text"]), str(files["jpg"]), str(files["truncated"])]
    invocations = {
        "good": [*model, *good],
        "mixed": [*model, *mixed],
        "mixed_json": [*model, "--json", *mixed],
        "unknown_model": ["--model", "no_such_model_xyz", *good],
        "auto_no_face": ["--model", str(oracle_model_path), "--json", *good],
        "face_required": ["--model", str(oracle_model_path), "--json", "--crop", "face", *good],
    }
    procs = {
        key: subprocess.Popen([sys.executable, "-m", "models.predict", *args], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for key, args in invocations.items()
    }
    results = {}
    for key, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        results[key] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return results


def test_good_files_exit_0_one_line_each(runs, files):
    r = runs["good"]
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    rows = [line.split("\t") for line in lines]
    assert [row[0] for row in rows] == [str(files["png"]), str(files["jpg"])]
    assert [row[1] for row in rows] == ["fake", "real"]  # the oracle model knows the synthetic rule
    for row in rows:
        assert len(row) == 3 and re.fullmatch(r"\d\.\d{4}", row[2])
        assert 0.0 <= float(row[2]) <= 1.0
    assert float(rows[0][2]) > 0.9 and float(rows[1][2]) < 0.1
    assert own_lines(r.stderr) == []


def test_bad_files_error_lines_good_files_scored(runs, files):
    r = runs["mixed"]
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stdout.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [[str(files["png"]), "fake"], [str(files["jpg"]), "real"]]
    errors = own_lines(r.stderr)
    assert len(errors) == 3
    assert all(line.startswith("error: ") for line in errors)
    for key, line in zip(("missing", "text", "truncated"), errors, strict=True):
        assert str(files[key]) in line, line
    assert "no such file" in errors[0]


def test_json_rows(runs, files):
    r = runs["mixed_json"]
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["path"] for row in rows] == [str(files[k]) for k in ("png", "missing", "text", "jpg", "truncated")]
    good = [rows[0], rows[3]]
    bad = [rows[1], rows[2], rows[4]]
    for row in good:
        assert row["verdict"] in {"fake", "real"}
        assert isinstance(row["p_fake"], float) and 0.0 <= row["p_fake"] <= 1.0
        assert "error" not in row
        assert row["model"] == "oracle"
    assert [row["verdict"] for row in good] == ["fake", "real"]
    for row in bad:
        assert row["verdict"] is None and row["p_fake"] is None
        assert isinstance(row["error"], str) and row["path"] in row["error"]
        assert "\n" not in row["error"]
    assert own_lines(r.stderr) == []


def test_unknown_model_exits_2_one_line(runs):
    r = runs["unknown_model"]
    assert r.returncode == 2
    assert r.stdout == ""
    assert "Traceback" not in r.stderr
    lines = own_lines(r.stderr)
    assert len(lines) == 1
    assert lines[0].startswith("error: no model named 'no_such_model_xyz'")


def test_no_face_is_a_warning_and_the_centre_square_is_scored(runs, files):
    r = runs["auto_no_face"]
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["crop"] for row in rows] == ["center", "center"] and all(row["faces"] == [] for row in rows)
    assert [row["verdict"] for row in rows] == ["fake", "real"]
    warnings = own_lines(r.stderr)
    assert len(warnings) == 2 and all(w.startswith("warning: ") and "no face found" in w for w in warnings)


def test_crop_face_requires_a_face(runs):
    r = runs["face_required"]
    assert r.returncode == 2 and "Traceback" not in r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert all(row["verdict"] is None and "no face found" in row["error"] for row in rows)

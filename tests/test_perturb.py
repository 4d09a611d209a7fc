"""models.perturb (jpeg:Q, resize:F) and the evaluate CLI's --perturb option."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_dataset_dir

import models.evaluate as evaluate_cli
from models.data import perturb

# --- parse and the perturbations ----------------------------------------------------------------


def noisy(h=32, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def checkerboard(size=32):
    board = ((np.indices((size, size)).sum(axis=0) % 2) * 255).astype(np.uint8)
    return np.repeat(board[..., None], 3, axis=2)


@pytest.mark.parametrize("spec", ["jpeg:70", "jpeg:1", "jpeg:100", "resize:0.5", "resize:1", "resize:0.25"])
def test_parse_valid(spec):
    fn = perturb.parse(spec)
    out = fn(noisy())
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("spec", ["jpeg:0", "jpeg:101", "resize:0", "resize:1.5", "resize:-0.5", "blur:3",
                                  "jpeg:abc", "jpeg", "jpeg:70.5", "resize:nan", ""])
def test_parse_invalid_raises_with_usage(spec):
    with pytest.raises(ValueError, match="jpeg:Q") as info:
        perturb.parse(spec)
    assert "resize:F" in str(info.value) and repr(spec) in str(info.value)


def test_jpeg_changes_pixels_lower_quality_more():
    img = noisy()
    err = {}
    for q in (10, 50, 95):
        out = perturb.parse(f"jpeg:{q}")(img)
        assert out.shape == img.shape and out.dtype == np.uint8
        assert not np.array_equal(out, img)
        err[q] = np.abs(out.astype(float) - img).mean()
    assert err[10] > err[50] > err[95]
    np.testing.assert_array_equal(perturb.jpeg(img, 50), perturb.parse("jpeg:50")(img))


def test_resize_keeps_shape_and_blurs():
    board = checkerboard()
    out = perturb.parse("resize:0.5")(board)
    assert out.shape == board.shape and out.dtype == np.uint8
    assert out.std() < 0.25 * board.std()  # 1 px detail does not survive half resolution
    assert abs(out.mean() - board.mean()) < 10  # ... the average brightness does
    odd = noisy(33, 47)
    assert perturb.parse("resize:0.3")(odd).shape == (33, 47, 3)
    # factor 1 is a no-op
    np.testing.assert_array_equal(perturb.parse("resize:1")(odd), odd)


# --- evaluate --perturb ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory):
    return make_dataset_dir(tmp_path_factory.mktemp("perturb") / "d", splits=(None,), n_per_class=4, seed=2)


def test_evaluate_perturb_json(capsys, monkeypatch, oracle_model_path, eval_dir):
    # Count the images that go through the perturbation: every file, once.
    calls = []
    parse = perturb.parse

    def spy(spec):
        fn = parse(spec)
        return lambda img: calls.append(img.shape) or fn(img)

    monkeypatch.setattr(perturb, "parse", spy)
    rc = evaluate_cli.main(["--model", str(oracle_model_path), "--data", str(eval_dir), "--json", "--perturb", "jpeg:70"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.out.count("\n") == 1
    r = json.loads(captured.out)
    assert r["perturb"] == "jpeg:70"
    assert r["n"] == 8 == len(calls)
    assert r["accuracy"] == 1.0  # the oracle's bright-quadrant rule survives JPEG at 70


def test_evaluate_without_perturb_records_none(capsys, oracle_model_path, eval_dir):
    assert evaluate_cli.main(["--model", str(oracle_model_path), "--data", str(eval_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["perturb"] is None


def test_evaluate_text_report_mentions_perturbation(capsys, oracle_model_path, eval_dir):
    assert evaluate_cli.main(["--model", str(oracle_model_path), "--data", str(eval_dir), "--perturb", "resize:0.5"]) == 0
    assert "perturbed: resize:0.5" in capsys.readouterr().out


@pytest.mark.parametrize("spec", ["blur:3", "jpeg:0"])
def test_evaluate_bad_perturb_exits_2(capsys, oracle_model_path, eval_dir, spec):
    rc = evaluate_cli.main(["--model", str(oracle_model_path), "--data", str(eval_dir), "--json", "--perturb", spec])
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.out == ""
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1
    assert "jpeg:Q" in captured.err and "Traceback" not in captured.err

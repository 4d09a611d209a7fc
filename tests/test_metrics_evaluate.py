"""models.metrics on hand-made cases, and the evaluate CLI (in process) on tiny synthetic folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_dataset_dir, save_model, write_manifest

import models
import models.evaluate as evaluate_cli
from models.analysis.metrics import compute_metrics, kind_groups, metrics_by_group, metrics_by_kind
from models.data.files import list_files
from models.data.intake import load_image
from models.training.architectures import build_baseline

# --- compute_metrics ----------------------------------------------------------------------------


def test_compute_metrics_hand_made():
    y = [0, 0, 1, 1, 1]
    p = [0.1, 0.6, 0.7, 0.4, 0.9]
    # predictions at 0.5: [0, 1, 1, 0, 1] -> tn=1, fp=1, fn=1, tp=2
    m = compute_metrics(y, p)
    assert m["n"] == 5
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["confusion"] == [[1, 1], [1, 2]]
    # AUC by hand: of the 2 x 3 (real, fake) pairs, the fake scores higher in 5 (0.6 > 0.4 is the miss)
    assert m["roc_auc"] == pytest.approx(5 / 6)
    assert m["threshold"] == 0.5


def test_compute_metrics_threshold_and_ties():
    y = [0, 1, 0, 1]
    p = [0.3, 0.3, 0.2, 0.8]
    m = compute_metrics(y, p, threshold=0.3)  # p >= threshold is fake
    assert m["confusion"] == [[1, 1], [0, 2]]
    assert m["threshold"] == 0.3
    # pairs (real, fake): (0.3,0.3) tie = 1/2, (0.3,0.8) 1, (0.2,0.3) 1, (0.2,0.8) 1 -> 3.5 / 4
    assert m["roc_auc"] == pytest.approx(3.5 / 4)


def test_compute_metrics_one_class_has_no_auc():
    m = compute_metrics([0, 0, 0], [0.2, 0.7, 0.1])
    assert m["roc_auc"] is None
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["confusion"] == [[2, 1], [0, 0]]
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0
    assert compute_metrics([1, 1], [0.9, 0.8])["roc_auc"] is None


def test_metrics_by_group_and_kind_groups():
    y = [0, 1, 1, 0, 1]
    p = [0.2, 0.9, 0.4, 0.6, 0.7]
    sources = ["lfw_faceswap", "lfw_faceswap", "basemax_fakefaces", "ciplab_real_and_fake_face", "mystery"]
    by = metrics_by_group(y, p, sources)
    assert list(by) == sorted(set(sources))
    assert by["lfw_faceswap"]["n"] == 2 and by["lfw_faceswap"]["roc_auc"] == 1.0
    assert by["basemax_fakefaces"]["recall"] == 0.0
    kinds = kind_groups(y, sources, {"lfw_faceswap": "swap", "basemax_fakefaces": "gan"})
    assert kinds == ["real", "swap", "gan", "real", "unknown"]


def test_metrics_by_kind_scores_each_kind_against_all_reals():
    y = [0, 1, 1, 0, 1]
    p = [0.2, 0.9, 0.4, 0.6, 0.7]
    sources = ["lfw_faceswap", "lfw_faceswap", "basemax_fakefaces", "ciplab_real_and_fake_face", "mystery"]
    by = metrics_by_kind(y, p, sources, {"lfw_faceswap": "swap", "basemax_fakefaces": "gan"})
    assert set(by) == {"swap", "gan", "unknown", "real"}
    # gan: the one fake (0.4) vs both reals (0.2, 0.6): ranks above one of two -> AUC 0.5; missed at 0.5.
    assert by["gan"]["n"] == 3 and by["gan"]["n_fake"] == 1
    assert by["gan"]["roc_auc"] == pytest.approx(0.5) and by["gan"]["recall"] == 0.0
    assert by["swap"]["roc_auc"] == 1.0 and by["swap"]["recall"] == 1.0
    assert by["real"]["n"] == 2 and by["real"]["accuracy"] == 0.5


# --- evaluate CLI -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_model_path(tmp_path_factory):
    """An untrained 32 px baseline: arbitrary but deterministic scores."""
    import keras

    keras.utils.set_random_seed(3)
    return save_model(build_baseline(32), tmp_path_factory.mktemp("rand"), "rand", 32)


@pytest.fixture(scope="module")
def swap_dir(tmp_path_factory):
    """<dir>/{real,fake}/lfw_faceswap__*.png, 8 per class."""
    root = make_dataset_dir(tmp_path_factory.mktemp("eval") / "swap", splits=(None,), source="lfw_faceswap", seed=5)
    write_manifest(root, {"lfw_faceswap": "swap"})  # kinds come from the manifest, never from a list in the code
    return root


def run_json(capsys, *argv):
    rc = evaluate_cli.main([*argv, "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    out = captured.out
    assert out.endswith("\n") and out.count("\n") == 1  # exactly one line ...
    return json.loads(out)  # ... holding one JSON object


def test_evaluate_json_oracle_is_perfect(capsys, oracle_model_path, swap_dir):
    r = run_json(capsys, "--model", str(oracle_model_path), "--data", str(swap_dir))
    for key in ("n", "accuracy", "precision", "recall", "f1", "roc_auc", "confusion", "by_source", "by_kind"):
        assert key in r
    assert r["model"] == "oracle"
    assert r["n"] == 16
    assert r["confusion"] == [[8, 0], [0, 8]]
    assert r["accuracy"] == r["precision"] == r["recall"] == r["f1"] == r["roc_auc"] == 1.0
    assert list(r["by_source"]) == ["lfw_faceswap"] and r["by_source"]["lfw_faceswap"]["n"] == 16
    # A kind is scored against all reals: 8 swaps + 8 reals; "real" holds the reals alone.
    assert r["by_kind"]["swap"]["n"] == 16 and r["by_kind"]["swap"]["n_fake"] == 8
    assert r["by_kind"]["swap"]["roc_auc"] == 1.0 and r["by_kind"]["real"]["n"] == 8
    assert "errors" not in r


def test_evaluate_matches_compute_metrics_on_detector_outputs(capsys, random_model_path, swap_dir):
    r = run_json(capsys, "--model", str(random_model_path), "--data", str(swap_dir))
    files = list_files(swap_dir)
    detector = models.load_model(random_model_path)
    p = detector.predict([load_image(f) for f in files.paths])
    expected = compute_metrics(files.y, p)
    for key in ("n", "accuracy", "precision", "recall", "f1", "confusion"):
        assert r[key] == expected[key], key
    assert r["roc_auc"] == pytest.approx(expected["roc_auc"], abs=1e-6)


def test_evaluate_threshold_option(capsys, random_model_path, swap_dir):
    r = run_json(capsys, "--model", str(random_model_path), "--data", str(swap_dir), "--threshold", "0")
    assert r["threshold"] == 0.0
    assert r["confusion"] == [[0, 8], [0, 8]]  # everything is fake at threshold 0


def test_evaluate_one_class_folder_has_null_auc(capsys, oracle_model_path, tmp_path):
    make_dataset_dir(tmp_path / "d", splits=(None,), n_per_class=3)
    import shutil

    shutil.rmtree(tmp_path / "d" / "fake")
    r = run_json(capsys, "--model", str(oracle_model_path), "--data", str(tmp_path / "d"))
    assert r["n"] == 3
    assert r["roc_auc"] is None
    assert r["confusion"] == [[3, 0], [0, 0]]


def test_evaluate_dataset_root_with_split(capsys, oracle_model_path, tiny_data):
    r = run_json(capsys, "--model", str(oracle_model_path), "--data", str(tiny_data), "--split", "test")
    assert r["split"] == "test" and r["n"] == 16
    assert r["accuracy"] == 1.0
    assert list(r["by_source"]) == ["synth"]


def test_evaluate_unreadable_file_is_reported_not_fatal(capsys, oracle_model_path, tmp_path):
    root = make_dataset_dir(tmp_path / "d", splits=(None,), n_per_class=2)
    (root / "fake" / "synth__broken.png").write_bytes(b"this is not a png")
    r = run_json(capsys, "--model", str(oracle_model_path), "--data", str(root))
    assert r["n"] == 4  # the broken file is left out of the metrics ...
    assert len(r["errors"]) == 1  # ... and listed
    assert r["errors"][0]["path"].endswith("synth__broken.png") and r["errors"][0]["p_fake"] is None


def test_evaluate_text_report(capsys, oracle_model_path, swap_dir):
    assert evaluate_cli.main(["--model", str(oracle_model_path), "--data", str(swap_dir)]) == 0
    out = capsys.readouterr().out
    assert "accuracy 1.000" in out and "ROC AUC 1.000" in out
    assert "real       8      0" in out and "fake       0      8" in out
    assert "lfw_faceswap" in out


@pytest.mark.parametrize("data", ["missing", "no_classes", "root_without_split"])
def test_evaluate_bad_data_exits_2(capsys, oracle_model_path, tmp_path, tiny_data, data):
    path = {"missing": tmp_path / "missing", "no_classes": tmp_path, "root_without_split": tiny_data}[data]
    rc = evaluate_cli.main(["--model", str(oracle_model_path), "--data", str(path), "--json"])
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.out == ""
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1


def test_evaluate_unknown_model_exits_2(capsys, swap_dir):
    rc = evaluate_cli.main(["--model", "definitely_not_a_model", "--data", str(swap_dir), "--json"])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    assert "definitely_not_a_model" in captured.err and captured.err.count("\n") == 1


def test_evaluate_scores_equal_detector_predict(random_model_path, swap_dir):
    """evaluate() streams files through scoring; its per-file scores equal a direct predict."""
    from models.scoring.stream import score_paths

    detector = models.load_model(random_model_path)
    files = list_files(swap_dir)
    scores = [s.p_fake for s in score_paths(detector, files.paths, batch_size=5, crop="none")]  # crops as-is
    direct = detector.predict([load_image(f) for f in files.paths])
    np.testing.assert_allclose(scores, direct, rtol=1e-5, atol=1e-6)

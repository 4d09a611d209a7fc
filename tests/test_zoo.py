"""The Models page's logic (models.zoo), evaluate --save, and the cross-source study, on synthetic data."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from models.analysis import zoo
from models.analysis.evaluate import EVAL_COLUMNS, eval_csv_path, save_scores
from models.analysis.metrics import compute_metrics
from models.training.crosssource import source_scores
from tests.conftest import build_oracle_model, save_model


def write_scores(folder, name, rows, split="test", kinds=None):
    return save_scores(eval_csv_path(name, split, folder), rows, kinds)


def fake_model(folder, name, meta=None):
    """A model file plus metadata in ``folder`` (content irrelevant: zoo only reads size and JSON)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.npz").write_bytes(b"x" * 2000)
    (folder / f"{name}.json").write_text(json.dumps({"name": name, "input_size": 64, "params": 123, **(meta or {})}))


def test_save_and_load_scores_round_trip(tmp_path):
    rows = [("test/real/a.jpg", "s1", 0, 0.25), ("test/fake/b.jpg", "s2", 1, 0.875)]
    path = write_scores(tmp_path, "m", rows, kinds={"s2": "gan"})
    assert path.name == "m.eval.csv"
    with open(path, newline="") as fh:
        assert next(csv.reader(fh)) == list(EVAL_COLUMNS) == ["path", "source", "label", "p_fake", "kind"]
    s = zoo.load_scores("m", "test", tmp_path)
    assert s.kinds == {"s2": "gan"}  # s1 has no kind: "unknown" where it is shown
    assert s.paths == ["test/real/a.jpg", "test/fake/b.jpg"]
    assert s.sources == ["s1", "s2"]
    assert s.y.tolist() == [0, 1]
    np.testing.assert_allclose(s.p, [0.25, 0.875])
    assert eval_csv_path("m", "val", tmp_path).name == "m.eval-val.csv"
    assert zoo.load_scores("m", "val", tmp_path) is None


def test_summary_uses_saved_threshold(tmp_path):
    fake_model(tmp_path, "m", {"operating_point": {"threshold": 0.7}})
    p = [0.1, 0.6, 0.65, 0.8, 0.9, 0.3]
    y = [0, 0, 1, 1, 1, 0]
    write_scores(tmp_path, "m", [(f"f{i}", "s", yi, pi) for i, (yi, pi) in enumerate(zip(y, p))])
    (row,) = zoo.summary_rows(tmp_path, latency={"m": {"ms_single": 3.0, "ms_batched": 0.5}})
    expected = compute_metrics(y, p, 0.7)
    assert row["threshold"] == 0.7
    assert row["recall"] == pytest.approx(expected["recall"]) == pytest.approx(2 / 3)
    assert row["accuracy"] == pytest.approx(expected["accuracy"])
    assert row["ROC AUC"] == pytest.approx(expected["roc_auc"])
    assert row["ms / image"] == 3.0 and row["params"] == 123 and row["input px"] == 64


def test_summary_without_scores_leaves_metrics_blank(tmp_path):
    fake_model(tmp_path, "m")
    (row,) = zoo.summary_rows(tmp_path)
    assert row["accuracy"] is None and row["threshold"] == 0.5


def test_within_source_auc_exposes_a_shortcut():
    """Source A: reals only, scored low; source B: fakes scored high, plus its reals scored just as high.

    Overall the model looks good; within source B it cannot tell its own reals from its fakes."""
    sources = ["A"] * 4 + ["B"] * 8
    y = np.array([0, 0, 0, 0] + [1, 1, 1, 1, 0, 0, 0, 0])
    p = np.array([0.1, 0.15, 0.2, 0.1] + [0.9, 0.8, 0.85, 0.95, 0.9, 0.8, 0.85, 0.95])
    s = zoo.Scores("m", "test", [""] * 12, sources, y, p, None)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, p) > 0.7  # looks useful overall
    rows = {r["source"]: r for r in zoo.source_rows({"m": s}, {"m": 0.5})}
    assert rows["A"]["AUC within source"] is None and rows["A"]["reals passed"] == 1.0
    assert rows["B"]["AUC within source"] == pytest.approx(0.5)
    assert rows["B"]["fakes caught"] == 1.0 and rows["B"]["reals passed"] == 0.0


def test_kind_rows_and_roc_and_confusion():
    sources = ["lfw_faceswap"] * 4 + ["basemax_fakefaces"] * 2
    y = np.array([0, 0, 1, 1, 1, 1])
    p = np.array([0.2, 0.6, 0.7, 0.4, 0.9, 0.3])
    s = zoo.Scores("m", "test", [""] * 6, sources, y, p, None, {"lfw_faceswap": "swap", "basemax_fakefaces": "gan"})
    kinds = {r["kind"]: r for r in zoo.kind_rows({"m": s}, {"m": 0.5})}
    assert kinds["swap"]["accuracy"] == 0.5 and kinds["swap"]["n"] == 2
    assert kinds["gan"]["accuracy"] == 0.5
    assert kinds["real"]["accuracy"] == 0.5 and kinds["real"]["n"] == 2
    fpr, tpr, auc = zoo.roc_data({"m": s})["m"]
    assert fpr[0] == 0 and tpr[-1] == 1 and 0 <= auc <= 1
    assert zoo.confusion(s, 0.5).tolist() == [[1, 1], [2, 2]]


def test_raw_scores_undo_platt():
    raw = np.array([0.05, 0.3, 0.5, 0.8, 0.99])
    cal = {"method": "platt", "a": 0.6, "b": -0.4}
    logit = np.log(raw / (1 - raw))
    shown = 1 / (1 + np.exp(-(cal["a"] * logit + cal["b"])))
    np.testing.assert_allclose(zoo.raw_scores(shown, cal), raw, rtol=1e-5)
    np.testing.assert_allclose(zoo.raw_scores(shown, None), shown)


def test_history_and_crosssource_rows():
    assert zoo.history({"history": {"loss": [0.7, 0.5], "note": "x", "val_loss": []}}) == {"loss": [0.7, 0.5]}
    assert zoo.history({}) == {}
    table = {"spectrum": {"rows": [{"source": "s", "kind": "gan",
                                    "seen": {"n_fake": 5, "n_real": 9, "against": "own reals", "recall": 0.8,
                                             "roc_auc": 0.9},
                                    "held_out": {"n_fake": 5, "n_real": 9, "against": "own reals", "recall": 0.4,
                                                 "roc_auc": 0.6}}]}}
    (row,) = zoo.crosssource_rows(table)
    assert row["AUC change"] == pytest.approx(-0.3)
    assert row["held-out source"] == "s" and row["recipe"] == "spectrum"


def test_source_scores_against_own_or_all_reals():
    n = 30
    sources = np.array(["x"] * n + ["y"] * n + ["z"] * 5)
    y = np.array([0] * 15 + [1] * 15 + [0] * 30 + [1] * 5)
    p = np.concatenate([np.full(15, 0.2), np.full(15, 0.8), np.full(30, 0.3), np.full(5, 0.1)])
    x = source_scores(y, p, sources, "x")
    assert x["against"] == "all test reals"  # x has only 15 own reals (< 20)
    assert x["roc_auc"] == 1.0 and x["recall"] == 1.0
    z = source_scores(y, p, sources, "z")
    assert z["roc_auc"] == 0.0 and z["recall"] == 0.0  # its fakes score below every real


def test_measure_latency_is_positive(tmp_path, oracle_model_path):
    from models import load_model

    lat = zoo.measure_latency(load_model(oracle_model_path, cache=False), repeats=3, batch=8)
    assert lat["ms_single"] > 0 and lat["ms_batched"] > 0


def test_evaluate_save_writes_relative_paths(tmp_path, tiny_data, capsys):
    from models.evaluate import main

    model = save_model(build_oracle_model(32), tmp_path / "m", "oracle", 32)
    out = tmp_path / "scores"
    assert main(["--model", str(model), "--data", str(tiny_data), "--split", "test", "--save",
                 "--save-dir", str(out)]) == 0
    assert "saved to" in capsys.readouterr().out
    s = zoo.load_scores("oracle", "test", out)
    assert len(s) == 16
    assert all(p.startswith("test/") and (tiny_data / p).is_file() for p in s.paths)
    assert set(s.sources) == {"synth"}
    assert ((s.p >= 0.5) == (s.y == 1)).all()  # the oracle is right on every synthetic image
    assert main(["--model", str(model), "--data", str(tiny_data), "--split", "val", "--save",
                 "--save-dir", str(out)]) == 0
    assert zoo.load_scores("oracle", "val", out) is not None


def test_evaluate_save_refuses_perturbed_scores(tmp_path, tiny_data, capsys):
    from models.evaluate import main

    model = save_model(build_oracle_model(32), tmp_path / "m", "oracle", 32)
    assert main(["--model", str(model), "--data", str(tiny_data), "--split", "test", "--save",
                 "--perturb", "jpeg:50", "--save-dir", str(tmp_path)]) == 2
    assert "--save" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.csv"))


def test_stale_when_model_newer(tmp_path):
    import os

    fake_model(tmp_path, "m")
    path = write_scores(tmp_path, "m", [("f", "s", 0, 0.1)])
    s = zoo.load_scores("m", "test", tmp_path)
    assert not zoo.is_stale(s, tmp_path)
    os.utime(path, (1_000_000, 1_000_000))
    assert zoo.is_stale(s, tmp_path)


def test_crosssource_spectrum_on_tiny_data(tmp_path):
    """Two sources; leaving one out still trains, and the merged JSON holds a row per held-out source."""
    from models.crosssource import main
    from tests.conftest import make_dataset_dir

    root = tmp_path / "data"
    make_dataset_dir(root, n_per_class=6, source="aa", seed=1)
    make_dataset_dir(root, n_per_class=6, source="bb", seed=2)
    out = tmp_path / "cs.json"
    assert main(["--arch", "spectrum", "--data", str(root), "--out", str(out), "--quiet"]) == 0
    table = json.loads(out.read_text())
    rows = {r["source"]: r for r in table["spectrum"]["rows"]}
    assert set(rows) == {"aa", "bb"}
    assert rows["aa"]["seen"]["n_fake"] == 6 and rows["aa"]["held_out"]["against"] == "all test reals"
    assert 0 <= table["spectrum"]["reference_test_auc"] <= 1


def test_train_exclude_source_drops_it_from_train_and_val(tmp_path):
    from models.train import main
    from tests.conftest import make_dataset_dir

    root = tmp_path / "data"
    make_dataset_dir(root, n_per_class=4, source="aa", seed=1)
    make_dataset_dir(root, n_per_class=4, source="bb", seed=2)
    assert main(["--arch", "spectrum", "--data", str(root), "--out", str(tmp_path / "o"),
                 "--exclude-source", "bb", "--quiet"]) == 0
    meta = json.loads((tmp_path / "o" / "spectrum.json").read_text())
    assert meta["train_config"]["excluded_sources"] == ["bb"]
    assert meta["train_config"]["n_train"] == 8  # aa's 4 reals and 4 fakes only
    # Test keeps every source: both are scored.
    assert set(meta["metrics"]["test"]["by_source"]) == {"aa", "bb"}


# --- what the Models and Error analysis pages ask of the zoo -------------------------------------------------

def two_models(tmp_path):
    fake_model(tmp_path, "a", {"operating_point": {"threshold": 0.7}, "calibration": {"method": "platt", "a": 1.0,
                                                                                        "b": 0.0, "n": 4}})
    fake_model(tmp_path, "b")
    y, p = [0, 0, 1, 1], [0.1, 0.6, 0.65, 0.9]
    write_scores(tmp_path, "a", [(f"f{i}", "s", yi, pi) for i, (yi, pi) in enumerate(zip(y, p))])
    write_scores(tmp_path, "a", [(f"v{i}", "s", yi, pi) for i, (yi, pi) in enumerate(zip(y, p))], split="val")
    return zoo.load_scores("a", "test", tmp_path), zoo.load_scores("a", "val", tmp_path)


def test_stamps_metas_and_thresholds(tmp_path):
    import os

    test, _ = two_models(tmp_path)
    assert zoo.eval_stamp("b", "test", tmp_path) == 0.0
    assert zoo.eval_stamp("a", "test", tmp_path) == test.file.stat().st_mtime > 0
    assert zoo.model_stamp("a", tmp_path) == (tmp_path / "a.npz").stat().st_mtime
    metas = zoo.model_metas(["a", "b"], tmp_path)
    assert set(metas) == {"a", "b"} and metas["b"]["params"] == 123
    assert zoo.model_threshold("a", tmp_path) == 0.7 and zoo.model_threshold("b", tmp_path) == 0.5
    assert zoo.scores_stamps({"a": test}) == (("a", test.file.stat().st_mtime),)
    assert zoo.stale_models({"a": test}, tmp_path) == []
    os.utime(test.file, (1_000_000, 1_000_000))
    assert zoo.stale_models({"a": test}, tmp_path) == ["a"]


def test_by_model_pivots_one_column_per_model():
    rows = [{"model": "a", "kind": "gan", "n": 2, "accuracy": 0.5}, {"model": "b", "kind": "gan", "n": 2,
                                                                      "accuracy": 1.0}]
    wide = zoo.by_model(rows, ["kind", "n"], "accuracy")
    assert list(wide.columns) == ["kind", "n", "a", "b"] and wide.iloc[0].tolist() == ["gan", 2, 0.5, 1.0]
    assert len(zoo.by_model([], ["kind"], "ROC AUC vs reals")) == 0


def test_operating_points_rates_sweeps_and_reliability(tmp_path):
    test, val = two_models(tmp_path)
    (fpr, tpr), = zoo.operating_points({"a": test}, {"a": 0.7}).values()
    assert (fpr, tpr) == (0.0, 0.5)
    rates = zoo.split_rates({"val": val, "test": test}, 0.5)
    assert [r["split"] for r in rates] == ["val", "test"]
    assert set(rates[0]) == {"split", "precision", "recall", "fpr", "accuracy"}
    assert rates[1]["recall"] == 1.0 and rates[1]["fpr"] == 0.5
    assert set(zoo.split_sweeps({"val": val})) == {"val"}
    curves = zoo.reliability_curves(test, {"method": "platt", "a": 1.0, "b": 0.0})
    assert list(curves) == ["raw model output (test)", "P(fake) shown (test)"]
    assert list(zoo.reliability_curves(test, None)) == ["P(fake) shown (test)"]


def test_training_summary_and_crosssource_references():
    meta = {"train_config": {"best_epoch": 4, "epochs_run": 9, "early_stopping": {"monitor": "val_auc"},
                             "command": "python -m models.train"}}
    assert zoo.training_summary(meta) == {"best_epoch": "4", "epochs_run": "9", "monitor": "val_auc",
                                          "command": "python -m models.train"}
    assert zoo.training_summary({})["best_epoch"] == "?"
    table = {"v1": {"epochs": 3, "reference_test_auc": 0.91234}, "spectrum": {"reference_test_auc": 0.7},
             "other": {}}
    assert zoo.crosssource_references(table) == ["v1 3 epochs: 0.912", "spectrum: 0.700"]

"""models.catalog: the README tables and the Home page rows, from metadata JSON."""

from __future__ import annotations

import json

import pytest

from models.analysis import catalog
from models.analysis.catalog import markdown_table, model_rows


def _meta(acc, auc):
    return {"input_size": 64, "params": 1234, "metrics": {"test": {
        "overall": {"accuracy": acc, "precision": 0.5, "recall": 0.6, "f1": 0.55, "roc_auc": auc, "n": 10},
        "by_source": {"lfw_faceswap": {"accuracy": acc, "roc_auc": auc, "n": 10}},
        "by_kind": {"swap": {"recall": 0.7, "roc_auc": 0.8, "n_fake": 4}, "real": {"recall": 0.0, "n_fake": 0}},
    }}}


def test_markdown_table_and_rows(tmp_path, monkeypatch):
    for name, acc, auc in (("a_model", 0.9, 0.95), ("b_model", 0.6, None)):
        (tmp_path / f"{name}.keras").write_bytes(b"")
        (tmp_path / f"{name}.json").write_text(json.dumps(_meta(acc, auc)))
    table = markdown_table(tmp_path)
    assert "| `a_model` | 64 px | 1,234 | 0.900 | 0.500 | 0.600 | 0.550 | 0.950 |" in table
    assert "| `b_model` | 64 px | 1,234 | 0.600 | 0.500 | 0.600 | 0.550 | – |" in table
    assert "| lfw_faceswap | 10 | 0.900 (0.950) | 0.600 (–) |" in table
    assert "| swap | 4 | 0.700 (0.800) | 0.700 (0.800) |" in table
    assert "| real |" not in table  # reals are not a kind of fake
    monkeypatch.setattr("models.analysis.catalog.default_model_name", lambda: "b_model")
    rows = model_rows(tmp_path)
    assert [r["model"] for r in rows] == ["a_model", "b_model"]
    assert [r["default"] for r in rows] == [False, True]
    assert rows[0]["recall swap"] == 0.7 and "recall real" not in rows[0]


def _arm(source, auc):
    return {"source": source, "kind": "gan", "seen": {"roc_auc": 0.9}, "held_out": {"roc_auc": auc}}


def test_default_generalisation_sentence_from_the_crosssource_study(tmp_path, monkeypatch):
    from models.analysis.catalog import default_generalisation, generalisation_sentence, heldout_auc

    table = {
        "spectrum": {"arch": "spectrum", "rows": [_arm("a", 0.9)]},
        "v1 (earlier data)": {"arch": "v1", "epochs": 4, "created": "2026-01-01", "rows": [_arm("a", 0.8)]},
        "v1": {"arch": "v1", "epochs": 4, "created": "2025-01-01",
               "rows": [_arm("a", 0.4), _arm("b", 0.6), _arm("c", 0.55), _arm("d", None)]},
    }
    (tmp_path / "crosssource.json").write_text(json.dumps(table))
    (tmp_path / "m.keras").write_bytes(b"")
    (tmp_path / "m.json").write_text(json.dumps({**_meta(0.9, 0.959), "architecture": "v1"}))
    monkeypatch.setattr("models.analysis.catalog.default_model_name", lambda: "m")
    g = default_generalisation(tmp_path)
    assert g["entry"] == "v1" and g["n_sources"] == 3 and g["sources"] == ["a", "b", "c"]  # the AUC-less arm is skipped
    assert g["mean_auc"] == pytest.approx((0.4 + 0.6 + 0.55) / 3) and g["test_auc"] == 0.959
    sentence = generalisation_sentence(g)
    assert sentence == ("The default, `m`, reaches test ROC AUC 0.959 on the sources it was trained on; on sources it "
                        "never saw in training (leave-one-source-out, 3 sources; cross-source study entry `v1`, "
                        "4 epochs), its recipe averages ROC AUC 0.517: near chance.")
    # no entry named after the architecture: the newest entry of that arch
    newest = heldout_auc({k: v for k, v in table.items() if k != "v1"} | {"v1 old": {**table["v1"]}}, "v1")
    assert newest["entry"] == "v1 (earlier data)" and newest["mean_auc"] == pytest.approx(0.8)
    assert heldout_auc(table, "tuned") is None
    assert "near chance" not in generalisation_sentence({**newest, "model": "m", "test_auc": None})
    assert generalisation_sentence({**newest, "model": "m", "test_auc": None}).startswith("On sources it never saw")
    monkeypatch.setattr("models.analysis.catalog.default_model_name", lambda: "absent")
    assert default_generalisation(tmp_path) is None


def test_score_note_names_each_held_out_source_lowest_first():
    g = {"entry": "v1", "aucs": {"ciplab": 0.594, "lfw": 0.483, "sdfd": 0.407}}
    note = catalog.score_note(g)
    assert note.startswith("What a score means") and "entry `v1`" in note
    assert note.index("sdfd 0.41") < note.index("lfw 0.48") < note.index("ciplab 0.59")  # lowest first
    assert "weak evidence" in catalog.score_note(None) and "AUC" not in catalog.score_note(None)

"""models.catalog: the README tables and the Home page rows, from metadata JSON."""

from __future__ import annotations

import json

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

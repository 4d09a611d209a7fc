"""The leave-one-source-out study: train a recipe with and without each source and compare the two on that
source's test images (:func:`run`), merge the results into ``assets/models/crosssource.json`` (:func:`merge`).
The command line is ``python -m models.crosssource`` (models/crosssource.py), whose help explains the table.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from models.data.files import data_root, kind_of, list_files
from models.detectors.registry import ASSETS_DIR, load_model
from models.training import portable
from models.training.train import TrainConfig, train

OUT_FILE = ASSETS_DIR / "crosssource.json"
MIN_OWN_REALS = 20




def source_scores(y, p, sources, source: str) -> dict:
    """Recall at 0.5 and AUC of ``source``'s fakes against reals (its own when enough, else all)."""
    y, p, sources = np.asarray(y), np.asarray(p, dtype=float), np.asarray(sources)
    fakes = (sources == source) & (y == 1)
    own_reals = (sources == source) & (y == 0)
    reals = own_reals if own_reals.sum() >= MIN_OWN_REALS else (y == 0)
    pick = fakes | reals
    auc = float(roc_auc_score(y[pick], p[pick])) if fakes.any() and reals.any() else None
    return {"n_fake": int(fakes.sum()), "n_real": int(reals.sum()),
            "against": "own reals" if reals is own_reals else "all test reals",
            "recall": float((p[fakes] >= 0.5).mean()) if fakes.any() else None, "roc_auc": auc}


def run(arch: str, data: str | None = None, epochs: int = 4, sources: Sequence[str] | None = None, seed: int = 0,
        quiet: bool = False) -> dict:
    """Train the all-sources reference and one model per held-out source (``sources``, default every source with
    fakes in test), score them on the test split and return the study's results (see the module doc)."""
    root = data_root(data)
    test = list_files(root, "test")
    fake_sources = sorted({s for s, y in zip(test.sources, test.labels) if y == 1})
    held = list(sources) if sources else fake_sources
    x_test = None
    results: dict = {"arch": arch, "epochs": epochs, "seed": seed, "data": str(root), "rows": []}
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [None, *held]
        scored = {}
        for i, leave_out in enumerate(runs):
            name = "all_sources" if leave_out is None else f"without_{leave_out}"
            if not quiet:
                print(f"[{i + 1}/{len(runs)}] training {name} ({time.time() - started:.0f} s so far)", flush=True)
            train(TrainConfig(arch=arch, data=str(root), out=tmp, name=name, seed=seed, epochs=epochs, quiet=True,
                              exclude_source=(leave_out,) if leave_out else ()))
            det = load_model(Path(tmp) / f"{name}{'.npz' if arch == 'spectrum' else '.keras'}", cache=False)
            if x_test is None or x_test.shape[1] != det.input_size:
                x_test = portable.load_arrays(test, det.input_size)
            scored[leave_out] = det.predict(x_test)
    for source in held:
        results["rows"].append({
            "source": source, "kind": kind_of(source, test.source_kinds),
            "seen": source_scores(test.y, scored[None], test.sources, source),
            "held_out": source_scores(test.y, scored[source], test.sources, source),
        })
    results["reference_test_auc"] = float(roc_auc_score(test.y, scored[None]))  # the all-sources model, whole test
    results["seconds"] = round(time.time() - started, 1)
    results["created"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return results


def merge(out: Path, results: dict) -> dict:
    table = json.loads(out.read_text()) if out.is_file() else {}
    table[results["arch"]] = results
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=2) + "\n")
    return table


def format_rows(results: dict) -> str:
    def f(v):
        return "  n/a" if v is None else f"{v:.3f}"

    lines = [f"{results['arch']}: {'source':<28} {'kind':<9} {'AUC seen':>9} {'AUC held out':>12} "
             f"{'caught seen':>11} {'caught held out':>15}"]
    for r in results["rows"]:
        lines.append(f"{'':<{len(results['arch']) + 2}}{r['source']:<28} {r['kind']:<9} {f(r['seen']['roc_auc']):>9} "
                     f"{f(r['held_out']['roc_auc']):>12} {f(r['seen']['recall']):>11} {f(r['held_out']['recall']):>15}")
    return "\n".join(lines)

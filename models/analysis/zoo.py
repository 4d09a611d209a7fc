"""The model zoo, compared honestly: everything the Models page shows, computed without Streamlit.

Metrics come from the cached per-image scores that ``python -m models.evaluate --all --split test --save``
writes (``assets/models/<name>.eval.csv``; ``--split val`` gives ``<name>.eval-val.csv``), so the page
never re-runs the models on the dataset. Verdicts use each model's own operating point (its threshold).
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.analysis.metrics import compute_metrics, metrics_by_kind
from models.data.files import SOURCE_KINDS
from models.detectors.labels import THRESHOLD
from models.detectors.registry import ASSETS_DIR, list_models, model_file, read_metadata

CROSSSOURCE_FILE = "crosssource.json"


@dataclass
class Scores:
    """One model's cached per-image scores on one split."""

    name: str
    split: str
    paths: list[str]
    sources: list[str]
    y: np.ndarray
    p: np.ndarray
    file: Path

    def __len__(self) -> int:
        return len(self.y)


def eval_file(name: str, split: str = "test", folder=None) -> Path:
    from models.analysis.evaluate import eval_csv_path

    return eval_csv_path(name, split, folder)


def load_scores(name: str, split: str = "test", folder=None) -> Scores | None:
    """The cached scores of ``name`` on ``split``, or None when ``models.evaluate --save`` has not run."""
    path = eval_file(name, split, folder)
    if not path.is_file():
        return None
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return Scores(name, split, [r["path"] for r in rows], [r["source"] for r in rows],
                  np.array([int(r["label"]) for r in rows], dtype=int),
                  np.array([float(r["p_fake"]) for r in rows], dtype=float), path)


def threshold_of(meta: dict) -> float:
    """A model's operating point: the saved threshold, else the default 0.5."""
    return float((meta.get("operating_point") or {}).get("threshold", THRESHOLD))


def is_stale(scores: Scores, folder=None) -> bool:
    """True when the model file changed after its scores were saved (rerun ``make eval``)."""
    folder = Path(folder) if folder is not None else ASSETS_DIR
    return scores.file.stat().st_mtime + 1 < model_file(folder, scores.name).stat().st_mtime


def summary_rows(folder=None, latency: dict | None = None) -> list[dict]:
    """One row per installed model: size, input, latency, threshold and test metrics (cached scores)."""
    folder = Path(folder) if folder is not None else ASSETS_DIR
    rows = []
    for name in list_models(folder):
        path = model_file(folder, name)
        meta = read_metadata(path)
        t = threshold_of(meta)
        scores = load_scores(name, "test", folder)
        m = compute_metrics(scores.y, scores.p, t) if scores is not None else {}
        lat = (latency or {}).get(name, {})
        rows.append({
            "model": name,
            "params": meta.get("params"),
            "file KB": round(path.stat().st_size / 1e3, 1),
            "input px": meta.get("input_size"),
            "ms / image": lat.get("ms_single"),
            "ms / image (batch 64)": lat.get("ms_batched"),
            "threshold": t,
            "calibrated": bool(meta.get("calibration")),
            "accuracy": m.get("accuracy"),
            "precision": m.get("precision"),
            "recall": m.get("recall"),
            "F1": m.get("f1"),
            "ROC AUC": m.get("roc_auc"),
            "n test": m.get("n"),
        })
    return rows


def source_rows(all_scores: dict[str, Scores], thresholds: dict[str, float]) -> list[dict]:
    """Per source and model: reals passed, fakes caught, accuracy and the within-source ROC AUC.

    The within-source AUC (this source's fakes against this source's own reals) is the number a shortcut
    cannot fake: a model that only recognises *where* an image comes from scores well overall but near 0.5
    here.
    """
    from sklearn.metrics import roc_auc_score

    rows = []
    for name, s in all_scores.items():
        t = thresholds.get(name, THRESHOLD)
        src = np.asarray(s.sources)
        for source in sorted(set(s.sources)):
            mask = src == source
            y, p = s.y[mask], s.p[mask]
            pred = p >= t
            rows.append({
                "model": name, "source": source, "kind": SOURCE_KINDS.get(source, "unknown"),
                "n real": int((y == 0).sum()), "n fake": int((y == 1).sum()),
                "accuracy": float((pred == (y == 1)).mean()),
                "reals passed": float((~pred[y == 0]).mean()) if (y == 0).any() else None,
                "fakes caught": float(pred[y == 1].mean()) if (y == 1).any() else None,
                "AUC within source": float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else None,
            })
    return rows


def kind_rows(all_scores: dict[str, Scores], thresholds: dict[str, float]) -> list[dict]:
    """Per kind of fake (GAN, swap, photoshop) and model: share caught and ROC AUC against all reals."""
    rows = []
    for name, s in all_scores.items():
        by_kind = metrics_by_kind(s.y, s.p, s.sources, SOURCE_KINDS, thresholds.get(name, THRESHOLD))
        for kind, m in by_kind.items():
            rows.append({"model": name, "kind": kind, "n": m["n_fake"] if kind != "real" else m["n"],
                         "accuracy": m["accuracy"] if kind == "real" else m["recall"],
                         "ROC AUC vs reals": m["roc_auc"] if kind != "real" else None})
    return rows


def roc_data(all_scores: dict[str, Scores]) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    from sklearn.metrics import roc_auc_score, roc_curve

    out = {}
    for name, s in all_scores.items():
        if len(set(s.y.tolist())) == 2:
            fpr, tpr, _ = roc_curve(s.y, s.p)
            out[name] = (fpr, tpr, float(roc_auc_score(s.y, s.p)))
    return out


def confusion(s: Scores, threshold: float) -> np.ndarray:
    """[[tn, fp], [fn, tp]] at ``threshold``."""
    return np.asarray(compute_metrics(s.y, s.p, threshold)["confusion"])


def history(meta: dict) -> dict[str, list[float]]:
    """Per-epoch training curves from a model's metadata (empty for models not trained by epochs)."""
    return {k: list(v) for k, v in (meta.get("history") or {}).items() if isinstance(v, list) and v}


def raw_scores(p: np.ndarray, calibration: dict | None) -> np.ndarray:
    """The model's raw outputs behind calibrated scores ``p`` (for the 'before calibration' curve)."""
    from models.detectors.calibration import invert

    return invert(p, calibration)


def measure_latency(detector, repeats: int = 10, batch: int = 64, seed: int = 0) -> dict:
    """Median wall time of one single-image ``predict`` call, and per image at batch ``batch`` (ms)."""
    rng = np.random.default_rng(seed)
    size = detector.input_size
    one = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8)]
    many = list(rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8))
    detector.predict(one)  # warm-up: graph tracing, first-call allocations
    detector.predict(many)
    single = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        detector.predict(one)
        single.append(time.perf_counter() - t0)
    batched = []
    for _ in range(max(2, repeats // 4)):
        t0 = time.perf_counter()
        detector.predict(many)
        batched.append(time.perf_counter() - t0)
    return {"ms_single": 1e3 * float(np.median(single)), "ms_batched": 1e3 * float(np.median(batched)) / batch}


def load_crosssource(folder=None) -> dict:
    folder = Path(folder) if folder is not None else ASSETS_DIR
    path = folder / CROSSSOURCE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def crosssource_rows(table: dict) -> list[dict]:
    """Flat rows of the leave-one-source-out study: per recipe and source, seen vs held out."""
    rows = []
    for arch, res in table.items():
        for r in res.get("rows", []):
            seen, held = r["seen"], r["held_out"]
            drop = None if seen["roc_auc"] is None or held["roc_auc"] is None else held["roc_auc"] - seen["roc_auc"]
            rows.append({"recipe": arch, "epochs": res.get("epochs") if arch != "spectrum" else None,
                         "held-out source": r["source"], "kind": r["kind"],
                         "fakes": seen["n_fake"], "reals": f"{seen['n_real']} ({seen['against']})",
                         "AUC seen": seen["roc_auc"], "AUC held out": held["roc_auc"], "AUC change": drop,
                         "caught seen": seen["recall"], "caught held out": held["recall"]})
    return rows

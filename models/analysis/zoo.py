"""The model zoo, compared honestly: everything the Models page shows, computed without Streamlit.

Metrics come from the cached per-image scores that ``python -m models.evaluate --all --split test --save``
writes (``assets/models/<name>.eval.csv``; ``--split val`` gives ``<name>.eval-val.csv``), so the page
never re-runs the models on the dataset. Verdicts use each model's own operating point (its threshold).
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.analysis.metrics import compute_metrics, metrics_by_kind
from models.data.files import data_root, kind_of, kinds_from_rows, source_kinds
from models.detectors.labels import THRESHOLD, threshold_of
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
    kinds: dict[str, str] = field(default_factory=dict)  # source -> kind of its fakes

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
    # kinds from the CSV's ``kind`` column; scores saved before it existed take them from the dataset's manifest
    kinds = kinds_from_rows(rows) if rows and "kind" in rows[0] else source_kinds(data_root())
    return Scores(name, split, [r["path"] for r in rows], [r["source"] for r in rows],
                  np.array([int(r["label"]) for r in rows], dtype=int),
                  np.array([float(r["p_fake"]) for r in rows], dtype=float), path, kinds)


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
                "model": name, "source": source, "kind": kind_of(source, s.kinds, bool((y == 1).any())),
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
        by_kind = metrics_by_kind(s.y, s.p, s.sources, s.kinds, thresholds.get(name, THRESHOLD))
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


# --- what the Models and Error analysis pages ask of the zoo -----------------------------------------------------

def eval_stamp(name: str, split: str = "test", folder=None) -> float:
    """When the cached scores of ``name`` on ``split`` were written (file mtime); 0.0 when there are none.
    A cache key: it changes when ``make eval`` rewrites them."""
    path = eval_file(name, split, folder)
    return path.stat().st_mtime if path.is_file() else 0.0


def model_stamp(name: str, folder=None) -> float:
    """When the model file of ``name`` was written (mtime): a cache key for scores made with it."""
    return model_file(Path(folder) if folder is not None else ASSETS_DIR, name).stat().st_mtime


def model_metas(names: list[str], folder=None) -> dict[str, dict]:
    """The metadata JSON of each installed model in ``names``."""
    folder = Path(folder) if folder is not None else ASSETS_DIR
    return {n: read_metadata(model_file(folder, n)) for n in names}


def model_threshold(name: str, folder=None) -> float:
    """The operating point of the installed model ``name`` (its saved threshold, else the default)."""
    return threshold_of(model_metas([name], folder)[name])


def scores_stamps(all_scores: dict[str, Scores]) -> tuple[tuple[str, float], ...]:
    """(name, mtime of its scores file) per model: a cache key for figures drawn from ``all_scores``."""
    return tuple((n, s.file.stat().st_mtime) for n, s in all_scores.items())


def stale_models(all_scores: dict[str, Scores], folder=None) -> list[str]:
    """The models whose file changed after their scores were saved (see :func:`is_stale`)."""
    return [n for n, s in all_scores.items() if is_stale(s, folder)]


def by_model(rows: list[dict], index: list[str], value: str):
    """``rows`` (one per model and ``index`` values) as a table with one ``value`` column per model."""
    import pandas as pd

    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=[*index, "model", value])
    return frame.set_index([*index, "model"])[value].unstack("model").reset_index()


def operating_points(all_scores: dict[str, Scores], thresholds: dict[str, float]) -> dict[str, tuple[float, float]]:
    """(false positive rate, true positive rate) of each model at its threshold: its point on the ROC curve."""
    ops = {}
    for n, s in all_scores.items():
        (tn, fp), (fn, tp) = confusion(s, thresholds[n])
        ops[n] = (fp / max(tn + fp, 1), tp / max(tp + fn, 1))
    return ops


def split_rates(splits: dict[str, Scores], threshold: float) -> list[dict]:
    """Per split: precision, recall, false positive rate and accuracy at ``threshold``."""
    from models.analysis.calibration import rates_at

    keep = ("precision", "recall", "fpr", "accuracy")
    return [{"split": split, **{k: v for k, v in rates_at(s.y, s.p, threshold).items() if k in keep}}
            for split, s in splits.items()]


def split_sweeps(splits: dict[str, Scores]) -> dict[str, dict]:
    """Per split: precision, recall and FPR against the threshold (models.analysis.calibration.threshold_sweep)."""
    from models.analysis.calibration import threshold_sweep

    return {split: threshold_sweep(s.y, s.p) for split, s in splits.items()}


def reliability_curves(test: Scores, calibration: dict | None) -> dict[str, dict]:
    """Reliability on test of the P(fake) shown, and of the raw model output when the model is calibrated."""
    from models.analysis.calibration import reliability

    curves = {}
    if calibration:
        curves["raw model output (test)"] = reliability(test.y, raw_scores(test.p, calibration))
    curves["P(fake) shown (test)"] = reliability(test.y, test.p)
    return curves


def training_summary(meta: dict) -> dict[str, str]:
    """Best epoch, epochs run, early-stopping monitor and command of a trained model ("?" when not recorded)."""
    cfg = meta.get("train_config", {})
    return {"best_epoch": str(cfg.get("best_epoch", "?")), "epochs_run": str(cfg.get("epochs_run", "?")),
            "monitor": str(cfg.get("early_stopping", {}).get("monitor", "?")), "command": str(cfg.get("command", "?"))}


def crosssource_references(table: dict) -> list[str]:
    """Per recipe of the cross-source study: its all-sources model's test ROC AUC under the study's budget."""
    return [f"{arch} {res['epochs']} epochs: {res['reference_test_auc']:.3f}" if arch != "spectrum" else
            f"{arch}: {res['reference_test_auc']:.3f}" for arch, res in table.items() if "reference_test_auc" in res]

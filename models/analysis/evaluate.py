"""Evaluate a detector on a labelled folder: ``python -m models.evaluate [--model M] --data DIR [--json]``.

DIR holds ``real/`` and ``fake/`` (or pass a dataset root and ``--split``).
Reports accuracy, precision, recall, F1 (fake is positive), ROC AUC, the
confusion matrix ``[[tn, fp], [fn, tp]]`` and n, and per source / per kind of
fake when sources are known (``manifest.csv`` or ``<source>__`` file names).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

# ``kind``: the kind of fake of the row's source (manifest column ``kind``), so the cached scores carry what
# the Models page's per-kind tables need without the dataset at hand.
EVAL_COLUMNS = ("path", "source", "label", "p_fake", "kind")


def eval_csv_path(name: str, split: str | None = "test", folder=None) -> Path:
    """Where ``--save`` writes (and the Models page reads) a model's per-image scores on ``split``."""
    from models.detectors.registry import ASSETS_DIR

    folder = Path(folder) if folder is not None else ASSETS_DIR
    return folder / (f"{name}.eval.csv" if split in (None, "test") else f"{name}.eval-{split}.csv")


def save_scores(out: Path, rows, kinds: dict[str, str] | None = None) -> Path:
    """Write ``(path, source, label, p_fake)`` rows as CSV (plus each source's kind from ``kinds``), atomically.
    Paths only, never pixels."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(EVAL_COLUMNS)
        for path, source, label, p in rows:
            writer.writerow([path, source, int(label), f"{p:.6f}", (kinds or {}).get(source, "")])
    os.replace(tmp, out)
    return out


def evaluate(detector, data: str, split: str | None = None, batch_size: int = 64, threshold=None,
             progress: bool = True, perturb: str | None = None, crop: str = "none", save_to=None) -> dict:
    from models.analysis.metrics import compute_metrics, metrics_by_group, metrics_by_kind
    from models.data.files import DataError, list_files
    from models.data.perturb import parse
    from models.detectors.labels import THRESHOLD
    from models.scoring.stream import score_paths

    threshold = getattr(detector, "threshold", THRESHOLD) if threshold is None else threshold
    transform = parse(perturb) if perturb else None
    files = list_files(data, split)
    if len(files) == 0:
        raise DataError(f"no images under {data}")
    bar = tqdm(total=len(files), desc=f"evaluating {detector.name}", unit="img", disable=not progress)
    scores = list(score_paths(detector, files.paths, batch_size=batch_size, progress=lambda n: bar.update(n - bar.n),
                              transform=transform, crop=crop))
    bar.close()
    ok = np.array([s.p_fake is not None for s in scores])
    errors = [s.to_dict() for s in scores if s.error]
    y = files.y[ok]
    p = np.array([s.p_fake for s in scores if s.p_fake is not None], dtype=float)
    sources = [s for s, good in zip(files.sources, ok) if good]
    result = {"model": detector.name, "data": str(data), "split": split, "perturb": perturb,
              **compute_metrics(y, p, threshold)}
    if any(s != "unknown" for s in sources):
        result["by_source"] = metrics_by_group(y, p, sources, threshold)
        result["by_kind"] = metrics_by_kind(y, p, sources, files.source_kinds, threshold)
    if errors:
        result["errors"] = errors
    if save_to is not None:
        base = Path(data) / split if split else Path(data)
        rows = ((_relative(path, base.parent if split else base), src, y_i, p_i)
                for path, src, y_i, p_i in zip([f for f, good in zip(files.paths, ok) if good], sources, y, p))
        result["saved"] = str(save_scores(Path(save_to), rows, files.source_kinds))
    return result


def _relative(path: str, base: Path) -> str:
    """``path`` relative to the dataset root when it lies under it (portable between machines)."""
    try:
        return Path(path).relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _fmt(v) -> str:
    return "  n/a" if v is None else f"{v:.3f}"


def format_report(r: dict) -> str:
    (tn, fp), (fn, tp) = r["confusion"]
    lines = [
        f"model {r['model']}  on {r['data']}{'/' + r['split'] if r.get('split') else ''}  (n={r['n']})"
        + (f"  perturbed: {r['perturb']}" if r.get("perturb") else ""),
        f"accuracy {_fmt(r['accuracy'])}  precision {_fmt(r['precision'])}  recall {_fmt(r['recall'])}  "
        f"F1 {_fmt(r['f1'])}  ROC AUC {_fmt(r['roc_auc'])}",
        "confusion (rows: true real, true fake; cols: predicted real, fake)",
        f"  real  {tn:6d} {fp:6d}",
        f"  fake  {fn:6d} {tp:6d}",
    ]
    if "by_source" in r:
        lines.append(f"{'by source':<28} {'n':>5} {'acc':>6} {'auc':>6} {'recall':>6}")
        for g, m in r["by_source"].items():
            rec = m["recall"] if m["confusion"][1] != [0, 0] else None
            lines.append(f"  {g:<26} {m['n']:5d} {_fmt(m['accuracy']):>6} {_fmt(m['roc_auc']):>6} {_fmt(rec):>6}")
    if "by_kind" in r:
        lines.append(f"{'by kind (fakes vs all reals)':<28} {'fakes':>5} {'caught':>6} {'auc':>6}")
        for g, m in r["by_kind"].items():
            if g == "real":
                lines.append(f"  {'real (correctly passed)':<26} {m['n']:5d} {_fmt(m['accuracy']):>6}")
            else:
                lines.append(f"  {g:<26} {m['n_fake']:5d} {_fmt(m['recall']):>6} {_fmt(m['roc_auc']):>6}")
    if r.get("saved"):
        lines.append(f"per-image scores saved to {r['saved']}")
    if r.get("errors"):
        lines.append(f"{len(r['errors'])} file(s) could not be read:")
        lines += [f"  {e['error']}" for e in r["errors"]]
    return "\n".join(lines)

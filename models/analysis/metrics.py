"""Binary detection metrics (fake = 1 is the positive class), via scikit-learn."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from models.detectors.labels import THRESHOLD


def compute_metrics(y_true, p_fake, threshold: float = THRESHOLD) -> dict:
    """n, accuracy, precision, recall, f1, roc_auc (None for one class) and confusion [[tn, fp], [fn, tp]]."""
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(p_fake, dtype=float)
    pred = (p >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "n": int(len(y)),
        "accuracy": float(accuracy_score(y, pred)) if len(y) else None,
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "confusion": confusion_matrix(y, pred, labels=[0, 1]).tolist(),
        "threshold": threshold,
    }


def metrics_by_group(y_true, p_fake, groups, threshold: float = THRESHOLD) -> dict:
    """compute_metrics per group label (e.g. per source)."""
    index = defaultdict(list)
    for i, g in enumerate(groups):
        index[g].append(i)
    y = np.asarray(y_true)
    p = np.asarray(p_fake)
    return {g: compute_metrics(y[idx], p[idx], threshold) for g, idx in sorted(index.items())}


def kind_groups(labels, sources, source_kinds: dict[str, str]) -> list[str]:
    """Per-image group for 'per kind of fake' reports: fakes by their kind, reals as 'real'."""
    return [
        "real" if y == 0 else source_kinds.get(s, "unknown") for y, s in zip(labels, sources)
    ]


def metrics_by_kind(y_true, p_fake, sources, source_kinds: dict[str, str], threshold: float = THRESHOLD) -> dict:
    """Per kind of fake: metrics on all reals plus the fakes of that kind (``recall`` is that kind's detection
    rate, ``roc_auc`` separates it from the reals, ``n_fake`` counts it); ``"real"``: the reals alone."""
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(p_fake, dtype=float)
    groups = np.asarray(kind_groups(y, sources, source_kinds))
    real = groups == "real"
    out = {}
    for kind in sorted(set(groups.tolist()) - {"real"}):
        mask = real | (groups == kind)
        out[kind] = {**compute_metrics(y[mask], p[mask], threshold), "n_fake": int((groups == kind).sum())}
    if real.any():
        out["real"] = {**compute_metrics(y[real], p[real], threshold), "n_fake": 0}
    return out

"""Fitting calibration and choosing an operating point (numpy + scikit-learn; TensorFlow only to score).

:func:`fit_platt` fits Platt scaling on the val split (applied by ``Detector.predict`` through
:mod:`models.detectors.calibration`); :func:`reliability` gives reliability-diagram data, ECE and Brier;
:func:`threshold_sweep`, :func:`rates_at` and :func:`threshold_for_recall` help choose a threshold and
:func:`save_operating_point` stores it (:func:`restore_operating_point` undoes that). :func:`calibrate_model`
does it all for one installed model.
:func:`fit_unsure` / :func:`fit_unsure_model` fit the "unsure" band (``Detector.unsure``) on val.
The command line is ``python -m models.calibration`` (models/calibration.py).
"""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from models.data.files import list_files
from models.data.intake import load_image
from models.detectors.calibration import apply, check_operating_point, check_threshold, invert, logit
from models.detectors.registry import (
    load_model,
    read_metadata,
    resolve_model_path,
    update_metadata,
    write_json_atomic,
)

# --- the calibration map ---------------------------------------------------------------------------------





def _check_xy(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(int).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and scores differ in length: {len(y)} vs {len(p)}")
    if len(y) == 0:
        raise ValueError("no scores")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("scores must be probabilities in [0, 1]")
    return y, p


def _need_both_classes(y: np.ndarray) -> None:
    if len(np.unique(y)) != 2:
        raise ValueError("need both real and fake examples")


def fit_platt(y, p_raw) -> dict:
    """Platt scaling: logistic regression of the labels on ``logit(p_raw)``.

    Returns ``{"method": "platt", "a": float, "b": float}``; calibrated ``p = sigmoid(a * logit(p_raw) + b)``.
    Uses Platt's smoothed targets ((N+ + 1) / (N+ + 2) for fakes, 1 / (N- + 2) for reals), so perfectly
    separated scores still give a finite fit. Calibration must be monotone increasing: a fit with
    ``a <= 0`` (scores anti-correlated with the labels) falls back to the identity (a=1, b=0) and says so
    under ``"fallback"``.
    """
    from sklearn.linear_model import LogisticRegression

    y, p = _check_xy(y, p_raw)
    _need_both_classes(y)
    z = logit(p)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    target = np.where(y == 1, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    # soft targets as weights: each score is a fake with weight t and a real with weight 1 - t
    x = np.concatenate([z, z])[:, None]
    labels = np.concatenate([np.ones_like(y), np.zeros_like(y)])
    weights = np.concatenate([target, 1.0 - target])
    clf = LogisticRegression(C=1e6, max_iter=10_000).fit(x, labels, sample_weight=weights)
    a, b = float(clf.coef_.ravel()[0]), float(clf.intercept_.ravel()[0])
    if not (a > 0 and math.isfinite(a) and math.isfinite(b)):
        return {"method": "platt", "a": 1.0, "b": 0.0,
                "fallback": f"the fit gave a = {a:.4g} (not monotone increasing); identity kept"}
    return {"method": "platt", "a": a, "b": b}








# --- how well calibrated -----------------------------------------------------------------------------------

def reliability(y, p, bins: int = 10) -> dict:
    """Reliability-diagram data over ``bins`` equal-width bins of [0, 1] (the non-empty ones).

    Keys: ``mean_predicted``, ``fraction_fake`` (observed share of fakes), ``count``, ``bin_lower``,
    ``bin_upper`` (lists, one entry per non-empty bin, in order), ``bins``, ``n``, ``ece`` (expected
    calibration error: count-weighted mean |fraction_fake - mean_predicted|) and ``brier``. The binning is
    sklearn.calibration.calibration_curve's (strategy="uniform").
    """
    from sklearn.metrics import brier_score_loss

    y, p = _check_xy(y, p)
    if int(bins) < 1:
        raise ValueError(f"bins must be at least 1, not {bins!r}")
    bins = int(bins)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.searchsorted(edges[1:-1], p, side="right")  # as calibration_curve: bin i holds [e_i, e_i+1)
    count = np.bincount(idx, minlength=bins)
    sum_p = np.bincount(idx, weights=p, minlength=bins)
    sum_y = np.bincount(idx, weights=y, minlength=bins)
    keep = count > 0
    mean_p = sum_p[keep] / count[keep]
    frac = sum_y[keep] / count[keep]
    ece = float(np.sum(count[keep] * np.abs(frac - mean_p)) / len(y))
    return {
        "mean_predicted": mean_p.tolist(),
        "fraction_fake": frac.tolist(),
        "count": count[keep].astype(int).tolist(),
        "bin_lower": edges[:-1][keep].tolist(),
        "bin_upper": edges[1:][keep].tolist(),
        "bins": bins,
        "n": int(len(y)),
        "ece": ece,
        "brier": float(brier_score_loss(y, p, pos_label=1)),
    }


# --- choosing the operating point ---------------------------------------------------------------------------

def threshold_sweep(y, p) -> dict:
    """Rates at every distinct score used as threshold (verdict "fake" at ``p >= threshold``).

    Arrays of equal length, by increasing threshold: ``threshold``, ``precision``, ``recall`` (share of
    fakes caught), ``fpr`` (share of reals called fake), ``accuracy`` and ``flagged`` (how many called
    fake). From sklearn.metrics.roc_curve (drop_intermediate=False).
    """
    from sklearn.metrics import roc_curve

    y, p = _check_xy(y, p)
    _need_both_classes(y)
    fpr, tpr, thr = roc_curve(y, p, drop_intermediate=False)
    fpr, tpr, thr = fpr[1:][::-1], tpr[1:][::-1], thr[1:][::-1]  # drop the +inf "nothing flagged" point
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    tp, fp = tpr * n_pos, fpr * n_neg
    flagged = tp + fp
    precision = np.divide(tp, flagged, out=np.zeros_like(tp), where=flagged > 0)
    return {
        "threshold": thr.astype(np.float64),
        "precision": precision,
        "recall": tpr,
        "fpr": fpr,
        "accuracy": (tp + (n_neg - fp)) / len(y),
        "flagged": np.rint(flagged).astype(int),
    }


def threshold_for_recall(y, p, target: float) -> float:
    """The highest threshold whose recall on (y, p) is at least ``target`` (0 < target <= 1).

    Always one of the fakes' scores (the ceil(target * n_fake)-th highest): any higher threshold catches
    fewer fakes. Found with sklearn.metrics.precision_recall_curve.
    """
    from sklearn.metrics import precision_recall_curve

    if not (0 < float(target) <= 1):
        raise ValueError(f"target recall must be in (0, 1], not {target!r}")
    y, p = _check_xy(y, p)
    if not y.any():
        raise ValueError("need fake examples to measure recall")
    _precision, recall, thresholds = precision_recall_curve(y, p)
    ok = recall[: len(thresholds)] >= float(target) - 1e-12
    return float(thresholds[ok].max())


def rates_at(y, p, threshold: float) -> dict:
    """precision, recall, fpr and accuracy at ``threshold`` (fake at ``p >= threshold``), with the counts.

    A rate with an empty denominator is 0.0 (as models.metrics does for precision).
    """
    y, p = _check_xy(y, p)
    pred = p >= float(threshold)
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))

    def div(a, b):
        return float(a / b) if b else 0.0

    return {"threshold": float(threshold), "precision": div(tp, tp + fp), "recall": div(tp, tp + fn),
            "fpr": div(fp, fp + tn), "accuracy": div(tp + tn, len(y)), "tp": tp, "fp": fp, "tn": tn, "fn": fn,
            "n": int(len(y))}


# --- storing it in the model's JSON -------------------------------------------------------------------------







def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")






def save_operating_point(name_or_path, threshold: float, *, target_recall: float | None = None,
                         split: str = "val", by: str = "page", assets_dir=None) -> dict:
    """Store ``threshold`` as the model's operating point and return the stored block.

    Writes ``metadata["operating_point"] = {"threshold", "target_recall", "split", "by", "saved"}`` into
    the JSON next to the model file (created if missing), keeping every other key; atomic (temp file +
    os.replace). The threshold is on the calibrated scale (what ``Detector.predict`` returns) and must be
    in (0, 1). :func:`models.load_model` picks it up at once (its cache is keyed on the JSON).
    """
    t = check_threshold(threshold)
    if target_recall is not None and not (0 < float(target_recall) <= 1):
        raise ValueError(f"target recall must be in (0, 1], not {target_recall!r}")
    path = resolve_model_path(name_or_path, assets_dir).resolve()
    op = {"threshold": t, "target_recall": None if target_recall is None else float(target_recall),
          "split": split, "by": by, "saved": _now()}
    update_metadata(path, operating_point=op)
    return op


def current_operating_point(name_or_path, *, assets_dir=None) -> dict | None:
    """The operating point block stored in the model's JSON now (None when none is saved): what
    :func:`restore_operating_point` puts back to undo a :func:`save_operating_point`."""
    path = resolve_model_path(name_or_path, assets_dir).resolve()
    op = read_metadata(path).get("operating_point")
    return dict(op) if op else None


def restore_operating_point(name_or_path, previous: dict | None, *, assets_dir=None) -> dict | None:
    """Undo a save: write ``previous`` (from :func:`current_operating_point`) back as the operating point.

    ``None`` removes the block, so the model goes back to the default threshold. Every other key is kept;
    atomic like :func:`save_operating_point`. Returns what is stored now.
    """
    path = resolve_model_path(name_or_path, assets_dir).resolve()
    if previous is None:
        metadata = read_metadata(path)
        if "operating_point" in metadata:
            metadata.pop("operating_point")
            write_json_atomic(path.with_suffix(".json"), metadata)
        return None
    check_operating_point(previous)
    update_metadata(path, operating_point=dict(previous))
    return dict(previous)


# --- fitting a model -----------------------------------------------------------------------------------------

def decode_split(data_root, split: str = "val", workers: int = 4, progress: bool = False):
    """(images, labels) of a split: every crop decoded by models.intake.load_image, as the app and
    ``models.evaluate`` read them (the detector's own preprocessing resizes them)."""
    from concurrent.futures import ThreadPoolExecutor


    files = list_files(data_root, split)
    if len(files) == 0:
        raise ValueError(f"no images under {Path(data_root) / split}")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        it = pool.map(load_image, files.paths)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, total=len(files), desc=f"decoding {split}", unit="img", file=sys.stderr)
        images = list(it)
    if all(img.shape == images[0].shape for img in images):
        images = np.stack(images)
    return images, files.y


def calibrate_model(name_or_path, data_root, *, target_recall: float | None = None, bins: int = 10,
                    assets_dir=None, split_data=None) -> dict:
    """Fit Platt scaling on the ``val`` split's raw scores and store it in the model's JSON.

    Stores ``metadata["calibration"] = {method, a, b, split: "val", n, n_fake, bins, ece_before, ece_after,
    brier_before, brier_after, data, fitted[, fallback]}`` (ECE/Brier on val, before and after). A fit that
    would raise the val Brier score is not used: the identity (a=1, b=0) is stored with a ``fallback`` note. With
    ``target_recall``, also stores the operating point chosen on the calibrated val scores
    (:func:`threshold_for_recall`, ``by="cli"``). Without it, an existing operating point is moved to the
    new scale (``invert`` through the old calibration, ``apply`` the new one) so its verdicts stay the same.
    Returns the calibration block, plus ``"operating_point"`` (the stored one, or None).
    ``split_data``: already decoded ``(images, labels)`` of the split (see :func:`decode_split`).
    """
    path = resolve_model_path(name_or_path, assets_dir).resolve()
    detector = load_model(path, cache=False)
    images, y = split_data if split_data is not None else decode_split(data_root, "val")
    y = np.asarray(y).astype(int)
    p_raw = np.asarray(detector.predict_raw(images), dtype=np.float64)
    cal = fit_platt(y, p_raw)
    p_cal = apply(p_raw, cal).astype(np.float64)
    before, after = reliability(y, p_raw, bins), reliability(y, p_cal, bins)
    if after["brier"] > before["brier"] and "fallback" not in cal:
        # Platt's smoothed targets can make near-perfect, separable scores (tiny val sets) worse: keep them
        cal = {"method": "platt", "a": 1.0, "b": 0.0,
               "fallback": f"Platt scaling (a={cal['a']:.4g}, b={cal['b']:.4g}) raised the val Brier score "
                           f"({before['brier']:.4g} -> {after['brier']:.4g}); identity kept"}
        p_cal = apply(p_raw, cal).astype(np.float64)
        after = reliability(y, p_cal, bins)
    block = {**cal, "split": "val", "n": int(len(y)), "n_fake": int(y.sum()), "bins": int(bins),
             "ece_before": before["ece"], "ece_after": after["ece"],
             "brier_before": before["brier"], "brier_after": after["brier"],
             "data": str(data_root), "fitted": _now()}
    if "fallback" in block:  # keep the key order readable
        block["fallback"] = block.pop("fallback")
    old_cal = detector.metadata.get("calibration")
    old_op = detector.metadata.get("operating_point")
    blocks = {"calibration": block}
    op = None
    if target_recall is None and old_op:
        t_raw = float(invert(old_op["threshold"], old_cal))
        moved = float(apply(np.array([t_raw]), block)[0])
        if 0 < moved < 1:
            op = {**old_op, "threshold": moved, "moved_from": old_op["threshold"], "moved": _now()}
            blocks["operating_point"] = op
    update_metadata(path, **blocks)
    if target_recall is not None:
        t = threshold_for_recall(y, p_cal, target_recall)
        op = save_operating_point(path, t, target_recall=target_recall, split="val", by="cli")
    elif op is None:
        op = old_op
    return {**block, "operating_point": op}


# --- the "unsure" band -------------------------------------------------------------------------------------

UNSURE_MAX_FLAGGED = 0.10  # at most this share of val images may be flagged unsure
UNSURE_DELTAS = tuple(np.round(np.arange(0.01, 0.505, 0.01), 3)) + (1.0,)  # 1.0: spread never flags
UNSURE_EPSILONS = tuple(np.round(np.arange(0.0, 0.2501, 0.005), 4))
UNSURE_RULE = ("the (delta, epsilon) on the grid that flags at most max_flagged of the val images as unsure and, "
               "within that, catches the most val errors (ties: fewer flagged, then the larger delta and epsilon)")


def fit_unsure(y, p_fake, spread, threshold: float, *, max_flagged: float = UNSURE_MAX_FLAGGED,
               deltas=UNSURE_DELTAS, epsilons=UNSURE_EPSILONS) -> dict:
    """Fit the unsure band (``Detector.unsure``: spread > delta or |p_fake - threshold| < epsilon) on scored
    val images: :data:`UNSURE_RULE`. ``p_fake`` calibrated, ``spread`` from ``Detector.views_spread``.

    Returns ``{"delta", "epsilon", "max_flagged", "n", "errors", "flagged", "errors_caught", "rule"}``:
    ``flagged`` the share of images flagged, ``errors_caught`` the share of val errors (verdict != label at
    ``threshold``) flagged (None when there are no errors).
    """
    y, p = _check_xy(y, p_fake)
    s = np.asarray(spread, dtype=np.float64).ravel()
    if s.shape != p.shape or not np.isfinite(s).all():
        raise ValueError(f"spread must be {len(p)} finite numbers")
    if not 0 <= float(max_flagged) <= 1:
        raise ValueError(f"max_flagged must be in [0, 1], not {max_flagged!r}")
    wrong = (p >= float(threshold)).astype(int) != y
    near = np.abs(p - float(threshold))[None, :] < np.asarray(epsilons, np.float64)[:, None]  # (E, N)
    best, best_key = None, None
    for delta in deltas:
        flags = near | (s > float(delta))[None, :]
        n_flagged, n_caught = flags.sum(axis=1), (flags & wrong[None, :]).sum(axis=1)
        for j, eps in enumerate(epsilons):
            if n_flagged[j] > float(max_flagged) * len(p) + 1e-9:
                continue
            key = (int(n_caught[j]), -int(n_flagged[j]), float(delta), float(eps))
            if best_key is None or key > best_key:
                best_key, best = key, (float(delta), float(eps))
    if best is None:  # a grid without a flag-nothing pair: flag nothing
        best, best_key = (1.0, 0.0), (0, 0, 1.0, 0.0)
    n_err = int(wrong.sum())
    return {"delta": best[0], "epsilon": best[1], "max_flagged": float(max_flagged), "n": int(len(p)),
            "errors": n_err, "flagged": -best_key[1] / len(p),
            "errors_caught": (best_key[0] / n_err) if n_err else None, "rule": UNSURE_RULE}


def fit_unsure_model(name_or_path, data_root, *, max_flagged: float = UNSURE_MAX_FLAGGED, assets_dir=None,
                     split_data=None) -> dict:
    """Score the val split (calibrated P(fake) and its spread over views) and store the fitted band as
    ``metadata["unsure"] = {delta, epsilon, split: "val", fitted, data, views, shift, ...fit_unsure's keys}``.
    Returns the stored block. ``split_data``: already decoded ``(images, labels)`` (see :func:`decode_split`)."""
    from models.detectors.base import N_VIEWS, VIEW_SHIFT

    path = resolve_model_path(name_or_path, assets_dir).resolve()
    detector = load_model(path, cache=False)
    images, y = split_data if split_data is not None else decode_split(data_root, "val")
    p = np.asarray(detector.predict(images), dtype=np.float64)
    spread = np.asarray(detector.views_spread(images, p_fake=p), dtype=np.float64)
    fit = fit_unsure(y, p, spread, detector.threshold, max_flagged=max_flagged)
    block = {"delta": fit["delta"], "epsilon": fit["epsilon"], "split": "val", "fitted": _now(),
             **{k: v for k, v in fit.items() if k not in ("delta", "epsilon")},
             "threshold": float(detector.threshold), "views": N_VIEWS, "shift": VIEW_SHIFT, "data": str(data_root)}
    update_metadata(path, unsure=block)
    return block


# --- CLI ---------------------------------------------------------------------------------------------------

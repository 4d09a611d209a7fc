"""Matplotlib figures for comparing models (the Models page). Every function returns a Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], operating: dict[str, tuple] | None = None):
    """Overlaid ROC curves; ``operating`` marks each model's (fpr, tpr) at its threshold."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, (fpr, tpr, auc) in curves.items():
        (line,) = ax.plot(fpr, tpr, lw=1.8, label=f"{name} (AUC {auc:.3f})")
        if operating and name in operating:
            ax.plot(*operating[name], "o", color=line.get_color(), ms=6)
    ax.plot([0, 1], [0, 1], "--", color="0.6", lw=1, label="chance")
    ax.set(xlabel="False positive rate (reals called fake)", ylabel="True positive rate (fakes caught)",
           xlim=(0, 1), ylim=(0, 1.01), title="ROC on the test split (dots: operating points)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def confusion_figure(matrices: dict[str, np.ndarray], thresholds: dict[str, float]):
    """One 2x2 confusion matrix per model, rows = truth, columns = verdict."""
    n = len(matrices)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.1 * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax, (name, cm) in zip(axes.ravel(), matrices.items()):
        share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(2):
            for j in range(2):
                ax.text(j, i, f"{cm[i, j]}\n{share[i, j]:.0%}", ha="center", va="center",
                        color="white" if share[i, j] > 0.6 else "black", fontsize=10)
        ax.set_xticks([0, 1], ["real", "fake"])
        ax.set_yticks([0, 1], ["real", "fake"])
        ax.set(xlabel="verdict", ylabel="truth", title=f"{name} (t = {thresholds.get(name, 0.5):.2f})")
        ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


def history_figure(hist: dict[str, list[float]], name: str):
    """Training curves per epoch: loss on the left, accuracy and AUC on the right (train solid, val dashed)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, ax in (("loss", left), ("accuracy", right), ("auc", right)):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = hist.get(prefix + key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, marker=".", label=f"{prefix or 'train_'}{key}")
    left.set(xlabel="epoch", ylabel="binary cross-entropy", title=f"{name}: loss")
    right.set(xlabel="epoch", title=f"{name}: accuracy and ROC AUC")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def threshold_figure(sweeps: dict[str, dict], threshold: float, suggested: float | None = None):
    """Precision, recall and FPR against the threshold, for each split in ``sweeps`` (solid val, dashed test)."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    styles = {"val": "-", "test": "--"}
    colors = {"precision": "tab:blue", "recall": "tab:red", "fpr": "tab:gray"}
    for split, sweep in sweeps.items():
        for key, color in colors.items():
            ax.plot(sweep["threshold"], sweep[key], styles.get(split, ":"), color=color, lw=1.5,
                    label=f"{key} ({split})")
    ax.axvline(threshold, color="black", lw=1.2, label=f"threshold {threshold:.2f}")
    if suggested is not None:
        ax.axvline(suggested, color="tab:green", lw=1.2, ls=":", label=f"suggested {suggested:.2f}")
    ax.set(xlabel="threshold on P(fake)", xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def reliability_figure(curves: dict[str, dict], title: str):
    """Reliability diagram: observed share of fakes against mean P(fake), per bin, for each curve."""
    fig, ax = plt.subplots(figsize=(5, 4.6))
    ax.plot([0, 1], [0, 1], "--", color="0.6", lw=1, label="perfectly calibrated")
    for label, r in curves.items():
        ax.plot(r["mean_predicted"], r["fraction_fake"], "o-", lw=1.5,
                label=f"{label} (ECE {r['ece']:.3f}, Brier {r['brier']:.3f})")
    ax.set(xlabel="mean P(fake) in bin", ylabel="observed share of fakes", xlim=(0, 1), ylim=(0, 1), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def histogram_figure(values, threshold: float | None = None, unit: str = "crops"):
    """Histogram of P(fake) over [0, 1] in 20 bins, with the verdict threshold marked."""
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(values, bins=20, range=(0, 1), color="C0", edgecolor="white")
    if threshold is not None:
        ax.axvline(threshold, color="C3", lw=1.5, ls="--", label=f"threshold {threshold:.2f}")
        ax.legend(fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("P(fake)")
    ax.set_ylabel(unit)
    ax.set_title(f"P(fake) of {len(values)} scored {unit}", fontsize=10)
    fig.tight_layout()
    return fig


def timeline_figure(tracks: dict[int, tuple[list[float], list[float]]], threshold: float, epsilon: float = 0.0,
                    duration_s: float | None = None, marks: list[tuple[float, float]] | None = None):
    """P(fake) over time, one line per face track (``tracks``: number -> (times in s, P(fake) per sampled frame)),
    with the verdict threshold and the "unsure" band (threshold ± ``epsilon``) shaded. ``marks``: (time, P) points
    to ring (the frames shown below the chart)."""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    end = duration_s or max((max(t) for t, _ in tracks.values() if t), default=1.0)
    if epsilon > 0:
        ax.axhspan(max(0.0, threshold - epsilon), min(1.0, threshold + epsilon), color="#f0a202", alpha=0.18, lw=0,
                   label=f"unsure band ±{epsilon:g}")
    ax.axhline(threshold, color="C3", lw=1.2, ls="--", label=f"threshold {threshold:.2f}")
    for number, (times, ps) in sorted(tracks.items()):
        ax.plot(times, ps, marker="o", ms=4, lw=1.6, label=f"track {number}")
    for t, p in marks or []:
        ax.plot([t], [p], marker="o", ms=11, mfc="none", mec="black", mew=1.2)
    ax.set_xlim(0, max(end, 1e-3))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("P(fake)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    if not tracks:
        ax.text(0.5, 0.5, "no face track", transform=ax.transAxes, ha="center", va="center", color="0.4")
    fig.tight_layout()
    return fig

"""Matplotlib figures for explanation results. Every function returns a Figure; ``png(fig)`` gives bytes."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from skimage.segmentation import find_boundaries  # noqa: E402

from explain.base import Explanation  # noqa: E402

POS, NEG = np.array([0.10, 0.75, 0.25]), np.array([0.90, 0.15, 0.15])


def png(fig, dpi: int = 120) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0


def _overlay(image, mask, color, alpha=0.45):
    out = (_float(image) if image.dtype == np.uint8 else image).copy()
    out[mask] = (1 - alpha) * out[mask] + alpha * color
    return out


def lime_panels(expl: Explanation, image: np.ndarray, stability: float | None = None):
    """The study's two LIME panels (top 5 positive; top 10 positive and negative) plus the weight heatmap."""
    seg = expl.segments
    w = expl.extras["weights"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 4))
    pos = np.isin(seg, expl.extras["top_positive"])
    img1 = _float(image) * np.where(pos, 1.0, 0.35)[..., None]
    img1[find_boundaries(np.where(pos, seg, -1), mode="inner") & pos] = (1.0, 0.9, 0.0)
    axes[0].imshow(img1)
    axes[0].set_title(f"Top 5 superpixels for '{expl.target}'")
    pn = expl.extras["mask_pos_neg"]
    img2 = _overlay(_overlay(image, pn > 0, POS), pn < 0, NEG)
    img2[find_boundaries(seg, mode="inner")] *= 0.6
    axes[1].imshow(img2)
    axes[1].set_title("Top 10: green for, red against")
    lim = float(np.abs(w).max()) or 1.0
    im = axes[2].imshow(expl.attribution, cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[2].imshow(_float(image), alpha=0.25)
    axes[2].set_title("LIME weight per superpixel")
    fig.colorbar(im, ax=axes[2], fraction=0.046, pad=0.04)
    for ax in axes:
        ax.axis("off")
    sub = f"P(fake) {expl.p_fake:.3f}  ·  {len(w)} superpixels  ·  local fit R² {expl.extras.get('score', float('nan')):.2f}"
    if stability is not None:
        sub += f"  ·  top-5 agreement across seeds (Jaccard) {stability:.2f}"
    fig.suptitle(sub, fontsize=9)
    return fig


def gradcam_overlay(expl: Explanation, image: np.ndarray):
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 4))
    axes[0].imshow(image)
    axes[0].set_title("Input")
    axes[1].imshow(image)
    axes[1].imshow(np.clip(expl.attribution, 0, 1), cmap="jet", alpha=0.45, vmin=0, vmax=1)
    axes[1].set_title(f"Grad-CAM for '{expl.target}' at {expl.params.get('layer')}", fontsize=9)
    for ax in axes:
        ax.axis("off")
    return fig


def manipulation_overlay(expl: Explanation, image: np.ndarray):
    """The manipulation map (P(manipulated) per pixel, ``extras["map"]``) over the image, with a colour bar."""
    heat = expl.extras.get("map", np.abs(expl.attribution))
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 4))
    axes[0].imshow(image)
    axes[0].set_title("Input")
    axes[1].imshow(image)
    im = axes[1].imshow(np.clip(heat, 0, 1), cmap="magma", alpha=0.55, vmin=0, vmax=1)
    axes[1].set_title(f"Manipulation map: P(manipulated) per pixel (P(fake) {expl.p_fake:.3f})", fontsize=9)
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04)
    for ax in axes:
        ax.axis("off")
    return fig


def activation_grid(expl: Explanation, cols: int = 8):
    """Up to 32 channels in an 8x4 grid (viridis), as in the study."""
    maps, channels = expl.extras["maps"], expl.extras["channels"]
    n = maps.shape[-1]
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.4))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(maps[..., i], cmap="viridis")
            ax.set_title(f"ch {int(channels[i])}", fontsize=7)
    fig.suptitle(f"{expl.extras['layer']}: {n} of {expl.extras['n_channels']} channels "
                 f"(ordered by {expl.params.get('order')})", fontsize=9)
    return fig


def activation_zoom(expl: Explanation):
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.matshow(expl.extras["zoom"], cmap="viridis")
    ax.set_title(f"{expl.extras['layer']}, channel {expl.extras['zoom_channel']}", fontsize=9)
    ax.axis("off")
    return fig


def region_bars(summary, title: str | None = None):
    """Ranked bar chart of mean evidence per facial region (for the explanation's target)."""
    from explain.regions import REGION_NAMES

    fig, ax = plt.subplots(figsize=(6, 3))
    if not summary.face_found:
        ax.text(0.5, 0.5, "No face found: no region summary", ha="center", va="center")
        ax.axis("off")
        return fig
    names = list(reversed(summary.ranking))
    vals = [summary.regions[n]["mean"] for n in names]
    ax.barh([REGION_NAMES[n] for n in names], vals, color=[POS if v >= 0 else NEG for v in vals])
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xlabel(f"mean {summary.method} evidence per pixel for '{summary.target}'")
    ax.set_title(title or f"What drove this verdict ({summary.method})", fontsize=10)
    fig.tight_layout()
    return fig


def region_overlay(summary, image: np.ndarray):
    from explain.regions import REGIONS

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(image)
    if summary.face_found:
        colors = plt.get_cmap("tab10")
        rgba = np.zeros((*summary.region_map.shape, 4))
        for i, _ in enumerate(REGIONS[:5]):
            rgba[summary.region_map == i] = (*colors(i)[:3], 0.35)
        ax.imshow(rgba)
        lm = summary.landmarks
        pts = np.array([lm.left_eye, lm.right_eye, lm.nose, lm.mouth_left, lm.mouth_right])
        ax.scatter(pts[:, 0], pts[:, 1], s=12, c="white", edgecolors="black", linewidths=0.5)
    ax.set_title("Facial regions (mtcnn landmarks)" if summary.face_found else "No face found", fontsize=9)
    ax.axis("off")
    return fig


def deletion_plot(curve):
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    x = curve.fractions
    ax.plot(x, curve.explanation_curve, color="C3", lw=2,
            label=f"{curve.method} order (area {curve.auc_explanation:.3f})")
    ax.plot(x, curve.random_mean, color="0.4", lw=1.5,
            label=f"random order, mean of {len(curve.random_curves)} (area {curve.auc_random:.3f})")
    ax.fill_between(x, curve.random_mean - curve.random_std, curve.random_mean + curve.random_std, color="0.8")
    ax.set_xlabel("fraction of superpixels removed (most important first)")
    ax.set_ylabel(f"P({curve.target})")
    ax.set_ylim(-0.02, 1.02)
    verdict = "faster than random: the explanation is faithful" if curve.useful else \
        "not faster than random: do not trust this explanation"
    ax.set_title(f"Deletion curve: {verdict}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def lime_compare(items, image: np.ndarray, cols: int = 3):
    """Side by side, one panel per model: its top-10 LIME superpixels (green for, red against its target).

    ``items``: (model name, P(fake), verdict, Explanation) tuples.
    """
    n = len(items)
    cols = min(cols, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, p_fake, verdict, expl) in zip(axes.ravel(), items):
        seg = expl.segments
        pn = expl.extras["mask_pos_neg"]
        img = _overlay(_overlay(image, pn > 0, POS), pn < 0, NEG)
        img[find_boundaries(seg, mode="inner")] *= 0.6
        ax.imshow(img)
        ax.set_title(f"{name}\n{verdict.upper()} · P(fake) {p_fake:.3f} · evidence for '{expl.target}'", fontsize=8)
    fig.suptitle("LIME top 10 superpixels per model: green for, red against", fontsize=9)
    fig.tight_layout()
    return fig

"""Matplotlib figures for explanation results. Every function returns a Figure; ``png(fig)`` gives bytes.

One visual language on every figure: evidence is drawn on one diverging scale, :data:`FAKE` (red) toward
fake and :data:`REAL` (blue) toward real, whatever the explained target (an attribution is "evidence for
the target", so for target "real" its sign is flipped onto this scale), and every figure says so in a
legend. Text is at least :data:`FONT` points (:data:`STYLE`), and figures are sized for where the Explain
page shows them (``width="stretch"``): a figure W inches wide keeps FONT-pt text at 14 px or more on screen
when it is shown at least 72·W·14/FONT px wide. On a 1400 px window the page's main column is about 830 px:
full-width figures are at most 12 inches wide as saved (``bbox_inches="tight"``), figures in two thirds of it
(the waterfall) at most 8, in half of it at most 6 and in a third (the region map) at most 4.
"""

from __future__ import annotations

import functools
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap, Normalize, to_rgb  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from skimage.segmentation import find_boundaries  # noqa: E402

from explain.base import Explanation  # noqa: E402

FAKE, REAL, MIDDLE = "#b2182b", "#2166ac", "#f7f7f7"  # toward fake, toward real, neither
FAKE_RGB, REAL_RGB = np.array(to_rgb(FAKE)), np.array(to_rgb(REAL))
CMAP = LinearSegmentedColormap.from_list("real_fake", [REAL, MIDDLE, FAKE])  # -1 real .. +1 fake
FAKE_CMAP = LinearSegmentedColormap.from_list("to_fake", [MIDDLE, FAKE])  # 0 .. 1 toward fake
REGION_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e")  # region map: not the fake/real colours
FONT = 15  # the smallest text on a figure, in points
STYLE = {"font.size": FONT, "axes.titlesize": FONT + 1, "axes.labelsize": FONT, "xtick.labelsize": FONT,
         "ytick.labelsize": FONT, "legend.fontsize": FONT, "legend.title_fontsize": FONT,
         "figure.titlesize": FONT + 1}


def styled(fn):
    """Draw ``fn``'s figure under :data:`STYLE`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            fig = fn(*args, **kwargs)
        for ax in fig.axes:  # ticks are made lazily, at draw time: fix their size now
            ax.tick_params(labelsize=FONT)
        return fig

    return wrapper


def png(fig, dpi: int = 120) -> bytes:
    buf = io.BytesIO()
    with plt.rc_context(STYLE):
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def toward_fake(values, target: str):
    """Evidence for ``target`` on the fake/real scale: unchanged for "fake", negated for "real"."""
    return values if target == "fake" else -values


def fake_real_patches() -> list:
    return [Patch(color=FAKE, label="toward fake"), Patch(color=REAL, label="toward real")]


def fake_real_bar(fig, axes, lim: float, label: str, orientation: str = "horizontal"):
    """The shared legend of a signed map: a colour bar from "toward real" (-lim) to "toward fake" (+lim)."""
    lim = float(lim) or 1.0
    sm = plt.cm.ScalarMappable(norm=Normalize(-lim, lim), cmap=CMAP)
    cb = fig.colorbar(sm, ax=axes, orientation=orientation, fraction=0.05, pad=0.04, aspect=40)
    cb.set_ticks([-lim, 0, lim])
    cb.set_ticklabels([f"toward real\n−{lim:.2g}", "0", f"toward fake\n+{lim:.2g}"])
    cb.set_label(label)
    return cb


def signed_layer(signed: np.ndarray, lim: float | None = None, alpha: float = 0.7) -> np.ndarray:
    """An RGBA layer of a map on the fake/real scale: coloured by sign, opaque in proportion to |value|."""
    signed = np.asarray(signed, dtype=np.float64)
    lim = float(lim or np.abs(signed).max() or 1.0)
    norm = np.clip(signed / lim, -1, 1)
    rgba = CMAP(0.5 + 0.5 * norm)
    rgba[..., 3] = alpha * np.abs(norm)
    return rgba


def _float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0


def _overlay(image, mask, color, alpha=0.45):
    out = (_float(image) if image.dtype == np.uint8 else image).copy()
    out[mask] = (1 - alpha) * out[mask] + alpha * color
    return out


def _pos_neg(image, expl: Explanation) -> np.ndarray:
    """LIME's top-10 superpixels on the fake/real scale (for the target: its colour; against: the other)."""
    pn = toward_fake(expl.extras["mask_pos_neg"].astype(np.int8), expl.target)
    img = _overlay(_overlay(image, pn > 0, FAKE_RGB), pn < 0, REAL_RGB)
    img[find_boundaries(expl.segments, mode="inner")] *= 0.6
    return img


@styled
def lime_panels(expl: Explanation, image: np.ndarray, stability: float | None = None):
    """The study's two LIME panels (top 5 for the target; top 10 either way) plus the weight heatmap."""
    seg = expl.segments
    w = expl.extras["weights"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 5))
    pos = np.isin(seg, expl.extras["top_positive"])
    img1 = _float(image) * np.where(pos, 1.0, 0.35)[..., None]
    img1[find_boundaries(np.where(pos, seg, -1), mode="inner") & pos] = (1.0, 0.9, 0.0)
    axes[0].imshow(img1)
    axes[0].set_title(f"Top 5 superpixels for '{expl.target}'")
    axes[1].imshow(_pos_neg(image, expl))
    axes[1].set_title("Top 10 superpixels")
    lim = float(np.abs(w).max()) or 1.0
    axes[2].imshow(toward_fake(expl.attribution, expl.target), cmap=CMAP, vmin=-lim, vmax=lim)
    axes[2].imshow(_float(image), alpha=0.25)
    axes[2].set_title("LIME weight per superpixel")
    for ax in axes:
        ax.axis("off")
    fake_real_bar(fig, list(axes), lim, "LIME weight: red toward fake, blue toward real")
    sub = f"P(fake) {expl.p_fake:.3f}  ·  {len(w)} superpixels  ·  local fit R² {expl.extras.get('score', float('nan')):.2f}"
    if stability is not None:
        sub += f"\ntop-5 agreement across seeds (Jaccard) {stability:.2f}"
    fig.suptitle(sub)
    return fig


@styled
def gradcam_overlay(expl: Explanation, image: np.ndarray):
    """The input and Grad-CAM over it, on the fake/real scale (Grad-CAM shows evidence for its target only)."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 5.2))
    axes[0].imshow(image)
    axes[0].set_title("Input")
    axes[1].imshow(image)
    signed = toward_fake(np.clip(expl.attribution, 0, 1), expl.target)
    axes[1].imshow(signed_layer(signed, 1.0))
    axes[1].set_title(f"Grad-CAM for '{expl.target}'\nat {expl.params.get('layer')}")
    for ax in axes:
        ax.axis("off")
    fake_real_bar(fig, list(axes), 1.0, "Grad-CAM (peak = 1)")
    return fig


@styled
def manipulation_overlay(expl: Explanation, image: np.ndarray):
    """The manipulation map (P(manipulated) per pixel, ``extras["map"]``) over the image, with a colour bar:
    P(manipulated) is evidence toward fake, drawn in the fake colour."""
    heat = np.clip(expl.extras.get("map", np.abs(expl.attribution)), 0, 1)
    fig, axes = plt.subplots(1, 2, figsize=(8, 5.2))
    axes[0].imshow(image)
    axes[0].set_title("Input")
    axes[1].imshow(image)
    axes[1].imshow(signed_layer(heat, 1.0))
    axes[1].set_title(f"Manipulation map\nP(fake) {expl.p_fake:.3f}")
    for ax in axes:
        ax.axis("off")
    sm = plt.cm.ScalarMappable(norm=Normalize(0, 1), cmap=FAKE_CMAP)
    cb = fig.colorbar(sm, ax=list(axes), orientation="horizontal", fraction=0.05, pad=0.04, aspect=40)
    cb.set_ticks([0, 0.5, 1])
    cb.set_ticklabels(["0", "0.5", "1\ntoward fake"])
    cb.set_label("P(manipulated) per pixel")
    return fig


@styled
def activation_grid(expl: Explanation, cols: int = 8):
    """Up to 32 channels in an 8x4 grid (viridis: activations are not evidence for a class), as in the study."""
    maps, channels = expl.extras["maps"], expl.extras["channels"]
    n = maps.shape[-1]
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.0, rows * 1.2 + 0.6))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(maps[..., i], cmap="viridis")
            ax.set_title(f"ch {int(channels[i])}", fontsize=FONT)
    fig.suptitle(f"{expl.extras['layer']}: {n} of {expl.extras['n_channels']} channels "
                 f"(ordered by {expl.params.get('order')})")
    return fig


@styled
def activation_zoom(expl: Explanation):
    fig, ax = plt.subplots(figsize=(3.8, 4))
    ax.matshow(expl.extras["zoom"], cmap="viridis")
    ax.set_title(f"{expl.extras['layer']}\nchannel {expl.extras['zoom_channel']}")
    ax.axis("off")
    return fig


@styled
def region_bars(summary, title: str | None = None):
    """Ranked bar chart of mean evidence per facial region, on the fake/real scale (the region with the most
    evidence for the explanation's target at the top)."""
    from explain.regions import REGION_NAMES

    fig, ax = plt.subplots(figsize=(6, 4))
    if not summary.face_found:
        ax.text(0.5, 0.5, "No face found: no region summary", ha="center", va="center")
        ax.axis("off")
        return fig
    names = list(reversed(summary.ranking))
    vals = [float(toward_fake(summary.regions[n]["mean"], summary.target)) for n in names]
    ax.barh([REGION_NAMES[n] for n in names], vals, color=[FAKE if v >= 0 else REAL for v in vals])
    ax.axvline(0, color="k", lw=0.8)
    from explain.summary import METHOD_NAMES

    method = METHOD_NAMES.get(summary.method, summary.method)
    ax.set_xlabel(f"mean {method} evidence per pixel")
    ax.set_title(title or f"What drove '{summary.target}' ({method})")
    ax.legend(handles=fake_real_patches(), loc="best", frameon=False)
    fig.tight_layout()
    return fig


@styled
def region_overlay(summary, image: np.ndarray):
    """The facial regions over the image, with a legend naming each region."""
    from explain.regions import REGION_NAMES, REGIONS

    fig, ax = plt.subplots(figsize=(4.4, 4.4))  # the legend below: about 4.5 inches wide
    ax.imshow(image)
    if summary.face_found:
        rgba = np.zeros((*summary.region_map.shape, 4))
        for i, color in enumerate(REGION_COLORS):
            rgba[summary.region_map == i] = (*to_rgb(color), 0.4)
        ax.imshow(rgba)
        lm = summary.landmarks
        pts = np.array([lm.left_eye, lm.right_eye, lm.nose, lm.mouth_left, lm.mouth_right])
        ax.scatter(pts[:, 0], pts[:, 1], s=14, c="white", edgecolors="black", linewidths=0.5)
        handles = [Patch(color=c, alpha=0.6, label=REGION_NAMES[r]) for r, c in zip(REGIONS, REGION_COLORS)]
        handles.append(Patch(facecolor="none", edgecolor="0.5", label=REGION_NAMES[REGIONS[-1]]))
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), frameon=False)
    ax.set_title("Facial regions (mtcnn landmarks)" if summary.face_found else "No face found")
    ax.axis("off")
    return fig


@styled
def deletion_plot(curve):
    fig, ax = plt.subplots(figsize=(6, 4.6))
    x = curve.fractions
    ax.plot(x, curve.explanation_curve, color="0.1", lw=2.2,
            label=f"{curve.method} order (area {curve.auc_explanation:.3f})")
    ax.plot(x, curve.random_mean, color="0.55", lw=1.6, ls="--",
            label=f"random order, mean of {len(curve.random_curves)} (area {curve.auc_random:.3f})")
    ax.fill_between(x, curve.random_mean - curve.random_std, curve.random_mean + curve.random_std, color="0.85")
    ax.set_xlabel("fraction of superpixels removed\n(most important first)")
    ax.set_ylabel(f"P({curve.target})")
    ax.set_ylim(-0.02, 1.02)
    verdict = "faster than random:\nthe explanation is faithful" if curve.useful else \
        "not faster than random:\ndo not trust this explanation"
    ax.set_title(f"Deletion curve ({curve.method}): {verdict}")
    ax.legend(loc="upper right", frameon=False)
    fig.tight_layout()
    return fig


@styled
def lime_compare(items, image: np.ndarray, cols: int = 3):
    """Side by side, one panel per model: its top-10 LIME superpixels on the fake/real scale.

    ``items``: (model name, P(fake), verdict, Explanation) tuples.
    """
    n = len(items)
    cols = min(cols, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 4.4 * rows + 0.8), squeeze=False,
                             layout="constrained")  # constrained: second-row titles never overlap the first row
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, p_fake, verdict, expl) in zip(axes.ravel(), items):
        ax.imshow(_pos_neg(image, expl))
        ax.set_title(f"{name}\n{verdict.upper()} · P(fake) {p_fake:.3f}")
    fig.legend(handles=fake_real_patches(), loc="outside lower center", ncol=2, frameon=False)
    fig.suptitle("LIME top 10 superpixels per model (each for its verdict)")
    return fig


@styled
def waterfall(summary):
    """The region Shapley values of an :class:`explain.summary.Summary` as a waterfall: from P(fake) with every
    region filled, region by region (largest first), to the image's P(fake); the threshold dashed."""
    fig, ax = plt.subplots(figsize=(7.6, 4.6))  # with its labels about 8 inches wide
    if not summary.waterfall:
        ax.text(0.5, 0.5, "No region Shapley values\n(no face found)", ha="center", va="center")
        ax.axis("off")
        return fig
    rows = summary.waterfall
    filled = {"blur": "blurred", "mean": "mean colour", "hide": "hidden"}.get(summary.fill, "filled")
    labels = [f"every region {filled}"] + [w.name for w in rows] + ["this image"]
    y = np.arange(len(labels))[::-1]
    ax.barh(y[0], summary.base, color="0.6", height=0.6)
    for yi, w in zip(y[1:-1], rows):
        ax.barh(yi, w.value, left=w.start, color=FAKE if w.value >= 0 else REAL, height=0.6)
        ax.text(max(w.start, w.end) + 0.01, yi, f"{w.value:+.2f}", va="center")
    ax.barh(y[-1], rows[-1].end, color="0.25", height=0.6)
    ax.text(rows[-1].end + 0.01, y[-1], f"{rows[-1].end:.2f}", va="center")
    ax.text(summary.base + 0.01, y[0], f"{summary.base:.2f}", va="center")
    ax.axvline(summary.threshold, color="k", ls="--", lw=1)
    ax.set_yticks(y, labels)
    ax.set_xlim(0, 1.2)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1])
    ax.set_xlabel("P(fake)")
    ax.set_title("Which regions drove P(fake) (Shapley values)")
    handles = [*fake_real_patches(), plt.Line2D([], [], color="k", ls="--", label="threshold")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    fig.tight_layout()
    return fig

"""Deletion curves: does removing what an explanation calls important change the model's mind faster than chance?

:func:`deletion_curve` takes any :class:`Explanation`, ranks superpixels by their mean attribution (the
explanation's own segments, or SLIC ones when it has none), removes them one at a time in that order (filled
with ``hide_color``, as LIME does: by default the stable preset's fill, each superpixel's mean colour) and tracks P(target). The same is done for ``n_random`` random orders. A
useful explanation's curve falls faster: a smaller area under it than under the random mean.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from explain.base import Explanation, check_image
from explain.lime import jsonable, segment
from explain.params import DEFAULTS

MIN_RANDOM = 5


@dataclass
class DeletionCurve:
    fractions: np.ndarray  # (K+1,) k/K superpixels removed
    explanation_curve: np.ndarray  # (K+1,) P(target) removing in the explanation's order
    random_curves: np.ndarray  # (n_random, K+1) P(target) removing in random orders
    random_mean: np.ndarray  # (K+1,)
    random_std: np.ndarray  # (K+1,)
    auc_explanation: float  # trapezoid area of explanation_curve over fractions in [0, 1]
    auc_random: float  # trapezoid area of random_mean
    order: np.ndarray  # (K,) segment ids, most important first
    target: str  # "fake" or "real"
    method: str  # the explanation's method
    seconds: float = 0.0
    params: dict = field(default_factory=dict)

    @property
    def useful(self) -> bool:
        """The explanation's deletion curve has a smaller area than random deletion's."""
        return bool(self.auc_explanation < self.auc_random)

    def to_dict(self) -> dict:
        """JSON-ready: arrays as lists."""
        return {
            "fractions": self.fractions.tolist(),
            "explanation_curve": self.explanation_curve.tolist(),
            "random_curves": self.random_curves.tolist(),
            "random_mean": self.random_mean.tolist(),
            "random_std": self.random_std.tolist(),
            "auc_explanation": float(self.auc_explanation),
            "auc_random": float(self.auc_random),
            "useful": self.useful,
            "order": [int(i) for i in self.order],
            "target": self.target,
            "method": self.method,
            "seconds": round(float(self.seconds), 4),
            "params": dict(self.params),
        }


def _fill_image(image: np.ndarray, segments: np.ndarray, hide_color) -> np.ndarray:
    """What a removed pixel becomes: ``hide_color`` (scalar or RGB), or its superpixel's mean colour (None)."""
    if hide_color is None:
        k = int(segments.max()) + 1
        flat = segments.ravel()
        counts = np.maximum(np.bincount(flat, minlength=k), 1)
        means = np.stack([np.bincount(flat, image[..., c].ravel().astype(np.float64), k) / counts
                          for c in range(3)], axis=1)
        return means[segments].astype(image.dtype)
    fill = np.empty_like(image)
    fill[:] = np.asarray(hide_color)
    return fill


def _curve_images(image, fill, pixels, orders) -> Iterator[np.ndarray]:
    """For each order, the images with its first 1..K-1 segments removed (k = 0 and K are shared)."""
    for order in orders:
        current = image.copy()
        flat, flat_fill = current.reshape(-1, 3), fill.reshape(-1, 3)
        for seg_id in order[:-1]:
            idx = pixels[seg_id]
            flat[idx] = flat_fill[idx]
            yield current.copy()


def _chunks(images: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    batch = []
    for img in images:
        batch.append(img)
        if len(batch) == size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def deletion_curve(detector, image, explanation: Explanation, *, n_random: int = DEFAULTS.deletion_random,
                   hide_color=DEFAULTS.hide_color, seed: int = DEFAULTS.seed, n_segments: int = DEFAULTS.n_segments,
                   compactness: float = DEFAULTS.compactness, sigma: float = DEFAULTS.sigma,
                   batch_size: int = 256) -> DeletionCurve:
    """Deletion curve of ``explanation`` against ``n_random`` random deletion orders.

    Superpixels are ``explanation.segments`` when present, else SLIC (``n_segments``, ``compactness``,
    ``sigma``). Each is scored by the mean of ``explanation.attribution`` over its pixels and removed in
    decreasing score order (ties in random order, from ``seed``); ``fractions[k] = k/K``. Curves track
    P(explanation.target); every curve starts at the unperturbed image's probability and ends at the
    all-hidden image's.
    """
    image = check_image(image)
    if n_random < MIN_RANDOM:
        raise ValueError(f"n_random must be at least {MIN_RANDOM}, got {n_random}")
    if explanation.target not in ("fake", "real"):
        raise ValueError(f"explanation.target must be 'fake' or 'real', got {explanation.target!r}")
    attribution = np.asarray(explanation.attribution, dtype=np.float64)
    if attribution.shape != image.shape[:2]:
        raise ValueError(f"attribution {attribution.shape} does not match the image {image.shape[:2]}")
    start = time.perf_counter()

    if explanation.segments is not None:
        segments = np.asarray(explanation.segments)
        if segments.shape != image.shape[:2]:
            raise ValueError(f"segments {segments.shape} do not match the image {image.shape[:2]}")
        # any labelling -> ids 0..K-1
        _, segments = np.unique(segments, return_inverse=True)
        segments = segments.reshape(image.shape[:2]).astype(np.int32)
        source = "explanation"
    else:
        segments = segment(image, n_segments, compactness, sigma)
        source = "slic"
    k = int(segments.max()) + 1
    flat = segments.ravel()
    counts = np.bincount(flat, minlength=k)
    scores = np.bincount(flat, attribution.ravel(), k) / counts

    rng = np.random.default_rng(seed)
    random_orders = [rng.permutation(k) for _ in range(n_random)]
    tie_break = rng.permutation(k)
    order = np.lexsort((tie_break, -scores))  # by descending score, ties broken at random

    pixels = np.split(np.argsort(flat, kind="stable"), np.cumsum(counts)[:-1])
    fill = _fill_image(image, segments, hide_color)
    orders = [order, *random_orders]
    p_ends = detector.predict(np.stack([image, fill.copy()]), batch_size=batch_size)
    middle = [detector.predict(batch, batch_size=batch_size)
              for batch in _chunks(_curve_images(image, fill, pixels, orders), batch_size)]
    middle = np.concatenate(middle) if middle else np.zeros((0,), np.float32)
    p = np.empty((len(orders), k + 1), dtype=np.float64)
    p[:, 0], p[:, -1] = p_ends[0], p_ends[1]
    p[:, 1:-1] = middle.reshape(len(orders), k - 1)
    curves = p if explanation.target == "fake" else 1.0 - p

    fractions = np.arange(k + 1, dtype=np.float64) / k
    random_curves = curves[1:]
    random_mean = random_curves.mean(axis=0)
    return DeletionCurve(
        fractions=fractions,
        explanation_curve=curves[0],
        random_curves=random_curves,
        random_mean=random_mean,
        random_std=random_curves.std(axis=0),
        auc_explanation=float(np.trapezoid(curves[0], fractions)),
        auc_random=float(np.trapezoid(random_mean, fractions)),
        order=order.astype(np.int64),
        target=explanation.target,
        method=explanation.method,
        seconds=time.perf_counter() - start,
        params={"n_random": n_random, "hide_color": jsonable(hide_color), "seed": seed, "segments": source,
                "n_segments": n_segments, "compactness": compactness, "sigma": sigma, "batch_size": batch_size,
                "n_segments_actual": k},
    )


"""LIME superpixel explanations (lime 0.2.0.1's ``LimeImageExplainer``) with the study's SLIC segmentation.

``explain(detector, image, target=...)`` segments the face crop with SLIC, lets LIME switch superpixels
off (filling them with ``hide_color``), fits LIME's weighted ridge model to P(class) and returns the
per-superpixel weights of the target class painted back onto the image as an :class:`Explanation`.

lime 0.2.0.1 predates scikit-image's move to 1-based SLIC labels: it makes one feature per
``np.unique(segments)`` value and switches feature ``i`` off with ``segments == i``, so segment ids must be
exactly ``0..K-1`` or one superpixel is never switched off (and another feature is a dead no-op).
:func:`segment` guarantees that.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from explain.base import Explanation, check_image, resolve_target
from explain.params import DEFAULTS
from models.data.files import CLASSES

METHOD = "lime"
TOP_POSITIVE = 5  # study panel 1: get_image_and_mask(positive_only=True, num_features=5)
TOP_ABS = 10  # study panel 2: get_image_and_mask(positive_only=False, num_features=10)


def segment(image, n_segments: int = DEFAULTS.n_segments, compactness: float = DEFAULTS.compactness,
            sigma: float = DEFAULTS.sigma) -> np.ndarray:
    """SLIC superpixels of an HxWx3 uint8 image as an HxW int32 map with ids exactly ``0..K-1``."""
    from skimage.segmentation import relabel_sequential, slic

    image = check_image(image)
    labels = slic(image, n_segments=n_segments, compactness=compactness, sigma=sigma, start_label=0,
                  channel_axis=-1)
    # relabel_sequential keeps 0 as "background", so shift to 1.. first, then back to 0..K-1.
    relabelled, _, _ = relabel_sequential(labels - labels.min() + 1)
    return (relabelled - 1).astype(np.int32)


def _classifier(detector, batch_size: int, total: int, progress: Callable[[int, int], None] | None):
    """LIME's classifier_fn: a uint8 batch -> [[P(real), P(fake)], ...], reporting progress per batch."""
    done = 0

    def classifier_fn(images):
        nonlocal done
        p = np.asarray(detector.predict(np.asarray(images, dtype=np.uint8), batch_size=batch_size), np.float64)
        done += len(p)
        if progress is not None:
            progress(min(done, total), total)
        return np.stack([1.0 - p, p], axis=1)

    return classifier_fn


MAX_SIDE = 256  # LIME works on a copy at most this large; its maps are scaled back to the image's size


def _working_copy(image: np.ndarray, max_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    from PIL import Image

    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.LANCZOS))


def _to_size(segments: np.ndarray, shape) -> np.ndarray:
    """Nearest-neighbour resize of an id map."""
    if segments.shape == tuple(shape):
        return segments
    rows = (np.arange(shape[0]) * segments.shape[0] / shape[0]).astype(int)
    cols = (np.arange(shape[1]) * segments.shape[1] / shape[1]).astype(int)
    return segments[rows][:, cols]


def _explainer(seed: int):
    """lime's LimeImageExplainer with ``data_labels`` vectorised.

    Stock lime builds each perturbed image in a Python loop, testing ``segments == z`` once per switched-off
    superpixel (about 50 full-image comparisons per sample). This subclass draws the same random on/off
    matrix from the same RandomState, builds each batch of images with one fancy-indexing step (valid
    because segment ids are exactly 0..K-1) and calls the classifier on the same batches, so the data,
    the labels and the fitted weights are identical to stock lime's (a test checks this).
    """
    from lime import lime_image

    class BatchedLimeImageExplainer(lime_image.LimeImageExplainer):
        def data_labels(self, image, fudged_image, segments, classifier_fn, num_samples, batch_size=10):
            n_features = np.unique(segments).shape[0]
            data = self.random_state.randint(0, 2, num_samples * n_features).reshape((num_samples, n_features))
            data[0, :] = 1
            labels = []
            for start in range(0, num_samples, batch_size):
                off = data[start : start + batch_size][:, segments] == 0  # (B, H, W)
                labels.extend(classifier_fn(np.where(off[..., None], fudged_image, image)))
            return data, np.array(labels)

    return BatchedLimeImageExplainer(random_state=seed)


def explain(detector, image, *, target: str = DEFAULTS.target, n_segments: int = DEFAULTS.n_segments,
            compactness: float = DEFAULTS.compactness, sigma: float = DEFAULTS.sigma,
            num_samples: int = DEFAULTS.num_samples, hide_color=DEFAULTS.hide_color, seed: int = DEFAULTS.seed,
            batch_size: int = 250,
            progress: Callable[[int, int], None] | None = None, max_side: int = MAX_SIDE) -> Explanation:
    """LIME explanation of ``detector`` on ``image`` for ``target`` ("verdict", "fake" or "real").

    ``attribution`` is the target class's LIME weight of each superpixel painted over its pixels (> 0: the
    superpixel supports the target). ``hide_color`` fills switched-off superpixels: a scalar, an RGB triple
    or None (each superpixel's mean colour, LIME's own default). ``progress(done, total)`` is called after
    every classifier batch, ``total == num_samples``. ``seed`` seeds LIME's sampler (its own RandomState,
    not NumPy's global one). Images larger than ``max_side`` are explained on a resized copy (LIME's cost
    grows with the pixel count, the detector sees the same resized input either way) and the superpixel
    map is scaled back to the image's own size.
    """
    full = check_image(image)
    start = time.perf_counter()
    p_fake = float(detector.predict([full])[0])
    resolved = resolve_target(target, p_fake, detector.threshold)
    label = CLASSES.index(resolved)  # LIME's class index: classifier_fn returns [P(real), P(fake)]

    image = _working_copy(full, max_side)
    segments = segment(image, n_segments, compactness, sigma)
    k = int(segments.max()) + 1

    explainer = _explainer(seed)
    exp = explainer.explain_instance(
        image, _classifier(detector, batch_size, num_samples, progress),
        # both classes are fitted (same samples); the target's label goes last because lime keeps only
        # the last label's ``score`` and ``local_pred``.
        labels=(1 - label, label), top_labels=None, hide_color=hide_color, num_samples=num_samples,
        batch_size=batch_size, segmentation_fn=lambda _img: segments,
    )

    weights = np.zeros(k, dtype=np.float32)
    ranked = exp.local_exp[label]  # [(segment id, weight)], by decreasing |weight|
    for seg_id, w in ranked:
        weights[int(seg_id)] = w
    top_positive = [int(f) for f, w in ranked if w > 0][:TOP_POSITIVE]
    top_abs = [int(f) for f, _ in ranked[:TOP_ABS]]
    segments = _to_size(segments, full.shape[:2])
    mask_positive = np.isin(segments, top_positive).astype(np.int8)
    mask_pos_neg = np.where(np.isin(segments, top_abs), np.sign(weights[segments]), 0).astype(np.int8)

    params = {"n_segments": n_segments, "compactness": compactness, "sigma": sigma, "num_samples": num_samples,
              "hide_color": jsonable(hide_color), "seed": seed, "batch_size": batch_size,
              "max_side": max_side, "working_size": list(image.shape[:2])}
    extras = {
        "weights": weights,
        "intercept": float(exp.intercept[label]),
        "score": float(exp.score),
        "local_pred": float(np.ravel(exp.local_pred)[0]),
        "top_positive": top_positive,
        "top_abs": top_abs,
        "mask_positive": mask_positive,
        "mask_pos_neg": mask_pos_neg,
        "n_segments_actual": k,
    }
    return Explanation(method=METHOD, target=resolved, p_fake=p_fake, attribution=weights[segments],
                       segments=segments, params=params, seconds=time.perf_counter() - start, extras=extras)


def jsonable(value):
    if value is None or np.isscalar(value):
        return value.item() if isinstance(value, np.generic) else value
    return [v.item() if isinstance(v, np.generic) else v for v in np.asarray(value).ravel()]

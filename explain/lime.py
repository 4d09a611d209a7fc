"""LIME superpixel explanations (lime 0.2.0.1's sampling and weighted ridge, ``lime.lime_base.LimeBase``) on SLIC.

``explain(detector, image, target=...)`` segments the face crop with SLIC, switches superpixels off at random
(filling them with ``hide_color``), scores every perturbed image in one batched pass, fits LIME's weighted ridge
model to P(target) and returns the per-superpixel weights painted back onto the image as an :class:`Explanation`.
The defaults are the stable preset of :mod:`explain.params` (30 regular superpixels, mean-colour fill, 1,500
samples); the study's LIME is ``Params.preset("study")``. With ``consensus=1`` (the default) the samples and
weights are exactly stock lime's ``LimeImageExplainer(random_state=seed)`` (a test checks this); ``consensus`` > 1
averages that many fits on disjoint sampler seeds.

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


def member_seeds(seed: int, consensus: int = 1) -> list[int]:
    """The sampler seeds of a consensus of ``consensus`` LIME fits with base ``seed``: ``seed * consensus + i``.

    One member is plain LIME with ``seed``; consecutive base seeds get disjoint member seeds, so the
    stability check (seeds 0, 1, 2) compares consensuses that share no sample."""
    if consensus < 1:
        raise ValueError(f"consensus must be at least 1, got {consensus}")
    return [int(seed) * consensus + i for i in range(consensus)]


def _split(num_samples: int, consensus: int) -> list[int]:
    if num_samples < 2 * consensus:
        raise ValueError(f"num_samples {num_samples} leaves fewer than 2 samples to each of {consensus} fits")
    return [num_samples // consensus + (i < num_samples % consensus) for i in range(consensus)]


def _draw(seed: int, n: int, k: int) -> np.ndarray:
    """LIME's on/off matrix, drawn exactly as lime 0.2.0.1's explain_instance + data_labels draw it."""
    rs = np.random.RandomState(seed)
    rs.randint(0, high=1000)  # explain_instance first draws a (here unused) segmentation seed
    data = rs.randint(0, 2, n * k).reshape((n, k))
    data[0, :] = 1
    return data


def _fudged(image: np.ndarray, segments: np.ndarray, hide_color) -> np.ndarray:
    """What a switched-off superpixel becomes (lime's own code: a colour, or each superpixel's mean for None)."""
    fudged = image.copy()
    if hide_color is None:
        for x in np.unique(segments):
            fudged[segments == x] = tuple(np.mean(image[segments == x][:, c]) for c in range(3))
    else:
        fudged[:] = hide_color
    return fudged


def _fit(data: np.ndarray, target_p: np.ndarray, kernel_width: float, seed: int):
    """lime's weighted ridge (``LimeBase.explain_instance_with_data``, cosine distance to the unperturbed sample).

    Returns (intercept, weights by segment id, score, local_pred)."""
    import sklearn.metrics
    from lime.lime_base import LimeBase

    def kernel(d):
        return np.sqrt(np.exp(-(d ** 2) / float(kernel_width) ** 2))

    distances = sklearn.metrics.pairwise_distances(data, data[0].reshape(1, -1), metric="cosine").ravel()
    labels = np.stack([1.0 - target_p, target_p], axis=1)
    base = LimeBase(kernel, verbose=False, random_state=np.random.RandomState(seed))
    intercept, ranked, score, local_pred = base.explain_instance_with_data(
        data, labels, distances, 1, 100000, feature_selection="auto")
    weights = np.zeros(data.shape[1], dtype=np.float64)
    for seg_id, w in ranked:
        weights[int(seg_id)] = w
    return float(intercept), weights, float(score), float(np.ravel(local_pred)[0])


def _consensus(detector, image, segments, *, label: int, num_samples: int, hide_color, seed: int,
               kernel_width: float, consensus: int, batch_size: int, progress) -> dict:
    """Draw every member's samples, score them all in one batched pass, fit one ridge per member, average."""
    k = int(segments.max()) + 1
    seeds = member_seeds(seed, consensus)
    draws = [_draw(s, n, k) for s, n in zip(seeds, _split(num_samples, consensus))]
    data = np.concatenate(draws)
    fudged = _fudged(image, segments, hide_color)
    classify = _classifier(detector, batch_size, len(data), progress)
    probs = []
    for start in range(0, len(data), batch_size):
        off = data[start : start + batch_size][:, segments] == 0  # (B, H, W); ids are exactly 0..K-1
        probs.append(classify(np.where(off[..., None], fudged, image))[:, label])
    target_p = np.concatenate(probs)
    bounds = np.cumsum([0, *(len(d) for d in draws)])
    fits = [_fit(d, target_p[a:b], kernel_width, s) for d, a, b, s in zip(draws, bounds[:-1], bounds[1:], seeds)]
    return {"intercept": float(np.mean([f[0] for f in fits])), "weights": np.mean([f[1] for f in fits], axis=0),
            "score": float(np.mean([f[2] for f in fits])), "local_pred": float(np.mean([f[3] for f in fits])),
            "member_seeds": seeds}


def explain(detector, image, *, target: str = DEFAULTS.target, n_segments: int = DEFAULTS.n_segments,
            compactness: float = DEFAULTS.compactness, sigma: float = DEFAULTS.sigma,
            num_samples: int = DEFAULTS.num_samples, hide_color=DEFAULTS.hide_color, seed: int = DEFAULTS.seed,
            kernel_width: float = DEFAULTS.kernel_width, consensus: int = DEFAULTS.consensus,
            batch_size: int = 250,
            progress: Callable[[int, int], None] | None = None, max_side: int = MAX_SIDE) -> Explanation:
    """LIME explanation of ``detector`` on ``image`` for ``target`` ("verdict", "fake" or "real").

    ``attribution`` is the target class's LIME weight of each superpixel painted over its pixels (> 0: the
    superpixel supports the target). ``hide_color`` fills switched-off superpixels: a scalar, an RGB triple
    or None (each superpixel's mean colour, LIME's own default). ``kernel_width`` is LIME's (0.25 in lime).
    ``consensus`` > 1 splits ``num_samples`` over that many LIME fits with the sampler seeds of
    :func:`member_seeds`, scores all their samples in one batched pass and averages their weights (the cost
    is that of ``num_samples``); ``consensus=1`` is plain lime 0.2.0.1 with ``random_state=seed``, weights
    identical to stock lime's (a test checks this). ``progress(done, total)`` is called after every classifier
    batch, ``total == num_samples``. Images larger than ``max_side`` are explained on a resized copy (LIME's
    cost grows with the pixel count, the detector sees the same resized input either way) and the superpixel
    map is scaled back to the image's own size.
    """
    full = check_image(image)
    start = time.perf_counter()
    p_fake = float(detector.predict([full])[0])
    resolved = resolve_target(target, p_fake, detector.threshold)
    label = CLASSES.index(resolved)  # column of [P(real), P(fake)]

    image = _working_copy(full, max_side)
    segments = segment(image, n_segments, compactness, sigma)
    k = int(segments.max()) + 1
    fit = _consensus(detector, image, segments, label=label, num_samples=num_samples, hide_color=hide_color,
                     seed=seed, kernel_width=kernel_width, consensus=consensus, batch_size=batch_size,
                     progress=progress)

    weights = fit["weights"].astype(np.float32)
    ranked = sorted(range(k), key=lambda i: -abs(float(fit["weights"][i])))  # by decreasing |weight|
    top_positive = [i for i in ranked if weights[i] > 0][:TOP_POSITIVE]
    top_abs = ranked[:TOP_ABS]
    segments = _to_size(segments, full.shape[:2])
    mask_positive = np.isin(segments, top_positive).astype(np.int8)
    mask_pos_neg = np.where(np.isin(segments, top_abs), np.sign(weights[segments]), 0).astype(np.int8)

    params = {"n_segments": n_segments, "compactness": compactness, "sigma": sigma, "num_samples": num_samples,
              "hide_color": jsonable(hide_color), "seed": seed, "kernel_width": kernel_width,
              "consensus": consensus, "batch_size": batch_size, "max_side": max_side,
              "working_size": list(image.shape[:2])}
    extras = {
        "weights": weights,
        "intercept": fit["intercept"],
        "score": fit["score"],
        "local_pred": fit["local_pred"],
        "top_positive": top_positive,
        "top_abs": top_abs,
        "mask_positive": mask_positive,
        "mask_pos_neg": mask_pos_neg,
        "n_segments_actual": k,
        "member_seeds": fit["member_seeds"],
    }
    return Explanation(method=METHOD, target=resolved, p_fake=p_fake, attribution=weights[segments],
                       segments=segments, params=params, seconds=time.perf_counter() - start, extras=extras)


def jsonable(value):
    if value is None or np.isscalar(value):
        return value.item() if isinstance(value, np.generic) else value
    return [v.item() if isinstance(v, np.generic) else v for v in np.asarray(value).ravel()]

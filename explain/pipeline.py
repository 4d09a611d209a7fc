"""One explanation pipeline: landmarks -> region Shapley values -> LIME -> stability -> Grad-CAM -> activations ->
manipulation map -> regions -> deletion curves.

:func:`run` is what the Explain page, ``python -m explain`` and the HTML report (:mod:`explain.report.image`)
call; :class:`Params` (from :mod:`explain.params`) holds every parameter with *the* default, and
:class:`Bundle` everything computed: the verdict, each :class:`~explain.base.Explanation` by method, the
facial-region summaries, the exact region Shapley values, the evaluation metrics (deletion curves, LIME's stability across seeds), the
seconds per step and the methods that do not apply to the detector (Grad-CAM and activations need a neural
network, the manipulation map a detector with a map head, Shapley values a face), with the reason in
``Bundle.notes``. No Streamlit here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explain import activations, gradcam, lime, manipulation, regions, shapley
from explain.base import Explanation, check_image, resolve_target
from explain.metrics import faithfulness
from explain.metrics import stability as stability_metric
from explain.params import DEFAULTS, Params
from models.detectors.labels import verdict

__all__ = ["ATTRIBUTIONS", "DEFAULTS", "METHODS", "Bundle", "Params", "applies", "memory_cache", "run"]

METHODS = ("shapley", "lime", "gradcam", "activations", "manipulation", "regions")  # what run() can be asked for
ATTRIBUTIONS = ("lime", "gradcam", "manipulation")  # pixel maps: what region summaries and deletion curves are made of

Progress = Callable[[float, str], None]
Cache = Callable[[tuple, Callable[[], Any]], Any]


@dataclass
class Bundle:
    """Everything :func:`run` computed for one detector on one face crop."""

    model: str
    p_fake: float  # calibrated
    threshold: float  # the detector's operating point
    verdict: str  # "fake" or "real" at that threshold
    target: str  # the class the explanations show evidence for ("fake" or "real")
    params: Params
    explanations: dict[str, Explanation] = field(default_factory=dict)  # by method, in METHODS order
    regions: dict[str, regions.RegionSummary] = field(default_factory=dict)  # by method, when a face was found
    landmarks: regions.Landmarks | None = None
    face_found: bool | None = None  # None: landmarks were not looked for
    deletion: dict[str, faithfulness.DeletionCurve] = field(default_factory=dict)  # by method
    stability: dict | None = None  # explain.metrics.stability.stability's result, without its explanations
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step, in the order run
    not_applicable: list[str] = field(default_factory=list)  # asked-for methods the detector does not support
    notes: dict[str, str] = field(default_factory=dict)  # method -> the one line saying why it does not apply

    @property
    def attributions(self) -> dict[str, Explanation]:
        """The target-specific pixel maps (LIME, Grad-CAM, manipulation map): what regions and deletion curves
        are made of."""
        return {m: e for m, e in self.explanations.items() if m in ATTRIBUTIONS}


def applies(detector, method: str) -> bool:
    """Whether ``method`` can explain ``detector``: Grad-CAM needs a Keras model with a conv layer,
    activations a Keras model, the manipulation map a detector with a map head (``supports_manipulation_map``);
    LIME and regions apply to any detector."""
    if method == "gradcam":
        return bool(getattr(detector, "supports_gradcam", True) and getattr(detector, "keras_model", None) is not None
                    and gradcam.conv_layers(detector))
    if method == "activations":
        return bool(getattr(detector, "supports_activations", True)
                    and getattr(detector, "keras_model", None) is not None)
    if method == "manipulation":
        return manipulation.applies(detector)
    return method in METHODS


def not_applicable_line(detector, method: str) -> str:
    """The one line saying why ``method`` does not apply to ``detector``."""
    name = getattr(detector, "name", detector)
    if method == "manipulation":
        return manipulation.not_applicable_line(detector)
    if method in ("gradcam", "activations"):
        what = "Grad-CAM needs a neural network's gradients" if method == "gradcam" else \
            "Activation maps need a neural network"
        return f"{what}; it does not apply to {name}."
    if method == "shapley":
        return shapley.NO_FACE
    return f"{method} does not apply to {name}."


def memory_cache() -> Cache:
    """A cache for one (detector, image) pair in a dict: :func:`run` calls it ``cache(key, compute)``."""
    store: dict[tuple, Any] = {}

    def cache(key: tuple, compute: Callable[[], Any]):
        if key not in store:
            store[key] = compute()
        return store[key]

    return cache


def _hashable_fill(params: Params):
    """LIME's hide colour as part of a Shapley cache key (it is the fill only for ``shapley_fill="hide"``)."""
    return dict(params.lime_items())["hide_color"] if params.shapley_fill == "hide" else None


def _no_cache(_key: tuple, compute: Callable[[], Any]):
    return compute()


def run(detector, image, *, methods: Iterable[str] | None = None, params: Params = DEFAULTS,
        progress: Progress | None = None, cache: Cache | None = None) -> Bundle:
    """Explain ``detector``'s verdict on ``image`` (an HxWx3 uint8 face crop) with ``methods``.

    ``methods``: any of :data:`METHODS` (None: all of them, the manipulation map only where it applies, so
    that it is never listed as not applicable by default); "regions" summarises the LIME and Grad-CAM explanations computed per
    facial region (mtcnn landmarks). Deletion curves (``params.deletion``) are made for each of those too,
    LIME's stability across seeds when ``params.stability``. Methods the detector does not support are
    skipped and listed in ``Bundle.not_applicable``. ``progress(fraction, message)`` is called as steps
    finish (the last call with 1.0). ``cache(key, compute)``, when given, returns a stored result for
    ``key`` or stores ``compute()``; keys name a step and its parameters but not the detector or the image,
    so a cache must belong to one (detector, image) pair (see :func:`memory_cache`).
    """
    asked = set(METHODS if methods is None else methods)
    if methods is None and not applies(detector, "manipulation"):
        asked.discard("manipulation")
    unknown = asked - set(METHODS)
    methods = tuple(m for m in METHODS if m in asked)
    if unknown:
        raise ValueError(f"unknown method(s): {', '.join(sorted(unknown))}")
    image = check_image(image)
    p_fake = float(detector.predict([image])[0])
    threshold = float(detector.threshold)
    bundle = Bundle(model=detector.name, p_fake=p_fake, threshold=threshold, verdict=verdict(p_fake, threshold),
                    target=resolve_target(params.target, p_fake, threshold), params=params)
    steps = _Steps(detector, image, params, bundle, cache or _no_cache, progress)
    for m in methods:
        if m in ("gradcam", "activations", "manipulation") and not applies(detector, m):
            bundle.not_applicable.append(m)
            bundle.notes[m] = not_applicable_line(detector, m)
    steps.plan(methods)
    if "shapley" in methods or "regions" in methods:
        steps.landmarks()
    runs = [m for m in methods if m not in bundle.not_applicable and m != "regions"]
    for m in runs:
        getattr(steps, m)()
        if m == "lime" and params.stability:
            steps.stability()
    if "regions" in methods and bundle.attributions:
        steps.regions()
    if params.deletion:
        for m in bundle.attributions:
            steps.deletion(m)
    steps.report(1.0, "Done")
    return bundle


@dataclass
class _Steps:
    """The steps of one :func:`run`, each stored in the bundle, timed, cached and reported to ``progress``."""

    detector: Any
    image: np.ndarray
    params: Params
    bundle: Bundle
    cache: Cache
    progress: Progress | None
    weights: dict[str, float] = field(default_factory=dict)
    total: float = 1.0
    done: float = 0.0

    def plan(self, methods: tuple[str, ...]) -> None:
        """Relative cost of each step that will run, so that ``progress`` moves evenly."""
        runs = [m for m in methods if m not in self.bundle.not_applicable]
        cost = {"shapley": 2.0, "lime": 10.0, "gradcam": 1.0, "activations": 1.0, "manipulation": 1.0,
                "regions": 1.0}
        self.weights = {m: cost[m] for m in runs}
        if "shapley" in runs or "regions" in runs:
            self.weights["landmarks"] = 1.0
        if "lime" in runs and self.params.stability:
            self.weights["stability"] = 10.0 * (self.params.stability_runs - 1)
        if self.params.deletion:
            self.weights.update({f"deletion_{m}": 4.0 for m in ATTRIBUTIONS if m in runs})
        self.total = sum(self.weights.values()) or 1.0

    def report(self, fraction: float, message: str) -> None:
        if self.progress is not None:
            self.progress(min(max(float(fraction), 0.0), 1.0), message)

    def within(self, step: str, done: float, message: str) -> None:
        """Progress ``done`` (0..1) through ``step``."""
        self.report((self.done + self.weights.get(step, 0.0) * done) / self.total, message)

    def finish(self, step: str, seconds: float) -> None:
        self.bundle.timings[step] = float(seconds)
        self.done += self.weights.get(step, 0.0)

    def _lime_progress(self, step: str, label: str):
        def on_batch(done: int, total: int) -> None:
            self.within(step, done / max(total, 1), f"{label}: {done}/{total} perturbed images scored")

        return on_batch

    def lime(self) -> None:
        p = self.params
        e = self.cache(("lime", p.target, p.lime_items()),
                       lambda: lime.explain(self.detector, self.image, target=p.target,
                                            progress=self._lime_progress("lime", "LIME"), **p.lime_kwargs()))
        self.bundle.explanations["lime"] = e
        self.finish("lime", e.seconds)

    def stability(self) -> None:
        p, start = self.params, time.perf_counter()
        kwargs = {k: v for k, v in p.lime_kwargs().items() if k != "seed"}

        def compute():
            s = stability_metric.stability(self.detector, self.image, target=p.target, seeds=p.stability_seeds,
                                           k=p.top_k, reuse=self.bundle.explanations["lime"],
                                           progress=self._lime_progress("stability", "Stability"), **kwargs)
            return {k: v for k, v in s.items() if k != "explanations"}

        self.bundle.stability = self.cache(("stability", p.target, p.lime_items(), p.stability_seeds, p.top_k),
                                           compute)
        self.finish("stability", time.perf_counter() - start)

    def gradcam(self) -> None:
        p = self.params
        self.within("gradcam", 0.0, "Grad-CAM")
        e = self.cache(("gradcam", p.target, p.layer),
                       lambda: gradcam.explain(self.detector, self.image, target=p.target, layer=p.layer))
        self.bundle.explanations["gradcam"] = e
        self.finish("gradcam", e.seconds)

    def activations(self) -> None:
        p = self.params
        self.within("activations", 0.0, "Activations")
        e = self.cache(("activations", p.layer, p.activations_order, p.activations_channel),
                       lambda: activations.explain(self.detector, self.image, target=p.target, layer=p.layer,
                                                   order=p.activations_order, channel=p.activations_channel))
        self.bundle.explanations["activations"] = e
        self.finish("activations", e.seconds)

    def manipulation(self) -> None:
        p = self.params
        self.within("manipulation", 0.0, "Manipulation map")
        e = self.cache(("manipulation", p.target),
                       lambda: manipulation.explain(self.detector, self.image, target=p.target))
        self.bundle.explanations["manipulation"] = e
        self.finish("manipulation", e.seconds)

    def landmarks(self) -> None:
        self.within("landmarks", 0.0, "Finding facial landmarks (mtcnn)")
        start = time.perf_counter()
        landmarks = self.cache(("landmarks",), lambda: regions.detect_landmarks(self.image))
        self.bundle.landmarks, self.bundle.face_found = landmarks, landmarks is not None
        self.finish("landmarks", time.perf_counter() - start)

    def shapley(self) -> None:
        p = self.params
        if self.bundle.landmarks is None:  # no face: say so, do not guess regions
            self.bundle.not_applicable.append("shapley")
            self.bundle.notes["shapley"] = shapley.NO_FACE
            self.done += self.weights.get("shapley", 0.0)
            return
        self.within("shapley", 0.0, "Region Shapley values (64 coalitions)")
        e = self.cache(("shapley", p.target, p.shapley_fill, _hashable_fill(p)),
                       lambda: shapley.explain(self.detector, self.image, target=p.target, fill=p.shapley_fill,
                                               hide_color=p.hide_color, landmarks=self.bundle.landmarks))
        self.bundle.explanations["shapley"] = e
        self.finish("shapley", e.seconds)

    def regions(self) -> None:
        self.within("regions", 0.0, "Regions")
        if self.bundle.landmarks is not None:  # no face: nothing to rank
            start = time.perf_counter()
            self.bundle.regions = {m: regions.summarize(e, landmarks=self.bundle.landmarks)
                                   for m, e in self.bundle.attributions.items()}
            self.bundle.timings["regions"] = time.perf_counter() - start
        self.done += self.weights.get("regions", 0.0)

    def deletion(self, method: str) -> None:
        p, e = self.params, self.bundle.explanations[method]
        step = f"deletion_{method}"
        self.within(step, 0.0, f"Deletion curve for {method}")
        key = ("deletion", method, p.target, p.lime_items(), p.layer if method == "gradcam" else None,
               p.deletion_random)
        curve = self.cache(key, lambda: faithfulness.deletion_curve(
            self.detector, self.image, e, seed=p.seed, n_segments=p.n_segments, compactness=p.compactness,
            sigma=p.sigma, hide_color=p.hide_color, n_random=p.deletion_random))
        self.bundle.deletion[method] = curve
        self.finish(step, curve.seconds)

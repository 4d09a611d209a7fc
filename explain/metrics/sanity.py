"""Sanity checks for explanations (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018): does a
method's map depend on what the model learned, or only on the image?

:func:`randomized_copy` gives a detector with the same architecture whose weights are all re-initialised
(seeded, with each layer's own initialisers: Adebayo's *full* randomisation; ``layers`` randomises only some,
for their top-down cascade, see :func:`cascade_layers`). :func:`check` explains each image with each method on
the trained model and on the copy, always for target ``"fake"`` (so the two maps answer the same question even
when the verdicts differ), and compares them with :func:`rank_correlation` (Spearman's rho over pixels).

**The rule** (issue 13): a method *fails* when the mean Spearman rho of the **absolute-value** maps is
>= :data:`THRESHOLD` (0.5): its map barely changes when everything the model learned is destroyed, so it shows
the image, not the model. Absolute values, as in Adebayo's main figures, because they are the stricter test:
where a map points is what a reader takes from it, and a randomised model that only flips the sign of the
evidence (signed rho near -1) would pass a signed rule while its map still outlines the same image
structure. The signed rho is reported beside it. A map that is constant on one side carries no ranking, so
its rho counts as 0 (and ``n_constant`` says how often that happened).

Results live in the model's JSON under ``explanation_checks["randomization"]`` (:func:`save`), one record per
method with the parameters its maps were made with (:func:`method_params`: LIME's settings, Grad-CAM's layer, the
Shapley fill); :func:`failures` turns them into one plain line per failing method for the pages, and with the
page's ``params`` only where the stored result was measured at those settings.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from explain import pipeline, regions
from explain.params import DEFAULTS, Params
from models.detectors.base import KerasDetector

CHECK = "randomization"  # the key of this check in metadata["explanation_checks"]
THRESHOLD = 0.5  # mean |rho| >= THRESHOLD fails
STATISTIC = "mean Spearman rho of |map|, trained vs fully re-initialised copy"
RULE = f"a method fails when the {STATISTIC} is >= {THRESHOLD}"
METHODS = ("lime", "gradcam", "shapley", "manipulation")  # the maps the Explain page shows
TARGET = "fake"

Explainer = Callable[[object, np.ndarray], np.ndarray]  # (detector, image) -> HxW map: a custom method
Progress = Callable[[float, str], None]


# --- the randomised model ----------------------------------------------------------------------------------

def _seed_for(seed: int, name: str) -> int:
    """A per-initialiser seed from the copy's seed and the layer/initialiser name (independent of layer order)."""
    state = np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]).generate_state(1)[0]
    return int(state % (2 ** 31 - 1))


def _seeded_config(config: dict, seed: int, layer: str) -> dict:
    """A layer config whose random initialisers (those with a ``seed``) all get a fixed, distinct seed."""
    out = dict(config)
    for key, value in config.items():
        if key.endswith("_initializer") and isinstance(value, dict) and "seed" in (value.get("config") or {}):
            out[key] = {**value, "config": {**value["config"], "seed": _seed_for(seed, f"{layer}/{key}")}}
    return out


def weighted_layers(model, prefix: str = "") -> list[tuple[str, object]]:
    """``(path, layer)`` for every layer with weights, in model order; nested models' layers as ``"outer/inner"``."""
    out = []
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if hasattr(layer, "layers") and layer.layers:
            out += weighted_layers(layer, f"{path}/")
        elif layer.weights:
            out.append((path, layer))
    return out


def cascade_layers(detector) -> list[str]:
    """The weighted layers from the output down (Adebayo's cascading order): randomise the first k of them."""
    return [path for path, _ in reversed(weighted_layers(_keras_model(detector)))]


def _keras_model(detector):
    model = getattr(detector, "keras_model", None)
    if model is None:
        raise ValueError(f"{getattr(detector, 'name', detector)!r} has no neural network to randomise")
    return model


def randomized_copy(detector, seed: int = 0, layers: Iterable[str] | None = None) -> KerasDetector:
    """A :class:`KerasDetector` with ``detector``'s architecture (every output, e.g. ``p_fake`` and ``mask``) and
    its metadata (calibration, operating point, input size), whose weights are re-initialised with each layer's
    own initialisers, seeded from ``seed`` (the same seed gives the same weights).

    ``layers``: paths from :func:`weighted_layers` to randomise (the rest keep the trained weights); None: all
    of them (full randomisation). ValueError for a detector without a Keras model or an unknown layer.
    """
    import keras

    model = _keras_model(detector)

    def clone(layer):
        return layer.__class__.from_config(_seeded_config(layer.get_config(), seed, layer.name))

    random_model = keras.models.clone_model(model, clone_function=clone, recursive=True)
    trained = dict(weighted_layers(model))
    chosen = set(trained) if layers is None else set(layers)
    unknown = chosen - set(trained)
    if unknown:
        raise ValueError(f"no layer(s) with weights named {', '.join(sorted(unknown))}")
    for path, layer in weighted_layers(random_model):
        if path not in chosen:
            layer.set_weights(trained[path].get_weights())
    metadata = copy.deepcopy(getattr(detector, "metadata", None) or {})
    metadata["randomized"] = {"seed": int(seed), "layers": "all" if layers is None else sorted(chosen)}
    return KerasDetector(random_model, name=f"{detector.name} (randomised, seed {seed})", metadata=metadata)


# --- comparing maps ----------------------------------------------------------------------------------------

def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata  # scipy: a required dependency of scikit-learn and scikit-image

    return rankdata(x, method="average")


def rank_correlation(a, b, absolute: bool = True) -> float:
    """Spearman's rho between two maps of the same shape, over pixels (ties get average ranks). ``absolute``:
    of ``|a|`` and ``|b|`` (the failing rule's statistic, see the module doc); else signed. A constant map has
    no ranking: rho is 0.0 then."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {a.shape} vs {b.shape}")
    a, b = (np.abs(a), np.abs(b)) if absolute else (a, b)
    a, b = a.ravel(), b.ravel()
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return 0.0
    ra, rb = _ranks(a), _ranks(b)
    rho = np.corrcoef(ra, rb)[0, 1]
    return float(rho) if np.isfinite(rho) else 0.0


def is_constant(x) -> bool:
    x = np.asarray(x)
    return x.size < 2 or float(np.ptp(np.abs(x))) == 0.0


# --- running the check -------------------------------------------------------------------------------------

def _landmark_cache(landmarks) -> pipeline.Cache:
    """A fresh :func:`explain.pipeline.memory_cache` that already knows the image's landmarks (no mtcnn)."""
    cache = pipeline.memory_cache()
    cache(("landmarks",), lambda: landmarks)
    return cache


def maps(detector, image, methods: Sequence[str], params: Params, landmarks=None,
         custom: Mapping[str, Explainer] | None = None) -> dict[str, np.ndarray]:
    """Each method's attribution map of ``image`` for target "fake", as the Explain page computes it
    (:func:`explain.pipeline.run`, no deletion curves or stability); methods that do not apply are missing.
    ``landmarks``: the image's landmarks (None: no face, Shapley values skip it); ``custom``: extra methods."""
    custom = dict(custom or {})
    named = [m for m in methods if m not in custom]
    params = replace(params, target=TARGET, deletion=False, stability=False)
    bundle = pipeline.run(detector, image, methods=named, params=params, cache=_landmark_cache(landmarks))
    out = {m: np.asarray(e.attribution, np.float64) for m, e in bundle.explanations.items() if m in named}
    out.update({m: np.asarray(fn(detector, image), np.float64) for m, fn in custom.items() if m in methods})
    return out


def not_applicable(detector, methods: Sequence[str], custom: Mapping[str, Explainer] | None = None) -> dict[str, str]:
    """The methods among ``methods`` that cannot run on ``detector`` -> the one line saying why."""
    return {m: pipeline.not_applicable_line(detector, m) for m in methods
            if m not in (custom or {}) and m != "shapley" and not pipeline.applies(detector, m)}


def _summary(rows: list[dict], params: dict | None = None) -> dict:
    """Mean/median rho (|map| and signed), n, constant maps, repeatability and the verdict of one method, with the
    parameters its maps were made with and the date."""
    if not rows:
        return {"n": 0}
    absolute = np.array([r["rho"] for r in rows])
    signed = np.array([r["rho_signed"] for r in rows])
    rep = [r["repeat"] for r in rows if r.get("repeat") is not None]
    mean = float(absolute.mean())
    return {"n": len(rows), "mean_rho": round(mean, 4), "median_rho": round(float(np.median(absolute)), 4),
            "mean_rho_signed": round(float(signed.mean()), 4),
            "median_rho_signed": round(float(np.median(signed)), 4),
            "n_constant": int(sum(r["constant"] for r in rows)),
            "repeatability": round(float(np.mean(rep)), 4) if rep else None, "n_repeat": len(rep),
            "passed": bool(mean < THRESHOLD), "params": params or {},
            "date": datetime.now(UTC).isoformat(timespec="seconds"), "rhos": [round(float(x), 4) for x in absolute]}


def _compare(trained: dict, random: dict, again: dict | None) -> dict[str, dict]:
    rows = {}
    for m, a in trained.items():
        if m not in random:
            continue
        b = random[m]
        rows[m] = {"rho": rank_correlation(a, b), "rho_signed": rank_correlation(a, b, absolute=False),
                   "constant": is_constant(a) or is_constant(b),
                   "repeat": None if again is None or m not in again else rank_correlation(a, again[m])}
    return rows


def check(detector, images: Sequence[np.ndarray], methods: Sequence[str] = METHODS, params: Params = DEFAULTS,
          progress: Progress | None = None, *, landmarks: Sequence | None = None, seed: int = 0,
          split: str | None = None, custom: Mapping[str, Explainer] | None = None, repeat: bool | int = True,
          randomized=None) -> dict:
    """The randomisation sanity check of ``methods`` on ``images`` (HxWx3 uint8 face crops).

    Each image is explained on ``detector`` and on :func:`randomized_copy` (``seed``; or pass ``randomized``)
    for target "fake" with ``params``; per method: ``n``, mean/median rho of |map| and signed, ``n_constant``,
    ``passed`` (mean rho < :data:`THRESHOLD`), per-image ``rhos`` and, with ``repeat``, ``repeatability``: the
    rho between the trained model's map and its map with ``params.seed + 1`` (1 for a deterministic method; the
    ceiling a stochastic method like LIME can reach), on every image (True) or the first ``repeat`` (an int).
    ``landmarks``: one per image (None: no face, skipped by Shapley values), else mtcnn runs once per image. ``custom``: extra methods ``name -> fn(detector, image)``.
    Also returns the rule, date, parameters, split and number of images (the block :func:`save` stores).
    """
    skipped = not_applicable(detector, methods, custom)
    todo = [m for m in methods if m not in skipped]
    randomized = randomized or randomized_copy(detector, seed)
    rows: dict[str, list[dict]] = {m: [] for m in todo}
    for i, image in enumerate(images):
        lm = landmarks[i] if landmarks is not None else (regions.detect_landmarks(image) if "shapley" in todo
                                                         else None)
        trained = maps(detector, image, todo, params, lm, custom)
        again = maps(detector, image, todo, replace(params, seed=params.seed + 1), lm, custom) \
            if repeat is True or i < int(repeat) else None
        for m, row in _compare(trained, maps(randomized, image, todo, params, lm, custom), again).items():
            rows[m].append(row)
        if progress is not None:
            progress((i + 1) / max(len(images), 1), f"{i + 1}/{len(images)} images")
    if "shapley" in todo and not rows["shapley"]:
        skipped["shapley"] = "no image had facial landmarks"
    return {"check": "model randomisation (Adebayo et al., NeurIPS 2018)", "rule": RULE, "threshold": THRESHOLD,
            "statistic": "mean_rho", "target": TARGET, "seed": int(seed),
            "randomization": _randomization(randomized),
            "date": datetime.now(UTC).isoformat(timespec="seconds"), "split": split, "n_images": len(images),
            "n_repeat": len(images) if repeat is True else min(int(repeat), len(images)),
            "model": detector.name, "params": _params_record(params),
            "methods": {m: _summary(r, method_params(m, params)) for m, r in rows.items() if r},
            "skipped": skipped}


def _randomization(randomized) -> str | list[str]:
    """"full" (every layer re-initialised) or the layers that were."""
    layers = ((getattr(randomized, "metadata", None) or {}).get("randomized") or {}).get("layers", "all")
    return "full" if layers == "all" else list(layers)


def _jsonable(record: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in record.items()}


def _params_record(params: Params) -> dict:
    record = {k: v for k, v in params.lime_items()}
    record.update({"layer": params.layer, "shapley_fill": params.shapley_fill})
    return _jsonable(record)


def method_params(method: str, params: Params) -> dict:
    """The parameters ``method``'s map depends on (LIME's, Grad-CAM's layer, the Shapley fill; none for the
    manipulation map): what a stored result must match to speak for a map shown with ``params``."""
    if method == "lime":
        return _jsonable(dict(params.lime_items()))
    if method == "gradcam":
        return {"layer": params.layer}
    if method == "shapley":
        return _jsonable({"shapley_fill": params.shapley_fill,
                          **({"hide_color": dict(params.lime_items())["hide_color"]}
                             if params.shapley_fill == "hide" else {})})
    return {}


# --- storing and reading the result ------------------------------------------------------------------------

def save(model_file: str | Path, result: dict) -> dict:
    """Store ``result`` (from :func:`check`) as ``explanation_checks["randomization"]`` in the JSON beside
    ``model_file``, written atomically. Each method's record replaces that method's earlier one (so a later
    check of one method, e.g. LIME at other settings, keeps the others); the block's other fields describe the
    latest check; any other check stored in ``explanation_checks`` is kept. Returns the new metadata."""
    from models.detectors.registry import read_metadata, update_metadata

    checks = dict(read_metadata(Path(model_file)).get("explanation_checks") or {})
    old = checks.get(CHECK) if isinstance(checks.get(CHECK), Mapping) else {}
    methods = {**dict(old.get("methods") or {}), **result.get("methods", {})}
    skipped = {m: why for m, why in {**dict(old.get("skipped") or {}), **result.get("skipped", {})}.items()
               if m not in result.get("methods", {})}
    checks[CHECK] = {**result, "methods": methods, "skipped": skipped}
    return update_metadata(Path(model_file), explanation_checks=checks)


def stored(detector_or_metadata) -> dict | None:
    """The stored randomisation check of a detector (or of a metadata dict), or None."""
    metadata = detector_or_metadata if isinstance(detector_or_metadata, Mapping) else \
        getattr(detector_or_metadata, "metadata", None)
    checks = (metadata or {}).get("explanation_checks")
    block = checks.get(CHECK) if isinstance(checks, Mapping) else None
    return block if isinstance(block, Mapping) and isinstance(block.get("methods"), Mapping) else None


def applies_to(block: Mapping, method: str, params: Params | None) -> bool:
    """Whether the stored result of ``method`` was measured with the parameters its map is shown with
    (``params``; None: any). A record without its own ``params`` uses the block's."""
    if params is None:
        return True
    record = block["methods"].get(method) or {}
    measured = record.get("params") if isinstance(record.get("params"), Mapping) else block.get("params") or {}
    return all(measured.get(k) == v for k, v in method_params(method, params).items())


def reason(result: Mapping) -> str:
    """The one plain line for a method that failed, from its summary in a stored check."""
    return ("fails the randomisation sanity check: its map on a randomised copy of the model correlates at "
            f"rho {float(result['mean_rho']):.2f} with the trained model's, so it shows the image, not the model")


def failures(detector_or_metadata, params: Params | None = None) -> dict[str, str]:
    """method -> one plain line, for each method that failed the stored randomisation check of a detector (or of
    its metadata dict); {} when none is stored or every method passed. With ``params`` (what the page shows),
    only results measured with the same parameters for that method count (LIME at other settings says nothing)."""
    block = stored(detector_or_metadata)
    if block is None:
        return {}
    return {m: reason(r) for m, r in block["methods"].items()
            if isinstance(r, Mapping) and r.get("passed") is False and "mean_rho" in r
            and applies_to(block, m, params)}


__all__ = ["CHECK", "METHODS", "RULE", "THRESHOLD", "applies_to", "cascade_layers", "check", "failures", "maps",
           "method_params", "randomized_copy", "rank_correlation", "reason", "save", "stored", "weighted_layers"]

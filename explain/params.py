"""The explanation parameters and their defaults, defined once.

:class:`Params` is what :func:`explain.pipeline.run` takes; its field defaults are *the* defaults of the
Explain page, ``python -m explain``, the HTML reports and the explainers' own keyword arguments
(:data:`DEFAULTS` is read by :mod:`explain.lime` and :mod:`explain.metrics.faithfulness`).

LIME's defaults are the **stable** preset (issue 13, measured by ``bench/bench_lime_stability.py``, see
docs/BENCHMARKS.md); the study's LIME (SLIC 100/1/1, 1,000 samples, black fill) is one call away as
``Params.preset("study")`` (:data:`PRESETS`, :data:`PRESET_LABELS`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

LIME_FIELDS = ("n_segments", "compactness", "sigma", "num_samples", "hide_color", "seed", "kernel_width", "consensus")


@dataclass(frozen=True)
class Params:
    target: str = "verdict"  # "verdict" (the predicted class), "fake" or "real"
    # LIME (and the SLIC superpixels the deletion curves of Grad-CAM use)
    # The "stable" preset (issue 13): 30 regular superpixels with their mean colour as the fill, 1,500 samples.
    # Mean top-5 Jaccard across 3 seeds on 52 val / 52 test faces: 0.92 / 0.93 (the study's: 0.47 / 0.50), at
    # 1.4x the study's time (bench/bench_lime_stability.py, docs/BENCHMARKS.md).
    n_segments: int = 30  # superpixels asked of SLIC (the study: 100)
    compactness: float = 10.0  # SLIC compactness: 10 gives regular superpixels, near the count asked (study: 1)
    sigma: float = 1.0
    num_samples: int = 1500  # perturbed images scored (the study: 1,000)
    hide_color: Any = None  # fill of switched-off superpixels: None (their mean colour, lime's own default),
    # a scalar or an RGB triple (the study: 0, black)
    seed: int = 0
    kernel_width: float = 0.25  # LIME's kernel width (lime's own default 0.25)
    consensus: int = 1  # LIME fits averaged, num_samples split between them (explain.lime.member_seeds)
    # region Shapley values (explain.shapley)
    shapley_fill: str = "blur"  # what a removed region is replaced by: "blur", "mean" or "hide" (hide_color)
    # Grad-CAM and activations
    layer: str | None = None  # None: Grad-CAM's last conv layer, the activations' first one
    activations_order: str = "mean"  # channels ordered by "mean" activation or "index"
    activations_channel: int | None = None  # the zoomed channel; None: the first one shown
    # evaluation metrics
    stability: bool = False  # LIME again with the next seeds: top-k agreement (explain.metrics.stability)
    stability_runs: int = 3  # LIME runs compared: seeds seed, seed + 1, ...
    top_k: int = 5  # superpixels compared by the stability metric
    deletion: bool = True  # deletion curves (explain.metrics.faithfulness)
    deletion_random: int = 5  # random deletion orders each curve is compared with

    @property
    def stability_seeds(self) -> tuple[int, ...]:
        return tuple(self.seed + i for i in range(self.stability_runs))

    @classmethod
    def preset(cls, name: str, **changes) -> Params:
        """The defaults with LIME's parameters from preset ``name`` (:data:`PRESETS`), and any other ``changes``."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}: one of {', '.join(PRESETS)}")
        return cls().with_lime(PRESETS[name], **changes)

    @property
    def preset_name(self) -> str | None:
        """The preset whose LIME parameters these are (the seed aside), or None for a custom setting."""
        mine = {k: v for k, v in self.lime_items() if k != "seed"}
        for name, lime in PRESETS.items():
            if mine == {k: _hashable(v) for k, v in lime.items() if k != "seed"}:
                return name
        return None

    def lime_kwargs(self) -> dict:
        """The keyword arguments of :func:`explain.lime.explain` (but ``target``)."""
        return {name: getattr(self, name) for name in LIME_FIELDS}

    def lime_items(self) -> tuple:
        """LIME's parameters as hashable ``(name, value)`` pairs, in :data:`LIME_FIELDS` order."""
        return tuple((name, _hashable(getattr(self, name))) for name in LIME_FIELDS)

    def with_lime(self, lime_params=None, **changes) -> Params:
        """A copy with LIME parameters from a dict or ``(name, value)`` pairs, and any other ``changes``."""
        known = {f.name for f in fields(self)}
        updates = dict(lime_params or {})
        unknown = set(updates) - set(LIME_FIELDS)
        if unknown:
            raise ValueError(f"unknown LIME parameter(s): {', '.join(sorted(unknown))}")
        updates.update(changes)
        bad = set(updates) - known
        if bad:
            raise ValueError(f"unknown parameter(s): {', '.join(sorted(bad))}")
        return replace(self, **updates)


def _hashable(value):
    if isinstance(value, list):
        return tuple(value)
    if hasattr(value, "tolist") and not isinstance(value, (int, float)):
        v = value.tolist()
        return tuple(v) if isinstance(v, list) else v
    return value


hashable = _hashable  # the form a parameter value takes in a cache key (lists and arrays as tuples)

DEFAULTS = Params()

PRESETS: dict[str, dict] = {
    "stable": {k: getattr(DEFAULTS, k) for k in LIME_FIELDS if k != "seed"},  # the defaults
    "study": {"n_segments": 100, "compactness": 1.0, "sigma": 1.0, "num_samples": 1000, "hide_color": 0,
              "kernel_width": 0.25, "consensus": 1},
}
"""LIME's parameters (all but the seed) by preset name: "stable", the default, and "study", the study's LIME."""

PRESET_LABELS = {
    "stable": "Stable (default)",
    "study": "The study's LIME (SLIC 100/1/1, 1,000 samples, black fill)",
}

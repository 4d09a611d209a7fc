"""The explanation parameters and their defaults, defined once.

:class:`Params` is what :func:`explain.pipeline.run` takes; its field defaults are *the* defaults of the
Explain page, ``python -m explain``, the HTML reports and the explainers' own keyword arguments
(:data:`DEFAULTS` is read by :mod:`explain.lime` and :mod:`explain.metrics.faithfulness`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

LIME_FIELDS = ("n_segments", "compactness", "sigma", "num_samples", "hide_color", "seed")


@dataclass(frozen=True)
class Params:
    target: str = "verdict"  # "verdict" (the predicted class), "fake" or "real"
    # LIME (and the SLIC superpixels the deletion curves of Grad-CAM use)
    n_segments: int = 100  # superpixels asked of SLIC
    compactness: float = 1.0
    sigma: float = 1.0
    num_samples: int = 1000
    hide_color: Any = 0  # fill of switched-off superpixels: scalar, RGB triple, or None (their mean colour)
    seed: int = 0
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


DEFAULTS = Params()

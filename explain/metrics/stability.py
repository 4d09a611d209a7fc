"""LIME's stability under its random sampling: run it with several seeds and compare the top-k superpixel sets.

:func:`stability` re-runs :func:`explain.lime.explain` with each seed (the same SLIC segmentation, so the
superpixel ids compare) and reports the Jaccard index of every pair of top-k positive sets. A low mean
Jaccard means the LIME mask depends on the sampling: raise ``num_samples``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

from explain import lime
from explain.base import Explanation, resolve_target
from explain.params import DEFAULTS


def jaccard(a, b) -> float:
    """|a & b| / |a | b|; two empty sets are identical (1.0)."""
    a, b = set(a), set(b)
    return 1.0 if not (a or b) else len(a & b) / len(a | b)


def top_positive(explanation: Explanation, k: int = DEFAULTS.top_k) -> list[int]:
    """Ids of the ``k`` superpixels with the largest positive LIME weight."""
    w = explanation.extras["weights"]
    order = np.argsort(-w, kind="stable")
    return [int(i) for i in order[:k] if w[i] > 0]


def stability(detector, image, *, seeds: Sequence[int] = DEFAULTS.stability_seeds, k: int = DEFAULTS.top_k,
              progress: Callable[[int, int], None] | None = None, reuse: Explanation | None = None,
              **params) -> dict:
    """Re-run :func:`explain.lime.explain` with each seed (same SLIC segmentation) and compare the top-``k`` positive sets.

    Returns ``{"seeds", "top_k", "sets", "jaccard_pairs": [{"seeds": [a, b], "jaccard": j}, ...],
    "mean_jaccard", "explanations"}``. A low ``mean_jaccard`` means LIME's answer depends on its sampling
    (raise ``num_samples``). ``progress(done, total)`` covers all runs. ``reuse``: an explanation already
    computed with the same parameters for one of the seeds (it is not recomputed).
    """
    seeds = [int(s) for s in seeds]
    if len(seeds) < 2:
        raise ValueError("stability needs at least two seeds")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must differ, got {seeds}")
    params.pop("seed", None)
    n = int(params.get("num_samples", DEFAULTS.num_samples))
    target = params.get("target", DEFAULTS.target)

    def reusable(s):
        return reuse is not None and reuse.params.get("seed") == s and all(
            reuse.params.get(key) == lime.jsonable(value) for key, value in params.items() if key != "target"
        ) and resolve_target(target, reuse.p_fake, detector.threshold) == reuse.target

    todo = [s for s in seeds if not reusable(s)]
    explanations = []
    for s in seeds:
        if not reusable(s):
            run_progress = None
            if progress is not None:
                offset = todo.index(s) * n

                def run_progress(done, _total, offset=offset):
                    progress(offset + done, n * len(todo))
            explanations.append(lime.explain(detector, image, seed=s, progress=run_progress, **params))
        else:
            explanations.append(reuse)
    sets = [sorted(top_positive(e, k)) for e in explanations]
    pairs = [{"seeds": [seeds[i], seeds[j]], "jaccard": jaccard(sets[i], sets[j])}
             for i, j in itertools.combinations(range(len(seeds)), 2)]
    return {
        "seeds": seeds,
        "top_k": k,
        "sets": sets,
        "jaccard_pairs": pairs,
        "mean_jaccard": float(np.mean([p["jaccard"] for p in pairs])),
        "explanations": explanations,
    }

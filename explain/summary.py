"""The Explain page's Summary: the verdict, a waterfall of region Shapley values, each method's top region and
whether it can be trusted, whether the trusted methods agree, and a one-sentence headline.

:func:`summarize` reads a :class:`~explain.pipeline.Bundle` (no model calls, no Streamlit). Region Shapley
values (:mod:`explain.shapley`) are the primary answer to "which regions drove it": exact for the model,
signed, in units of P(fake), adding up from ``base`` (P(fake) with every region filled) to the score.

A pixel method (LIME, Grad-CAM, the manipulation map) is **trusted** only when its deletion curve falls faster
than random deletion (``DeletionCurve.useful``), it is not listed in ``sanity_failures`` (the model-randomisation
check) and, for LIME, its top superpixels are stable across seeds. An untrusted method keeps its row, greyed
with the reason, but it is listed after the trusted ones and never used to say that methods agree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from explain.regions import INNER, REGION_NAMES, REGIONS

__all__ = ["METHOD_NAMES", "STABILITY_MIN", "SUMMARY_METHODS", "Agreement", "MethodRow", "Summary", "WaterfallRow",
           "region_phrase", "summarize"]

SUMMARY_METHODS = ("shapley", "gradcam", "manipulation", "lime")  # the rows of the method table, in this order
METHOD_NAMES = {"shapley": "Region Shapley values", "lime": "LIME", "gradcam": "Grad-CAM",
                "manipulation": "Manipulation map"}
_IN_SENTENCE = {"shapley": "the Shapley values", "lime": "LIME", "gradcam": "Grad-CAM",
                "manipulation": "the manipulation map"}
STABILITY_MIN = 0.5  # LIME's mean top-k Jaccard across seeds below this: unstable, not trusted
EFFICIENCY_TOL = 1e-3  # Shapley values must add up to full - base within this


@dataclass
class WaterfallRow:
    """One region's step in the waterfall, in units of P(fake) (positive: toward fake)."""

    region: str
    name: str  # display name
    value: float  # the region's Shapley value toward fake
    start: float  # P(fake) before this step
    end: float  # P(fake) after it


@dataclass
class MethodRow:
    """One method in the Summary's table."""

    method: str
    name: str  # display name
    status: str  # "done" or "pending" (still computing)
    top_inner: str | None  # the inner region (eyes, nose, mouth) with the most evidence for the target
    top_region: str | None  # the same over all six regions
    trusted: bool
    reason: str | None  # why it is not trusted (None when trusted)
    auc_explanation: float | None = None  # deletion-curve areas (pixel methods)
    auc_random: float | None = None
    faithfulness: str = ""  # one line on its faithfulness test


@dataclass
class Agreement:
    """Whether the trusted methods' top inner regions agree."""

    basis: list[str]  # the trusted methods with a top inner region (never an untrusted one)
    region: str | None  # the region they agree on (all, or the Shapley values' when they disagree)
    agree: bool | None  # None: fewer than two trusted methods to compare
    disagree: dict[str, str] = field(default_factory=dict)  # method -> its other top region


@dataclass
class Summary:
    model: str
    verdict: str  # "fake" or "real"
    p_fake: float
    threshold: float
    unsure: bool
    target: str  # the class the explanations show evidence for
    face_found: bool | None
    base: float | None  # P(fake) with every region filled (None: no Shapley values)
    fill: str | None
    waterfall: list[WaterfallRow]
    methods: list[MethodRow]  # trusted first (Shapley values first), then untrusted, then pending
    agreement: Agreement
    not_applicable: dict[str, str]  # method -> the one line saying why it does not apply
    headline: str

    def row(self, method: str) -> MethodRow | None:
        return next((r for r in self.methods if r.method == method), None)

    @property
    def verdict_label(self) -> str:
        """"fake", "real", or "unsure (leans fake|real)"."""
        return f"unsure (leans {self.verdict})" if self.unsure else self.verdict


def region_phrase(region: str) -> str:
    """A region as a sentence names it: "the mouth", "the area outside the face"."""
    if region == "outside_face":
        return "the area outside the face"
    if region == "rest_of_face":
        return "the rest of the face"
    return f"the {REGION_NAMES[region]}"


def _to_fake(value: float, target: str) -> float:
    return value if target == "fake" else -value


def _waterfall(shap) -> tuple[list[WaterfallRow], float]:
    """Regions by |value| (largest first) from base to P(fake), in P(fake) units."""
    values = {r: _to_fake(v, shap.target) for r, v in shap.extras["values"].items()}
    base = shap.extras["base"] if shap.target == "fake" else 1.0 - shap.extras["base"]
    rows, level = [], float(base)
    for r in sorted(values, key=lambda r: (-abs(values[r]), REGIONS.index(r))):
        rows.append(WaterfallRow(r, REGION_NAMES[r], float(values[r]), level, level + float(values[r])))
        level += float(values[r])
    return rows, float(base)


def _tops(evidence: Mapping[str, float]) -> tuple[str | None, str | None]:
    """The inner region and the region overall with the most evidence for the target; None where no region
    has any (a map with no evidence for the target names no region)."""
    ranked = [r for r in sorted(evidence, key=lambda r: -evidence[r]) if evidence[r] > 0]
    return next((r for r in ranked if r in INNER), None), ranked[0] if ranked else None


def _shapley_row(shap, failure: str | None) -> MethodRow:
    values = shap.extras["values"]  # evidence for the target
    gap = abs(sum(values.values()) - (shap.extras["full"] - shap.extras["base"]))
    reasons = [failure] if failure else []
    if gap > EFFICIENCY_TOL:
        reasons.append(f"the values do not add up to the score (off by {gap:.3f})")
    line = f"exact over {2 ** len(values)} coalitions; the values add up to the score"
    return MethodRow("shapley", METHOD_NAMES["shapley"], "done", *_tops(values), not reasons,
                     "; ".join(reasons) or None, faithfulness=line)


def _pixel_reasons(method: str, bundle, failure: str | None) -> tuple[list[str], str]:
    """Why a pixel method is not trusted (empty: trusted) and the one line on its deletion test."""
    reasons = [f"fails the model-randomisation check: {failure}"] if failure else []
    curve = bundle.deletion.get(method)
    if curve is None:
        reasons.append("faithfulness not tested (deletion curves are off)")
        line = "not tested"
    else:
        line = f"deletion area {curve.auc_explanation:.3f} vs random {curve.auc_random:.3f}"
        if not curve.useful:
            reasons.append(f"fails its deletion test: removing its top superpixels first lowers P({curve.target}) "
                           f"no faster than random (area {curve.auc_explanation:.3f} vs {curve.auc_random:.3f})")
    if method == "lime" and bundle.stability and bundle.stability.get("mean_jaccard") is not None:
        jac = float(bundle.stability["mean_jaccard"])
        if jac < STABILITY_MIN:
            reasons.append(f"unstable: its top superpixels change with the seed (Jaccard {jac:.2f})")
    return reasons, line


def _pixel_row(method: str, bundle, failure: str | None) -> MethodRow:
    reasons, line = _pixel_reasons(method, bundle, failure)
    s = bundle.regions.get(method)
    top_inner, top_region = (None, None)
    if s is not None and s.face_found:
        top_inner, top_region = _tops({r: v["mean"] for r, v in s.regions.items() if v["pixels"]})
        if top_region is None:
            reasons.insert(0, f"its map shows no evidence for '{bundle.target}' in any region")
    curve = bundle.deletion.get(method)
    return MethodRow(method, METHOD_NAMES[method], "done", top_inner, top_region, not reasons,
                     "; ".join(reasons) or None, None if curve is None else float(curve.auc_explanation),
                     None if curve is None else float(curve.auc_random), line)


def _agreement(rows: list[MethodRow]) -> Agreement:
    basis = [r for r in rows if r.trusted and r.status == "done" and r.top_inner is not None]
    if not basis:
        return Agreement([], None, None)
    shap = next((r for r in basis if r.method == "shapley"), None)
    region = shap.top_inner if shap else Counter(r.top_inner for r in basis).most_common(1)[0][0]
    disagree = {r.method: r.top_inner for r in basis if r.top_inner != region}
    return Agreement([r.method for r in basis], region, None if len(basis) < 2 else not disagree, disagree)


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _headline(s: Summary) -> str:
    head = f"{s.verdict_label.capitalize()} (P {s.p_fake:.2f})"
    if not s.waterfall:
        why = "no face found, so no region breakdown" if s.face_found is False else "no region Shapley values"
        return f"{head}: {why}."
    toward_target = [w for w in s.waterfall if _to_fake(w.value, s.target) > 0]
    if toward_target:
        top = max(toward_target, key=lambda w: abs(w.value))
        change = f"adds +{top.value:.2f} to" if top.value > 0 else f"takes {-top.value:.2f} off"
        text = f"{head}: {region_phrase(top.region)} {change} P(fake)"
    else:
        text = f"{head}: no region adds evidence for '{s.target}'"
    a = s.agreement
    if a.agree:
        text += f"; {_join([_IN_SENTENCE[m] for m in a.basis])} agree on {region_phrase(a.region)}"
    elif a.agree is False:
        agreed = [_IN_SENTENCE[m] for m in a.basis if m not in a.disagree]
        parts = [f"{region_phrase(a.region)} for {_join(agreed)}"]
        parts += [f"{region_phrase(r)} for {_IN_SENTENCE[m]}" for m, r in a.disagree.items()]
        text += "; the trusted methods disagree: " + ", ".join(parts)
    return text + "."


def summarize(bundle, *, sanity_failures: Mapping[str, str], unsure: bool = False,
              pending: Iterable[str] = ()) -> Summary:
    """The Summary of ``bundle`` (see the module doc).

    ``sanity_failures``: method -> the one-line reason it fails the model-randomisation check ({} when none
    are known); those methods are not trusted. ``unsure``: the detector's "unsure" flag for this face (it needs
    the spread over views, which the bundle does not hold). ``pending``: methods still being computed (their
    rows say so; they are not trusted yet).
    """
    ex = bundle.explanations
    waterfall, base, fill = [], None, None
    rows = []
    if "shapley" in ex:
        waterfall, base = _waterfall(ex["shapley"])
        fill = ex["shapley"].extras.get("fill")
        rows.append(_shapley_row(ex["shapley"], sanity_failures.get("shapley")))
    pending = [m for m in pending if m not in ex and m not in bundle.notes]
    for m in SUMMARY_METHODS[1:]:
        if m in ex:
            rows.append(_pixel_row(m, bundle, sanity_failures.get(m)))
        elif m in pending:
            rows.append(MethodRow(m, METHOD_NAMES[m], "pending", None, None, False, "computing…"))
    rows.sort(key=lambda r: (r.status != "done", not r.trusted))  # stable: otherwise in SUMMARY_METHODS order
    s = Summary(bundle.model, bundle.verdict, float(bundle.p_fake), float(bundle.threshold), bool(unsure),
                bundle.target, bundle.face_found, base, fill, waterfall, rows, _agreement(rows),
                {m: line for m, line in bundle.notes.items() if m in SUMMARY_METHODS}, "")
    s.headline = _headline(s)
    return s

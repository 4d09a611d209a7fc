"""What drives many verdicts: exact region Shapley values (:mod:`explain.shapley`) over a set of face crops.

For each crop, φ per facial region is computed **toward fake** (``target="fake"`` always, so signs compare
across images: positive raises P(fake), negative lowers it). A set (a model's false positives, its false
negatives, the fake or real verdicts of a batch) is then summarised per region by :func:`aggregate`: mean φ,
mean |φ| and the share of images whose *top* region (the largest φ toward the set's verdict) is that region;
:func:`sentence` says it in one line ("False positives (n=37) are driven mostly by the mouth ...").

``make eval`` caches φ for every val and test image of the default models in
``assets/models/<name>.shapley-<split>.csv`` (``python -m explain.shapley_cache``), keyed by the path relative
to the data root as the evaluation caches (``<name>.eval.csv``) are, so that :func:`mistakes` can join the
two and pick the false positives and false negatives at the model's current threshold without running it.
Crops where mtcnn finds no landmarks keep their row with empty φ and ``face`` false: they are counted, never
guessed. No Streamlit here.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from explain import shapley
from explain.regions import REGION_NAMES
from models.data.landmarks import REGIONS, Landmarks

__all__ = ["CACHED_MODELS", "CACHE_COLUMNS", "FAKE_COLOR", "REAL_COLOR", "Mistakes", "PhiRow", "RegionAggregate", "aggregate",
           "cache_path", "compute_files", "figure", "is_stale", "load_cache", "mistakes", "phi_row", "phi_rows",
           "read_csv", "region_phrase", "sentence", "verdict_sets", "write_csv"]

CACHE_COLUMNS = ("path", "p_fake", *REGIONS, "base", "full", "fill", "face")
CACHED_MODELS = ("detector_v1", "detector_v2")  # the models ``make eval`` caches φ for
FAKE_COLOR = "#b2182b"  # the diverging convention of the attribution maps (RdBu_r): red toward fake
REAL_COLOR = "#2166ac"  # blue toward real


@dataclass
class PhiRow:
    """One crop's region Shapley values toward fake (``phi`` None: no facial landmarks, or unreadable)."""

    path: str  # the key: relative to the data root for the caches, the batch row's name on the Batch page
    p_fake: float | None
    phi: dict[str, float] | None = None  # region -> φ toward fake, in REGIONS order
    base: float | None = None  # P(fake) with every region filled
    full: float | None = None  # P(fake) of the crop itself (= base + Σφ)
    fill: str = "blur"

    @property
    def face(self) -> bool:
        return self.phi is not None

    def top(self, toward: str = "fake") -> str | None:
        """The region with the largest φ toward ``toward`` ("fake" or "real"), None without a face."""
        if self.phi is None:
            return None
        sign = 1.0 if toward == "fake" else -1.0
        return max(REGIONS, key=lambda r: sign * self.phi[r])


# --- computing φ ------------------------------------------------------------------------------------------------

def phi_row(detector, image: np.ndarray, key: str, landmarks: Landmarks | None, *, fill: str = "blur") -> PhiRow:
    """φ toward fake of ``detector`` on one crop with its ``landmarks`` (None: a row without φ, P(fake) only)."""
    if landmarks is None:
        return PhiRow(key, float(detector.predict([image])[0]), fill=fill)
    e = shapley.explain(detector, image, target="fake", fill=fill, landmarks=landmarks)
    return PhiRow(key, e.p_fake, dict(e.extras["values"]), e.extras["base"], e.extras["full"], fill)


def phi_rows(detector, keys: Sequence[str], load: Callable[[str], np.ndarray | None], *,
             landmarks: Sequence[Landmarks | None] | None = None, fill: str = "blur",
             progress: Callable[[int, int], None] | None = None) -> Iterator[PhiRow]:
    """One :class:`PhiRow` per key, in order: ``load(key)`` gives the crop (None or an exception from it: an
    unreadable crop, a row without φ or P(fake)); ``landmarks`` aligned with ``keys`` (None: mtcnn on each
    crop now). One 64-image predict per crop (batching crops does not pay on CPU: see docs/BENCHMARKS.md).
    ``progress(done, total)`` after each crop."""
    from models.data.landmarks import detect_landmarks

    total = len(keys)
    for i, key in enumerate(keys):
        try:
            image = load(key)
        except (OSError, ValueError):  # ImageLoadError is a ValueError
            image = None
        if image is None:
            yield PhiRow(key, None, fill=fill)
        else:
            lm = landmarks[i] if landmarks is not None else detect_landmarks(image)
            yield phi_row(detector, image, key, lm, fill=fill)
        if progress is not None:
            progress(i + 1, total)


def compute_files(detector, root: str | os.PathLike, keys: Sequence[str], *, fill: str = "blur",
                  progress: Callable[[int, int], None] | None = None) -> Iterator[PhiRow]:
    """:func:`phi_rows` for crop files ``root/key`` (keys relative to the data root, as the caches store them),
    with landmarks from the per-crop cache (:func:`models.data.landmarks.cached_landmarks`; missing ones are
    computed and stored first)."""
    from models.data.intake import load_image
    from models.data.landmarks import cached_landmarks

    root = Path(root)
    landmarks = cached_landmarks([root / k for k in keys])
    return phi_rows(detector, keys, lambda k: load_image(root / k), landmarks=landmarks, fill=fill,
                    progress=progress)


# --- the CSV cache --------------------------------------------------------------------------------------------

def cache_path(name: str, split: str = "test", folder: str | os.PathLike | None = None) -> Path:
    """``<folder>/<name>.shapley-<split>.csv`` (folder: ``assets/models``, next to the evaluation caches)."""
    from models.detectors.registry import ASSETS_DIR

    return Path(folder if folder is not None else ASSETS_DIR) / f"{name}.shapley-{split}.csv"


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.6f}"


def write_csv(rows: Iterable[PhiRow], out: str | os.PathLike) -> Path:
    """Write rows as CSV (:data:`CACHE_COLUMNS`) atomically. Paths and numbers only, never pixels."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CACHE_COLUMNS)
        for r in rows:
            phi = [_fmt(r.phi[k]) if r.phi else "" for k in REGIONS]
            writer.writerow([r.path, _fmt(r.p_fake), *phi, _fmt(r.base), _fmt(r.full), r.fill,
                             "true" if r.face else "false"])
    os.replace(tmp, out)
    return out


def _num(s: str) -> float | None:
    return float(s) if s not in ("", None) else None


def read_csv(path: str | os.PathLike) -> list[PhiRow]:
    """The rows of a cache written by :func:`write_csv`."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = set(CACHE_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: not a region Shapley cache (missing {', '.join(sorted(missing))})")
        rows = []
        for r in reader:
            face = r["face"].strip().lower() == "true"
            phi = {k: float(r[k]) for k in REGIONS} if face else None
            rows.append(PhiRow(r["path"], _num(r["p_fake"]), phi, _num(r["base"]), _num(r["full"]), r["fill"]))
    return rows


def load_cache(name: str, split: str = "test", folder: str | os.PathLike | None = None) -> list[PhiRow] | None:
    """The cached rows of ``name`` on ``split``, or None when ``make eval`` has not written them."""
    path = cache_path(name, split, folder)
    return read_csv(path) if path.is_file() else None


def is_stale(name: str, split: str = "test", folder: str | os.PathLike | None = None,
             models_folder: str | os.PathLike | None = None) -> bool:
    """True when the model file (in ``models_folder``, default assets/models) changed after its Shapley cache
    (in ``folder``) was written: rerun ``make eval``."""
    from models.detectors.registry import ASSETS_DIR, model_file

    path = cache_path(name, split, folder)
    model = model_file(Path(models_folder if models_folder is not None else ASSETS_DIR), name)
    return path.is_file() and model.is_file() and path.stat().st_mtime + 1 < model.stat().st_mtime


# --- sets and their summary ---------------------------------------------------------------------------------

@dataclass
class Mistakes:
    """A model's false positives and false negatives at a threshold, with their cached Shapley rows."""

    threshold: float
    fp: list[PhiRow]  # the Shapley rows of the false positives found in the cache
    fn: list[PhiRow]
    n_fp: int  # false positives in the evaluation scores (some may lack a Shapley row)
    n_fn: int
    missing: list[str] = field(default_factory=list)  # paths of mistakes with no Shapley row
    reals: list[PhiRow] = field(default_factory=list)  # every cached real (a reference for the FPs)
    fakes: list[PhiRow] = field(default_factory=list)  # every cached fake (a reference for the FNs)


def mistakes(phi: Iterable[PhiRow], scores, threshold: float) -> Mistakes:
    """Join the Shapley cache with evaluation ``scores`` (``paths``, labels ``y``, P(fake) ``p``: a
    :class:`models.analysis.zoo.Scores`) on path and pick the false positives (reals at P(fake) >= threshold)
    and false negatives (fakes below it), as the Error analysis page counts them; every cached real and fake
    too (what the mistakes compare with)."""
    by_path = {r.path: r for r in phi}
    y = np.asarray(scores.y, dtype=int)
    p = np.asarray(scores.p, dtype=float)
    fp_paths = [f for f, t, q in zip(scores.paths, y, p) if t == 0 and q >= threshold]
    fn_paths = [f for f, t, q in zip(scores.paths, y, p) if t == 1 and q < threshold]
    missing = [f for f in fp_paths + fn_paths if f not in by_path]
    by_truth = {t: [by_path[f] for f, yt in zip(scores.paths, y) if yt == t and f in by_path] for t in (0, 1)}
    return Mistakes(float(threshold), [by_path[f] for f in fp_paths if f in by_path],
                    [by_path[f] for f in fn_paths if f in by_path], len(fp_paths), len(fn_paths), missing,
                    by_truth[0], by_truth[1])


def verdict_sets(rows: Iterable[PhiRow], verdicts: Mapping[str, str]) -> dict[str, list[PhiRow]]:
    """Rows split by the verdict of their path (``verdicts``: path -> "fake" or "real"; others left out)."""
    out: dict[str, list[PhiRow]] = {"fake": [], "real": []}
    for r in rows:
        v = verdicts.get(r.path)
        if v in out:
            out[v].append(r)
    return out


@dataclass
class RegionAggregate:
    """φ over a set of crops, per region (toward fake), and how often each region is the top one toward
    ``toward`` (the set's verdict: "fake" for false positives, "real" for false negatives)."""

    toward: str
    n: int  # crops with φ
    no_face: int  # crops of the set without landmarks (no φ)
    mean: dict[str, float]  # mean φ toward fake
    mean_abs: dict[str, float]  # mean |φ|
    top_share: dict[str, float]  # share of the n crops whose top region toward ``toward`` is this one

    @property
    def driver(self) -> str | None:
        """The region with the largest mean φ toward ``toward``; None when no region pushes that way."""
        if not self.n:
            return None
        sign = 1.0 if self.toward == "fake" else -1.0
        best = max(REGIONS, key=lambda r: sign * self.mean[r])
        return best if sign * self.mean[best] > 0 else None

    def table(self) -> list[dict]:
        """One row per region: region (display name), mean φ, mean |φ|, top share."""
        return [{"region": REGION_NAMES[r], "mean φ (P(fake))": self.mean[r], "mean |φ|": self.mean_abs[r],
                 "top region in": self.top_share[r]} for r in REGIONS]


def aggregate(rows: Iterable[PhiRow], toward: str = "fake") -> RegionAggregate:
    """Summarise φ over ``rows`` (see :class:`RegionAggregate`); rows without a face are only counted."""
    if toward not in ("fake", "real"):
        raise ValueError(f"toward must be 'fake' or 'real', not {toward!r}")
    rows = list(rows)
    with_face = [r for r in rows if r.face]
    n = len(with_face)
    phi = np.array([[r.phi[k] for k in REGIONS] for r in with_face], dtype=np.float64).reshape(n, len(REGIONS))
    tops = [r.top(toward) for r in with_face]
    mean = phi.mean(axis=0) if n else np.zeros(len(REGIONS))
    mean_abs = np.abs(phi).mean(axis=0) if n else np.zeros(len(REGIONS))
    return RegionAggregate(toward, n, len(rows) - n, {k: float(v) for k, v in zip(REGIONS, mean)},
                           {k: float(v) for k, v in zip(REGIONS, mean_abs)},
                           {k: (tops.count(k) / n if n else 0.0) for k in REGIONS})


def _signed(x: float) -> str:
    s = f"{x:+.3f}" if abs(x) < 0.01 else f"{x:+.2f}"
    return s.replace("-", "\u2212")


def region_phrase(region: str) -> str:
    """A region as it reads in a sentence: "the mouth", "the rest of the face", "the area outside the face"."""
    special = {"outside_face": "the area outside the face", "rest_of_face": "the rest of the face"}
    return special.get(region, f"the {REGION_NAMES[region]}")


def sentence(label: str, agg: RegionAggregate) -> str:
    """One plain line: "False positives (n=37) are driven mostly by the mouth (mean +0.12 P(fake); top region
    in 41%)". The region is the one with the largest mean φ toward the set's verdict."""
    if not agg.n:
        return f"{label} (n=0): no crop with facial landmarks to explain."
    region = agg.driver
    if region is None:
        return f"{label} (n={agg.n}): no region pushes toward {agg.toward} on average."
    return (f"{label} (n={agg.n}) are driven mostly by {region_phrase(region)} (mean {_signed(agg.mean[region])} "
            f"P(fake); top region in {agg.top_share[region]:.0%})")


def figure(aggregates: Mapping[str, RegionAggregate], title: str | None = None, fontsize: float = 14):
    """One panel per set (side by side, regions shared): mean φ per region as a horizontal bar, red where it
    pushes toward fake, blue toward real, with each set's n and a legend. Fonts at ``fontsize`` (body size
    when the figure is shown about 800 px wide)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    fig = Figure(figsize=(4.6 * max(1, len(aggregates)) + 1.6, 4.2))
    axes = fig.subplots(1, max(1, len(aggregates)), sharey=True, squeeze=False)[0]
    limit = max([abs(v) for a in aggregates.values() for v in a.mean.values()] + [1e-3]) * 1.15
    y = np.arange(len(REGIONS))
    for ax, (label, agg) in zip(axes, aggregates.items()):
        values = np.array([agg.mean[r] for r in REGIONS])
        ax.barh(y, values, color=[FAKE_COLOR if v > 0 else REAL_COLOR for v in values], height=0.65)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlim(-limit, limit)
        ax.set_title(f"{label} (n={agg.n})", fontsize=fontsize)
        ax.set_xlabel("mean φ (P(fake))", fontsize=fontsize)
        ax.tick_params(labelsize=fontsize - 1)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, [REGION_NAMES[r] for r in REGIONS])
    axes[0].invert_yaxis()
    fig.legend(handles=[Patch(color=FAKE_COLOR, label="toward fake (raises P(fake))"),
                        Patch(color=REAL_COLOR, label="toward real (lowers P(fake))")],
               loc="lower center", ncol=2, fontsize=fontsize - 1, frameon=False)
    if title:
        fig.suptitle(title, fontsize=fontsize)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig

"""Dataset exploration and error analysis, without Streamlit: what the Dataset and Error analysis pages show.

* :func:`class_balance`: images per split, source and class, from ``manifest.csv`` when present, else by walking
  the ``{split}/{real,fake}/`` folders.
* :func:`list_images`: every image with its split, class and source, filterable (the page's image grid).
* :func:`mean_faces`: the average real and fake crop and their difference, a quick view of dataset bias.
* :func:`mistakes` and :func:`errors_by_source`: a model's false positives and false negatives at its threshold,
  most confident first, and their counts and rates per source.

Labels follow the project convention: fake = 1, every score is P(fake), "fake" at P(fake) >= threshold.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.data.files import CLASSES, SPLITS, DataError, kind_of, kinds_from_rows, list_files

MANIFEST = "manifest.csv"
THUMB_SIZE = 96
PER_PAGE = 24


# --- the dataset -----------------------------------------------------------------------------------------

def dataset_splits(root: str | os.PathLike) -> list[str | None]:
    """The split folders of ``root`` (train, val, test) that exist, or ``[None]`` for a plain ``root/{real,fake}``.

    Raises :class:`DataError` when ``root`` is not a dataset folder at all.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    splits = [s for s in SPLITS if (root / s).is_dir()]
    if splits:
        return splits
    if any((root / c).is_dir() for c in CLASSES):
        return [None]
    raise DataError(f"{root} has neither split folders ({', '.join(SPLITS)}) nor real/ and fake/ folders")


def is_dataset(root: str | os.PathLike | None) -> bool:
    """True when ``root`` is laid out as a dataset (see :func:`dataset_splits`)."""
    if not root:
        return False
    try:
        dataset_splits(root)
    except DataError:
        return False
    return True


def has_split(root: str | os.PathLike | None, split: str) -> bool:
    """True when ``root`` is a dataset with a ``split`` folder (e.g. the test images the error galleries need)."""
    return is_dataset(root) and (Path(root) / split).is_dir()


def dataset_stamp(root: str | os.PathLike) -> tuple[float, ...]:
    """Changes when files are added or removed (folder mtimes) or the manifest is rewritten: a cache key."""
    root = Path(root)
    paths = [root / MANIFEST] + [root / s / c for s in (*SPLITS, "") for c in CLASSES]
    return tuple(p.stat().st_mtime if p.exists() else 0.0 for p in paths)


def _label_name(value) -> str | None:
    v = str(value).strip().lower()
    return {"0": "real", "1": "fake", "real": "real", "fake": "fake"}.get(v)


def read_manifest(root: str | os.PathLike) -> list[dict] | None:
    """The rows of ``root/manifest.csv`` (split, label as "real"/"fake", source), or None when it is missing or
    lacks those columns."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not {"split", "label", "source"} <= set(reader.fieldnames or ()):
            return None
        rows = []
        for row in reader:
            label = _label_name(row["label"])
            if label is None:
                continue
            rows.append({**row, "label": label, "source": row["source"] or "unknown"})
    return rows


def balance_origin(root: str | os.PathLike) -> str:
    """Where :func:`class_balance` counts from: "manifest.csv" or "folders"."""
    return MANIFEST if read_manifest(root) is not None else "folders"


def _walk(root: Path) -> Iterable[tuple[str, str, str]]:
    """(split, label, source) for every image file under ``root``."""
    for split in dataset_splits(root):
        files = list_files(root, split)
        for y, src in zip(files.labels, files.sources):
            yield split or "all", CLASSES[y], src


def class_balance(root: str | os.PathLike) -> list[dict]:
    """Images per split and source, real and fake: one row per (split, source), in split then source order.

    Counts come from ``root/manifest.csv`` when present (:func:`balance_origin` says which), else from walking
    ``root/{split}/{real,fake}/`` (sources from ``<source>__`` file names). A root without split folders gives
    the split "all".
    """
    root = Path(root)
    manifest = read_manifest(root)
    triples = ((r["split"], r["label"], r["source"]) for r in manifest) if manifest is not None else _walk(root)
    counts = Counter(triples)
    kinds = kinds_from_rows(manifest) if manifest is not None else {}
    with_fakes = {src for _split, label, src in counts if label == "fake"}
    order = {s: i for i, s in enumerate(SPLITS)}
    keys = sorted({(split, src) for split, _, src in counts}, key=lambda k: (order.get(k[0], len(order)), k))
    rows = []
    for split, src in keys:
        real, fake = counts[(split, "real", src)], counts[(split, "fake", src)]
        rows.append({"split": split, "source": src, "kind": kind_of(src, kinds, src in with_fakes),
                     "real": real, "fake": fake, "total": real + fake, "share fake": fake / max(real + fake, 1)})
    return rows


def balance_by_split(rows: Sequence[dict]) -> list[dict]:
    """:func:`class_balance` rows summed per split."""
    out: dict[str, dict] = {}
    for r in rows:
        s = out.setdefault(r["split"], {"split": r["split"], "real": 0, "fake": 0})
        s["real"] += r["real"]
        s["fake"] += r["fake"]
    for s in out.values():
        s["total"] = s["real"] + s["fake"]
        s["share fake"] = s["fake"] / max(s["total"], 1)
    return list(out.values())


def balance_by_source(rows: Sequence[dict]) -> list[dict]:
    """One row per source: real and fake per split (``"<split> real"``...), then in all splits."""
    splits = list(dict.fromkeys(r["split"] for r in rows))
    out: dict[str, dict] = {}
    for r in sorted(rows, key=lambda r: r["source"]):
        s = out.setdefault(r["source"], {"source": r["source"], "kind": r["kind"],
                                         **{f"{sp} {c}": 0 for sp in splits for c in CLASSES}})
        s[f"{r['split']} real"] += r["real"]
        s[f"{r['split']} fake"] += r["fake"]
    for s in out.values():
        s["real"] = sum(s[f"{sp} real"] for sp in splits)
        s["fake"] = sum(s[f"{sp} fake"] for sp in splits)
        s["share fake"] = s["fake"] / max(s["real"] + s["fake"], 1)
    return list(out.values())


def one_class_sources(rows: Sequence[dict]) -> dict[str, str]:
    """Sources that bring only one class ({source: "real" or "fake"}): a model can learn where such an image
    comes from instead of whether it was manipulated."""
    by = balance_by_source(rows)
    return {r["source"]: "fake" if r["fake"] else "real" for r in by if not (r["real"] and r["fake"])}


def list_images(root: str | os.PathLike, split: str | None = None, label=None, source=None) -> list[dict]:
    """Every image under ``root`` as a row: path (absolute), file (relative to root), split, label ("real" or
    "fake"), source and name (the original file name when the manifest knows it); split then class then file
    order. Filter by ``split``, ``label`` ("real"/"fake" or 0/1) and ``source`` (one name or several); None
    keeps all."""
    root = Path(root)
    rows = []
    for sp in dataset_splits(root):
        if split is not None and sp not in (None, split):
            continue
        files = list_files(root, sp)
        for path, y, src, name in zip(files.paths, files.labels, files.sources, files.names):
            rows.append({"path": path, "file": Path(path).relative_to(root).as_posix(), "split": sp or "all",
                         "label": CLASSES[y], "source": src, "name": name})
    return filter_images(rows, split=split, label=label, source=source)


def filter_images(rows: Sequence[dict], split: str | None = None, label=None, source=None) -> list[dict]:
    """The rows of :func:`list_images` that match every filter given (None keeps all)."""
    label = _label_name(label) if label is not None else None
    sources = None if source is None else ({source} if isinstance(source, str) else set(source))
    return [r for r in rows
            if (split is None or r["split"] == split) and (label is None or r["label"] == label)
            and (sources is None or r["source"] in sources)]


def splits_in(rows: Sequence[dict]) -> list[str]:
    """The splits of ``rows`` (from :func:`list_images`), in the order they first appear."""
    return list(dict.fromkeys(r["split"] for r in rows))


def sources_in(rows: Sequence[dict]) -> list[str]:
    """The sources of ``rows``, sorted."""
    return sorted({r["source"] for r in rows})


def paginate(items: Sequence, page: int, per_page: int = PER_PAGE) -> tuple[Sequence, int, int]:
    """``(items on page, page, n_pages)``; ``page`` counts from 1 and is clamped to the pages there are."""
    n_pages = max(1, -(-len(items) // per_page))
    page = min(max(1, int(page)), n_pages)
    return items[(page - 1) * per_page : page * per_page], page, n_pages


def page_span(page: int, n_on_page: int, per_page: int = PER_PAGE) -> tuple[int, int]:
    """The 1-based numbers of the first and last item on ``page`` (of :func:`paginate`) holding ``n_on_page``."""
    first = (page - 1) * per_page
    return first + 1, first + n_on_page


def thumbnail(path: str | os.PathLike, size: int = THUMB_SIZE) -> np.ndarray:
    """The image at ``path`` as RGB uint8, downscaled to fit ``size`` x ``size`` (never enlarged)."""
    from PIL import Image

    from models.data.intake import load_image

    img = Image.fromarray(load_image(path))
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    return np.asarray(img)


def jpeg_bytes(image: np.ndarray, quality: int = 92) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


# --- the mean face -----------------------------------------------------------------------------------------

@dataclass
class MeanFaces:
    """The average real and fake image (HxWx3 float64, 0-1) and ``diff`` = mean fake - mean real (-1 to 1).

    A mean is None when its class has no image; ``diff`` is None unless both exist. ``skipped`` counts files that
    could not be decoded.
    """

    mean_real: np.ndarray | None
    mean_fake: np.ndarray | None
    diff: np.ndarray | None
    n_real: int
    n_fake: int
    skipped: int = 0

    def summary(self) -> dict:
        """Mean brightness per class and the mean and largest absolute difference (0-1 scale)."""
        out = {"n real": self.n_real, "n fake": self.n_fake,
               "brightness real": None if self.mean_real is None else float(self.mean_real.mean()),
               "brightness fake": None if self.mean_fake is None else float(self.mean_fake.mean())}
        if self.diff is not None:
            out["mean |diff|"] = float(np.abs(self.diff).mean())
            out["max |diff|"] = float(np.abs(self.diff).max())
        return out


def _square(image: np.ndarray, size: int) -> np.ndarray:
    """Centre square of ``image``, resized to ``size`` x ``size`` (bilinear) when it is not already."""
    h, w = image.shape[:2]
    if h != w:
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        image = image[top : top + s, left : left + s]
    if image.shape[0] != size:
        from PIL import Image

        image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
    return image


def mean_faces(paths: Sequence[str | os.PathLike], labels: Sequence, size: int = 128,
               progress: Callable[[int, int], None] | None = None, every: int = 64) -> MeanFaces:
    """Average the images of each class (labels: 0/1 or "real"/"fake") with a streaming float64 sum.

    Images are decoded one at a time (:func:`models.intake.load_image`), centre-squared and resized to ``size``
    when needed; undecodable files are skipped and counted. ``progress(done, total)`` is called every ``every``
    images and at the end.
    """
    from models.data.intake import ImageLoadError, load_image

    if len(paths) != len(labels):
        raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
    sums = {c: np.zeros((size, size, 3), np.float64) for c in CLASSES}
    counts = dict.fromkeys(CLASSES, 0)
    skipped, total = 0, len(paths)
    for i, (path, label) in enumerate(zip(paths, labels), start=1):
        cls = _label_name(label)
        if cls is None:
            raise ValueError(f"label must be 0/1 or real/fake, not {label!r}")
        try:
            image = load_image(path)
        except ImageLoadError:
            skipped += 1
        else:
            sums[cls] += _square(image, size)
            counts[cls] += 1
        if progress is not None and (i % every == 0 or i == total):
            progress(i, total)
    means = {c: sums[c] / (255.0 * counts[c]) if counts[c] else None for c in CLASSES}
    diff = means["fake"] - means["real"] if counts["real"] and counts["fake"] else None
    return MeanFaces(means["real"], means["fake"], diff, counts["real"], counts["fake"], skipped)


def mean_face_figure(mf: MeanFaces, title: str | None = None):
    """Mean real, mean fake and their difference (fake - real, averaged over RGB) on a diverging colormap with
    symmetric limits and a colorbar: red where fakes are brighter on average, blue where reals are."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.9))
    axes = fig.subplots(1, 3)
    for ax, mean, cls, n in ((axes[0], mf.mean_real, "real", mf.n_real), (axes[1], mf.mean_fake, "fake", mf.n_fake)):
        if mean is None:
            ax.text(0.5, 0.5, f"no {cls} images", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.imshow(np.clip(mean, 0, 1))
        ax.set_title(f"mean {cls} (n = {n})")
        ax.set_xticks([])
        ax.set_yticks([])
    ax = axes[2]
    ax.set_xticks([])
    ax.set_yticks([])
    if mf.diff is None:
        ax.text(0.5, 0.5, "needs both classes", ha="center", va="center", transform=ax.transAxes)
        ax.set_title("difference")
    else:
        d = mf.diff.mean(axis=-1)
        limit = max(float(np.abs(d).max()), 1e-6)
        im = ax.imshow(d, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title("fake − real (mean over RGB)")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="brightness difference (0-1 scale)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --- errors of a model ---------------------------------------------------------------------------------------

def _columns(scores) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """paths, sources, y, p of a :class:`models.zoo.Scores` or anything with those attributes."""
    y = np.asarray(scores.y, dtype=int)
    p = np.asarray(scores.p, dtype=float)
    if not (len(scores.paths) == len(scores.sources) == len(y) == len(p)):
        raise ValueError("scores: paths, sources, y and p differ in length")
    return list(scores.paths), list(scores.sources), y, p


def resolve(path: str, root: str | os.PathLike | None) -> str:
    """``path`` made absolute against the dataset ``root`` (cached scores store paths relative to it)."""
    p = Path(path)
    return str(p if p.is_absolute() or root is None else Path(root) / p)


def coverage(scores, root: str | os.PathLike) -> float:
    """Share of the scored files that exist under ``root`` (0 when the scores were made on another dataset)."""
    paths = list(scores.paths)
    if not paths:
        return 0.0
    return sum(Path(resolve(p, root)).is_file() for p in paths) / len(paths)


def mistakes(scores, threshold: float, root: str | os.PathLike | None = None) -> tuple[list[dict], list[dict]]:
    """The false positives (reals at P(fake) >= threshold) and false negatives (fakes below it), most confident
    first: FPs by P(fake) descending, FNs by P(fake) ascending (ties by file). Each row: path (resolved against
    ``root``), file (as scored), source, kind, truth and p_fake."""
    paths, sources, y, p = _columns(scores)
    kinds = getattr(scores, "kinds", None) or {}
    with_fakes = {s for s, t in zip(sources, y) if t == 1}
    rows = [{"path": resolve(f, root), "file": f, "source": s, "kind": kind_of(s, kinds, s in with_fakes),
             "truth": CLASSES[int(t)], "p_fake": float(q)} for f, s, t, q in zip(paths, sources, y, p)]
    fp = [r for r, t, q in zip(rows, y, p) if t == 0 and q >= threshold]
    fn = [r for r, t, q in zip(rows, y, p) if t == 1 and q < threshold]
    fp.sort(key=lambda r: (-r["p_fake"], r["file"]))
    fn.sort(key=lambda r: (r["p_fake"], r["file"]))
    return fp, fn


def error_totals(scores, threshold: float) -> dict:
    """Counts at ``threshold``: n, n real, n fake, FP, FN, and the FP rate, FN rate and accuracy."""
    _, _, y, p = _columns(scores)
    pred = p >= threshold
    n_real, n_fake = int((y == 0).sum()), int((y == 1).sum())
    fp, fn = int((pred & (y == 0)).sum()), int((~pred & (y == 1)).sum())
    return {"n": len(y), "n real": n_real, "n fake": n_fake, "FP": fp, "FN": fn,
            "FP rate": fp / n_real if n_real else None, "FN rate": fn / n_fake if n_fake else None,
            "accuracy": 1 - (fp + fn) / len(y) if len(y) else None}


def errors_by_source(scores, threshold: float) -> list[dict]:
    """Per source: reals and fakes scored, false positives (reals called fake) and false negatives (fakes
    passed as real) with their rates, and all errors. Most errors first, then by source name."""
    _, sources, y, p = _columns(scores)
    kinds = getattr(scores, "kinds", None) or {}
    pred = p >= threshold
    acc: dict[str, Counter] = defaultdict(Counter)
    for s, t, f in zip(sources, y, pred):
        c = acc[s]
        c["n real" if t == 0 else "n fake"] += 1
        c["FP"] += int(t == 0 and f)
        c["FN"] += int(t == 1 and not f)
    rows = []
    for s, c in acc.items():
        n = c["n real"] + c["n fake"]
        rows.append({"source": s, "kind": kind_of(s, kinds, c["n fake"] > 0), "n real": c["n real"],
                     "n fake": c["n fake"], "FP": c["FP"], "FP rate": c["FP"] / c["n real"] if c["n real"] else None,
                     "FN": c["FN"], "FN rate": c["FN"] / c["n fake"] if c["n fake"] else None,
                     "errors": c["FP"] + c["FN"], "error rate": (c["FP"] + c["FN"]) / n})
    rows.sort(key=lambda r: (-r["errors"], r["source"]))
    return rows


def score_split(detector, root: str | os.PathLike, split: str = "test", progress=None, batch_size: int = 64):
    """Score every image of ``root/split`` with ``detector`` now (the files are face crops: ``crop="none"``).

    Returns ``(scores, failed)``: a :class:`models.zoo.Scores` with paths relative to ``root``, like the cached
    evaluation CSVs, and the error messages of the files that could not be scored. ``progress(done, total)``.
    """
    from models.analysis.zoo import Scores
    from models.scoring.stream import score_paths

    root = Path(root)
    files = list_files(root, split)
    total = len(files)
    results = score_paths(detector, files.paths, batch_size=batch_size, crop="none",
                          progress=None if progress is None else (lambda done: progress(done, total)))
    paths, sources, y, p, failed = [], [], [], [], []
    for res, label, src in zip(results, files.labels, files.sources):
        if res.p_fake is None:
            failed.append(res.error or res.path)
            continue
        paths.append(Path(res.path).relative_to(root).as_posix())
        sources.append(src)
        y.append(label)
        p.append(res.p_fake)
    name = getattr(detector, "name", "model")
    return Scores(name, split, paths, sources, np.asarray(y, int), np.asarray(p, float), root / split,
                  dict(files.source_kinds)), failed


def cached_scores_status(scores, coverage: float, folder=None) -> str:
    """Whether the cached scores of a model can be shown, or the split must be scored now:

    "missing" (no cached scores), "other dataset" (``coverage``, the share of their files under the dataset root,
    is under a half), "stale" (usable, but the model file is newer: rerun ``make eval``) or "fresh".
    """
    from models.analysis.zoo import is_stale

    if scores is None:
        return "missing"
    if coverage < 0.5:
        return "other dataset"
    return "stale" if is_stale(scores, folder) else "fresh"


def missing_files(rows: Iterable[dict]) -> list[dict]:
    """The rows (of :func:`mistakes`) whose ``path`` is not a file (scored, then moved or deleted)."""
    return [r for r in rows if not Path(r["path"]).is_file()]

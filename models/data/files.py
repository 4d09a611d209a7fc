"""Dataset folders (TensorFlow-free): listing, labels (fake = 1), sources and fingerprints.

A dataset is laid out as ``<root>/{train,val,test}/{real,fake}/`` or a plain ``<dir>/{real,fake}/``.
Sources come from ``manifest.csv`` (in the folder or up to two parents) or ``<source>__`` file names.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CLASSES = ("real", "fake")  # index == label: real = 0, fake = 1
SPLITS = ("train", "val", "test")
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "faces128"

UNKNOWN = "unknown"  # the source or kind of a file nothing names
REALS_ONLY = "reals only"  # the "kind" shown for a source with no fakes (the manifest gives it none)


class DataError(ValueError):
    """The data folder is missing or not laid out as expected."""


@dataclass
class FileList:
    """Image files of one folder, with labels (fake=1) and sources."""

    paths: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # original file names, when a manifest knows them
    # kind of fake of each source's fakes (manifest column ``kind``): per source, never per row, so that a
    # per-kind metric is that kind's fakes against *all* reals (see models.analysis.metrics.metrics_by_kind)
    source_kinds: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def y(self) -> np.ndarray:
        return np.asarray(self.labels, dtype=np.int64)

    def without_sources(self, sources) -> FileList:
        """A copy without the files of ``sources``."""
        drop = set(sources)
        keep = [i for i, s in enumerate(self.sources) if s not in drop]
        columns = ([column[i] for i in keep] for column in (self.paths, self.labels, self.sources, self.names))
        return FileList(*columns, source_kinds=dict(self.source_kinds))


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """The dataset root: ``explicit``, else env ``DEEPFAKE_DATA``, else ``data/`` in the repo."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("DEEPFAKE_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "data"


def class_dir(root: str | os.PathLike, split: str | None = None) -> Path:
    """Resolve the folder holding ``real/`` and ``fake/``: ``root/split`` if given, else ``root``."""
    root = Path(root)
    folder = root / split if split else root
    if not folder.is_dir():
        raise DataError(f"data folder not found: {folder}")
    if not any((folder / c).is_dir() for c in CLASSES):
        hint = ""
        if not split and any((root / s).is_dir() for s in SPLITS):
            hint = f" (it has split folders; pass a split such as {root / 'test'})"
        raise DataError(f"{folder} has no real/ or fake/ subfolder{hint}")
    return folder


def _manifest_path(folder: Path) -> Path | None:
    """``manifest.csv`` in ``folder`` or up to two parents (the shared layout), or None."""
    for candidate in (folder, folder.parent, folder.parent.parent):
        path = candidate / "manifest.csv"
        if path.is_file():
            return path
    return None


def _read_manifest(folder: Path) -> dict[str, dict]:
    """Manifest rows keyed by file name (empty without a manifest)."""
    path = _manifest_path(folder)
    if path is None:
        return {}
    with open(path, newline="") as fh:
        return {Path(row["file"]).name: row for row in csv.DictReader(fh) if row.get("file")}


def kinds_from_rows(rows) -> dict[str, str]:
    """source -> kind of its fakes, from manifest-like rows with ``source`` and ``kind`` (empty kinds skipped)."""
    out: dict[str, str] = {}
    for row in rows:
        source, kind = row.get("source"), (row.get("kind") or "").strip()
        if source and kind:
            out.setdefault(source, kind)
    return out


def source_kinds(root: str | os.PathLike) -> dict[str, str]:
    """source -> kind of its fakes (``swap``, ``gan``...), read from the dataset's ``manifest.csv`` column ``kind``.

    Sources are added over time, so nothing here is hard-coded: a source the manifest does not name has kind
    :data:`UNKNOWN` (see :func:`kind_of`). Empty when there is no manifest.
    """
    path = _manifest_path(Path(root))
    if path is None:
        return {}
    with open(path, newline="") as fh:
        return kinds_from_rows(csv.DictReader(fh))


def kind_of(source: str, kinds: dict[str, str], has_fakes: bool = True) -> str:
    """The kind of ``source``'s fakes; :data:`REALS_ONLY` for a source without fakes and kind, else :data:`UNKNOWN`."""
    return kinds.get(source) or (UNKNOWN if has_fakes else REALS_ONLY)


def source_of(filename: str) -> str:
    """The ``<source>__`` prefix of a file name, or ``"unknown"``."""
    stem = Path(filename).name
    return stem.split("__", 1)[0] if "__" in stem else UNKNOWN


def list_files(root: str | os.PathLike, split: str | None = None) -> FileList:
    """List the images under ``root[/split]/{real,fake}/`` in a stable (sorted) order."""
    folder = class_dir(root, split)
    manifest = _read_manifest(folder)
    out = FileList(source_kinds=kinds_from_rows(manifest.values()))
    for label, cls in enumerate(CLASSES):
        cdir = folder / cls
        if not cdir.is_dir():
            continue
        for path in sorted(cdir.iterdir()):
            if path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
                continue
            row = manifest.get(path.name)
            out.paths.append(str(path))
            out.labels.append(label)
            row = row or {}  # a manifest may lack columns: fall back to the file name
            out.sources.append(row.get("source") or source_of(path.name))
            out.names.append(row.get("original_name") or path.name)
    return out


def fingerprint(root: str | os.PathLike) -> dict:
    """Counts per split, class and source (from ``manifest.csv`` when present, else by walking)."""
    root = Path(root)
    splits = [s for s in SPLITS if (root / s).is_dir()] or [None]
    result: dict = {"root": str(root), "splits": {}}
    for split in splits:
        files = list_files(root, split)
        counts = Counter(zip((CLASSES[y] for y in files.labels), files.sources))
        per_class = Counter(CLASSES[y] for y in files.labels)
        result["splits"][split or "all"] = {
            "n": len(files),
            "per_class": dict(sorted(per_class.items())),
            "per_source": {f"{cls}/{src}": n for (cls, src), n in sorted(counts.items())},
        }
    result["manifest"] = (root / "manifest.csv").is_file()
    return result


def stratified_indices(files: FileList, n: int, seed: int = 0) -> list[int]:
    """Indices of about ``n`` files, drawn with seed ``seed`` from every (source, class) group in proportion to its
    size (at least one from each), sorted: a slice on which a metric tests the model, not the draw."""
    groups: dict[tuple[str, int], list[int]] = {}
    for i, key in enumerate(zip(files.sources, files.labels)):
        groups.setdefault(key, []).append(i)
    rng = np.random.default_rng(seed)
    picked = []
    for key in sorted(groups):
        members = groups[key]
        k = min(len(members), max(1, round(n * len(members) / len(files))))
        picked += [members[j] for j in rng.choice(len(members), size=k, replace=False)]
    return sorted(picked)

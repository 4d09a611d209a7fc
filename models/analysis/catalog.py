"""What the app lists: installed models with their measured metrics, and built-in sample images."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.data.files import CLASSES, DataError, list_files
from models.detectors.registry import ASSETS_DIR, default_model_name, list_models, model_file, read_metadata


def model_rows(assets_dir: Path | None = None) -> list[dict]:
    """One row per installed model: size, parameters and test metrics from its metadata JSON."""
    assets_dir = Path(assets_dir or ASSETS_DIR)
    default = default_model_name()
    rows = []
    for name in list_models(assets_dir):
        path = model_file(assets_dir, name)
        meta = read_metadata(path)
        test = meta.get("metrics", {}).get("test", {})
        overall = test.get("overall", {})
        row = {
            "model": name,
            "default": name == default,
            "test ROC AUC": overall.get("roc_auc"),
            "test accuracy": overall.get("accuracy"),
            "test recall": overall.get("recall"),
            "test n": overall.get("n"),
        }
        for kind, m in test.get("by_kind", {}).items():
            if kind != "real":
                row[f"recall {kind}"] = m.get("recall")
        row.update({
            "input px": meta.get("input_size"),
            "params": meta.get("params"),
            "file KB": round(path.stat().st_size / 1e3, 1),
            "architecture": meta.get("description") or meta.get("architecture", "?"),
        })
        rows.append(row)
    return rows


@dataclass(frozen=True)
class Sample:
    label: str  # what the user sees in the picker
    path: str | None  # a file, or None for a built-in array
    truth: str | None = None  # "real" / "fake" when known
    source: str | None = None


ASTRONAUT = Sample("Astronaut (scikit-image, real photo)", None, truth="real", source="scikit-image")


def load_sample(sample: Sample) -> np.ndarray:
    """The RGB uint8 pixels of a sample."""
    if sample.path is None:
        from skimage import data

        return np.ascontiguousarray(data.astronaut())
    from models.data.intake import load_image

    return load_image(sample.path)


def dataset_samples(root: str | os.PathLike | None, per_source: int = 2, split: str = "test") -> list[Sample]:
    """A few test-split images per (class, source), in a stable order; [] when there is no dataset."""
    if not root:
        return []
    try:
        files = list_files(root, split)
    except DataError:
        return []
    picked: dict[tuple[str, str], int] = {}
    out = []
    for path, y, src in zip(files.paths, files.labels, files.sources):
        key = (CLASSES[y], src)
        if picked.get(key, 0) >= per_source:
            continue
        picked[key] = picked.get(key, 0) + 1
        out.append(Sample(f"{split}/{CLASSES[y]}: {Path(path).name}", path, truth=CLASSES[y], source=src))
    return out


def builtin_samples(root=None) -> list[Sample]:
    return [ASTRONAUT, *dataset_samples(root)]


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def _group_table(title: str, first: str, count: str, names: list[str], groups: dict[str, dict[str, tuple]]) -> list:
    """Markdown rows: one per group, one "value (AUC)" cell per model; tuples are (value, auc, n)."""
    lines = ["", title, "", f"| {first} | {count} | " + " | ".join(f"`{n}`" for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for group, by_model in sorted(groups.items()):
        n = next(iter(by_model.values()))[2]
        cells = [f"{_fmt(by_model[m][0])} ({_fmt(by_model[m][1])})" if m in by_model else "–" for m in names]
        lines.append(f"| {group} | {n} | " + " | ".join(cells) + " |")
    return lines


def markdown_table(assets_dir: Path | None = None, split: str = "test") -> str:
    """README tables of the installed models' metrics on ``split``: overall, per source, per kind of fake."""
    assets_dir = Path(assets_dir or ASSETS_DIR)
    names = list_models(assets_dir)
    lines = ["| model | input | params | accuracy | precision | recall | F1 | ROC AUC |",
             "|---|---|---|---|---|---|---|---|"]
    per_source: dict[str, dict[str, tuple]] = {}
    per_kind: dict[str, dict[str, tuple]] = {}
    for name in names:
        meta = read_metadata(model_file(assets_dir, name))
        m = meta.get("metrics", {}).get(split, {})
        o = m.get("overall", {})
        lines.append(f"| `{name}` | {meta.get('input_size')} px | {meta.get('params', 0):,} | "
                     + " | ".join(_fmt(o.get(k)) for k in ("accuracy", "precision", "recall", "f1", "roc_auc")) + " |")
        for src, sm in m.get("by_source", {}).items():
            per_source.setdefault(src, {})[name] = (sm.get("accuracy"), sm.get("roc_auc"), sm.get("n"))
        for kind, km in m.get("by_kind", {}).items():
            if kind != "real":
                per_kind.setdefault(kind, {})[name] = (km.get("recall"), km.get("roc_auc"), km.get("n_fake"))
    lines += _group_table("Accuracy (ROC AUC) per source:", "source", "n", names, per_source)
    if per_kind:
        lines += _group_table("Per kind of fake: share caught at the model's operating point (ROC AUC of that kind against all "
                              "reals):", "kind", "fakes", names, per_kind)
    return "\n".join(lines)

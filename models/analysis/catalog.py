"""What the app lists: installed models with their measured metrics (in and out of distribution), and built-in
sample images."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.analysis.demo import DEMO_PARTS, astronaut, make_demo
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


def heldout_auc(table: dict, architecture: str) -> dict | None:
    """Mean held-out ROC AUC of the cross-source study's entry for ``architecture`` (a recipe), or None.

    ``table`` is ``crosssource.json`` (:func:`models.analysis.zoo.load_crosssource`): entry name -> {"arch",
    "epochs", "created", "rows": [{"source", "held_out": {"roc_auc"}, ...}]}. The entry named ``architecture``
    wins; else the newest entry whose ``arch`` is ``architecture``. Held-out arms without an AUC are skipped.
    Returns {"entry", "arch", "epochs", "mean_auc", "n_sources", "sources"}.
    """
    matches = [k for k, v in table.items() if k == architecture or v.get("arch") == architecture]
    if not matches:
        return None
    entry = architecture if architecture in matches else max(matches, key=lambda k: table[k].get("created", ""))
    res = table[entry]
    arms = [(r["source"], r["held_out"]["roc_auc"]) for r in res.get("rows", [])
            if r.get("held_out", {}).get("roc_auc") is not None]
    if not arms:
        return None
    return {"entry": entry, "arch": res.get("arch", architecture), "epochs": res.get("epochs"),
            "mean_auc": float(np.mean([auc for _, auc in arms])), "n_sources": len(arms),
            "sources": [src for src, _ in arms], "aucs": dict(arms)}


def score_note(g: dict | None) -> str:
    """One line for result pages: what a P(fake) means for photos unlike the training data, with the held-out
    AUCs of :func:`default_generalisation` (``g``; None: said without numbers)."""
    head = "What a score means: P(fake) is trustworthy only for photos like the training data."
    if not g:
        return head + " For photos unlike it, treat a score as weak evidence."
    arms = "; ".join(f"{src} {auc:.2f}" for src, auc in sorted(g["aucs"].items(), key=lambda kv: kv[1]))
    return (f"{head} In the leave-one-source-out study of the default's recipe (entry `{g['entry']}`), fakes of "
            f"a source held out of training scored ROC AUC {arms} (Models page, Cross-source tab): for photos "
            "unlike the training data, treat a score as weak evidence.")


def default_generalisation(assets_dir: Path | None = None) -> dict | None:
    """The default model's test ROC AUC beside its recipe's mean held-out AUC (:func:`heldout_auc`), or None
    when the default is not installed or the cross-source study has no entry for its architecture.
    Returns {"model", "test_auc", **heldout_auc(...)}."""
    from models.analysis.zoo import load_crosssource

    assets_dir = Path(assets_dir or ASSETS_DIR)
    name = default_model_name()
    if name not in list_models(assets_dir):
        return None
    meta = read_metadata(model_file(assets_dir, name))
    held = heldout_auc(load_crosssource(assets_dir), str(meta.get("architecture", name)))
    if held is None:
        return None
    test_auc = meta.get("metrics", {}).get("test", {}).get("overall", {}).get("roc_auc")
    return {"model": name, "test_auc": test_auc, **held}


def generalisation_sentence(g: dict) -> str:
    """One sentence: in-distribution test AUC, then the mean AUC on sources held out of training."""
    seen = (f"The default, `{g['model']}`, reaches test ROC AUC {g['test_auc']:.3f} on the sources it was "
            f"trained on; on" if g.get("test_auc") is not None else "On")
    budget = f", {g['epochs']} epochs" if g.get("epochs") and g["arch"] != "spectrum" else ""
    verdict = ": near chance" if g["mean_auc"] < 0.6 else ""
    return (f"{seen} sources it never saw in training (leave-one-source-out, {g['n_sources']} sources; "
            f"cross-source study entry `{g['entry']}`{budget}), its recipe averages ROC AUC "
            f"{g['mean_auc']:.3f}{verdict}.")


@dataclass(frozen=True)
class Sample:
    label: str  # what the user sees in the picker
    path: str | None  # a file, or None for a built-in array
    truth: str | None = None  # "real" / "fake" when known
    source: str | None = None
    builtin: str | None = None  # "astronaut" / "demo_fake": made here, no file
    edited: tuple[str, ...] = ()  # the regions known to be edited (the demo fake)


ASTRONAUT = Sample("Astronaut (scikit-image, real photo)", None, truth="real", source="scikit-image",
                   builtin="astronaut")
DEMO_FAKE = Sample(f"Demo fake: the astronaut, {' and '.join(p.replace('_', ' ') for p in DEMO_PARTS)} re-blended "
                   "(made here)", None, truth="fake", source="demo blend, made at run time", builtin="demo_fake",
                   edited=DEMO_PARTS)


def load_sample(sample: Sample) -> np.ndarray:
    """The RGB uint8 pixels of a sample (a writable copy for the built-in ones)."""
    if sample.builtin == "demo_fake":
        return np.array(make_demo().fake)
    if sample.path is None:
        return astronaut()
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
    return [DEMO_FAKE, ASTRONAUT, *dataset_samples(root)]


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

"""What identifies the models and the software of a report: model versions (file sha256, creation date,
threshold, calibration, test ROC AUC), library versions, and the detector for a model name or path."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from explain.report.html import Raw, esc, para, section, table
from models.detectors.provenance import file_sha256, library_versions

LIBRARIES = ("numpy", "tensorflow", "keras", "lime", "scikit-image", "mtcnn", "matplotlib", "streamlit")


def detector_of(model):
    """A Detector for a name, a path, None (the default) or a Detector itself."""
    if model is None or isinstance(model, (str, Path)):
        from models import load_model

        return load_model(model)
    return model


def _dig(d, *keys):
    for k in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(k)
    return d


def model_version(detector) -> dict:
    """What identifies a detector in a report: name, architecture, file, its sha256, creation date, input
    size, threshold (and whether it is a saved operating point), calibration and test ROC AUC (metadata)."""
    meta = getattr(detector, "metadata", None) or {}
    path = getattr(detector, "path", None)
    calibration = meta.get("calibration") if isinstance(meta, Mapping) else None
    auc = _dig(meta, "metrics", "test", "overall", "roc_auc")
    return {
        "name": detector.name,
        "architecture": meta.get("architecture") or type(detector).__name__,
        "file": Path(path).name if path else None,
        "sha256": file_sha256(path) if path else None,
        "created": meta.get("created"),
        "input_size": int(detector.input_size),
        "threshold": float(detector.threshold),
        "operating_point": _dig(meta, "operating_point", "threshold") is not None,
        "calibrated": calibration is not None,
        "calibration": calibration.get("method") if isinstance(calibration, Mapping) else None,
        "test_roc_auc": float(auc) if isinstance(auc, (int, float)) else None,
    }


def versions_table(versions: list[dict]) -> str:
    rows = []
    for v in versions:
        sha = v["sha256"]
        sha_cell = Raw(f'<code title="{esc(sha)}">{esc(sha[:12])}</code>') if sha else "— (not from a file)"
        threshold = f"{v['threshold']:.3f}" + (" (saved operating point)" if v["operating_point"] else " (default)")
        calibrated = f"yes ({v['calibration']})" if v["calibrated"] and v["calibration"] else v["calibrated"]
        rows.append([v["name"], v["architecture"], v["file"], sha_cell, v["created"], f"{v['input_size']} px",
                     threshold, calibrated, v["test_roc_auc"]])
    return table(["model", "architecture", "file", "sha256 (first 12)", "created", "input", "threshold",
                  "calibrated", "test ROC AUC"], rows) + para("sha256 of the model file; hover for all 64 digits.",
                                                              "note")


def footer(timestamp: str) -> str:
    libs = ", ".join(f"{k} {v}" for k, v in library_versions(LIBRARIES).items())
    return section("Provenance", para(f"Generated {timestamp} by Deepfake Lens. Libraries: {libs}.", "meta"),
                   para("A verdict is a signal, not proof: the detectors were trained on a few public sources of "
                        "face crops and miss many manipulations.", "note"))

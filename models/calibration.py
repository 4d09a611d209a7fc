"""Calibrated P(fake) and a saved operating point (numpy + scikit-learn; TensorFlow only to score a model).

A detector's raw sigmoid output is often over- or under-confident. :func:`fit_platt` fits Platt scaling on
the ``val`` split: ``p = sigmoid(a * logit(p_raw) + b)`` with ``a > 0``, so calibration is monotone and
never changes the ranking (ROC AUC) of a model, only what its numbers mean. The fit is stored in the
model's JSON as ``metadata["calibration"]`` and applied by ``Detector.predict`` everywhere (``predict_raw``
gives the uncalibrated output).

The operating point is the threshold verdicts use: ``metadata["operating_point"]["threshold"]`` (default
:data:`models.labels.THRESHOLD`), on the calibrated scale. :func:`threshold_sweep`, :func:`rates_at` and
:func:`threshold_for_recall` help choose it; :func:`save_operating_point` stores it.
:func:`reliability` gives the data of a reliability diagram (plus ECE and Brier score).

CLI: ``python -m models.calibration NAME [NAME ...] | --all [--data ROOT] [--target-recall R]``.
``--unsure [--max-flagged F]`` instead fits only the "unsure" band (``Detector.unsure``) on val and stores it as
``metadata["unsure"]``: the (delta, epsilon) that flags at most F (default 0.10) of the val images while
catching the most val errors (models.analysis.calibration.fit_unsure); the calibration is left as it is.
"""

from __future__ import annotations

import argparse
import sys

from models.analysis.calibration import UNSURE_MAX_FLAGGED, calibrate_model, decode_split, fit_unsure_model
from models.detectors.registry import resolve_model_path


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m models.calibration",
                                description="Fit Platt scaling of P(fake) on the val split and store it in "
                                            "each model's JSON (optionally with an operating point).")
    p.add_argument("models", nargs="*", metavar="NAME", help="model names (in assets/models) or paths")
    p.add_argument("--all", action="store_true", help="every installed model")
    p.add_argument("--data", default=None, help="dataset root with val/{real,fake} (default: $DEEPFAKE_DATA)")
    p.add_argument("--target-recall", type=float, default=None,
                   help="also save the operating point: the highest threshold catching this share of val fakes")
    p.add_argument("--bins", type=int, default=10, help="reliability bins for ECE (default 10)")
    p.add_argument("--unsure", action="store_true",
                   help="fit only the 'unsure' band (delta on the spread over views, epsilon around the threshold) "
                        "on val and store it in the JSON; the calibration is kept")
    p.add_argument("--max-flagged", type=float, default=UNSURE_MAX_FLAGGED,
                   help=f"with --unsure: the largest share of val images flagged unsure (default {UNSURE_MAX_FLAGGED})")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if bool(args.models) == bool(args.all):
            raise ValueError("name the models to calibrate, or pass --all (not both)")
        if args.target_recall is not None and not (0 < args.target_recall <= 1):
            raise ValueError(f"--target-recall must be in (0, 1], not {args.target_recall}")
        from models.data.files import data_root
        from models.detectors.registry import list_models

        names = list_models() if args.all else args.models
        if not names:
            raise ValueError("no installed models")
        paths = [resolve_model_path(name).resolve() for name in names]  # an unknown name fails before any decoding
        root = data_root(args.data)
        if not 0 <= args.max_flagged <= 1:
            raise ValueError(f"--max-flagged must be in [0, 1], not {args.max_flagged}")
        split_data = decode_split(root, "val", progress=True)
        if args.unsure:
            for name, path in zip(names, paths):
                print(_unsure_line(name, fit_unsure_model(path, root, max_flagged=args.max_flagged,
                                                          split_data=split_data)), flush=True)
            return 0
        for name, path in zip(names, paths):
            r = calibrate_model(path, root, target_recall=args.target_recall, bins=args.bins, split_data=split_data)
            line = (f"{name}: a={r['a']:.4f} b={r['b']:+.4f} on {r['n']} val images; "
                    f"ECE {r['ece_before']:.4f} -> {r['ece_after']:.4f}, "
                    f"Brier {r['brier_before']:.4f} -> {r['brier_after']:.4f}")
            if r.get("fallback"):
                line += f" ({r['fallback']})"
            op = r["operating_point"]
            if op is not None:
                line += f"; threshold {op['threshold']:.4f}"
                if op.get("target_recall") is not None:
                    line += f" (val recall >= {op['target_recall']:g})"
            print(line, flush=True)
    except Exception as exc:  # one line, never a traceback
        print(f"error: {type(exc).__name__}: {exc}" if not isinstance(exc, (ValueError, OSError))
              else f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _unsure_line(name: str, b: dict) -> str:
    caught = "no val errors" if b["errors_caught"] is None else f"{b['errors_caught']:.1%} of {b['errors']} val errors caught"
    return (f"{name}: unsure when spread > {b['delta']:g} or |P(fake) - {b['threshold']:.3f}| < {b['epsilon']:g}; "
            f"{b['flagged']:.1%} of {b['n']} val images flagged, {caught}")


if __name__ == "__main__":
    sys.exit(main())

"""Robustness of detectors to re-compression and resampling, on the test split.

For each model: ROC AUC and accuracy clean, at jpeg:Q and at resize:F (see models/data/perturb.py), and each
perturbed AUC as a ratio of the clean one, all in one run.

    DEEPFAKE_DATA=../shared/data/faces128 .venv/bin/python bench/bench_robustness.py [--models a,b]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    from models import load_model
    from models.analysis.evaluate import evaluate
    from models.data.files import data_root

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="detector_v1,tuned_cnn")
    ap.add_argument("--perturb", default="jpeg:90,jpeg:70,jpeg:50,resize:0.75,resize:0.5")
    args = ap.parse_args()

    root = data_root()
    specs = [None, *args.perturb.split(",")]
    print(f"{'model':<14} {'perturbation':<12} {'accuracy':>8} {'ROC AUC':>8} {'AUC ratio':>9}")
    for name in args.models.split(","):
        det = load_model(name)
        clean = None
        for spec in specs:
            r = evaluate(det, str(root), "test", progress=False, perturb=spec)
            clean = clean or r["roc_auc"]
            print(f"{name:<14} {spec or 'clean':<12} {r['accuracy']:8.3f} {r['roc_auc']:8.3f} {r['roc_auc'] / clean:9.3f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

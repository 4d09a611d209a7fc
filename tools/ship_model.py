"""Ship a trained candidate under assets/models: copy the .keras, rename, and re-measure val/test metrics here
(TensorFlow, this machine's preprocessing path) so the shipped JSON describes exactly what the app runs.

    python tools/ship_model.py runs/v1_b.keras detector_v1 --data ../shared/data/faces128 \
        --note "trained on a lent H200 with Keras on JAX; chosen by val AUC among v1_a, v1_b, v1_c"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    from models import load_model
    from models.data.files import list_files
    from models.data.intake import load_image
    from models.detectors.registry import ASSETS_DIR
    from models.training.train import save_weights_only_model, split_metrics

    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("name")
    ap.add_argument("--data", required=True)
    ap.add_argument("--note", default="")
    ap.add_argument("--metrics-only", action="store_true",
                    help="re-measure the metrics of an already shipped model in place (MODEL is its name)")
    args = ap.parse_args()
    if args.metrics_only:
        return remeasure(args.name, args.data)

    src = Path(args.model)
    meta = json.loads(src.with_suffix(".json").read_text())
    dst = ASSETS_DIR / f"{args.name}.keras"
    save_weights_only_model(load_model(src, cache=False).keras_model, dst)
    meta["trained_as"] = meta.get("name")
    meta["name"] = args.name
    if args.note:
        meta["provenance"] = args.note
    det = load_model(dst, cache=False)
    metrics = {}
    for split in ("val", "test"):
        files = list_files(args.data, split)
        p = det.predict([load_image(f) for f in files.paths])
        metrics[split] = split_metrics(files, p)
    meta["metrics_at_training"] = meta.get("metrics")
    meta["metrics"] = metrics
    dst.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    o = metrics["test"]["overall"]
    print(f"shipped {dst}: test accuracy {o['accuracy']:.3f}, ROC AUC {o['roc_auc']:.3f}")
    return 0


def remeasure(name: str, data: str) -> int:
    """Recompute val/test metrics of a shipped model (e.g. after the metric definitions change)."""
    from models import load_model
    from models.data.files import list_files
    from models.data.intake import load_image
    from models.detectors.registry import ASSETS_DIR
    from models.training.train import split_metrics

    path = ASSETS_DIR / f"{name}.json"
    meta = json.loads(path.read_text())
    det = load_model(name, cache=False)
    for split in ("val", "test"):
        files = list_files(data, split)
        meta["metrics"][split] = split_metrics(files, det.predict([load_image(f) for f in files.paths]), det.threshold)
    path.write_text(json.dumps(meta, indent=2) + "\n")
    o = meta["metrics"]["test"]["overall"]
    print(f"re-measured {name}: test accuracy {o['accuracy']:.3f}, ROC AUC {o['roc_auc']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast the Models page gets its numbers: cached per-image scores vs re-running every model on test.

    DEEPFAKE_DATA=../shared/data/faces128 .venv/bin/python bench/bench_models_page.py

Baseline (same process): score the test split with every installed model (decode + predict), then compute
the same metrics. Measured: read ``assets/models/<name>.eval*.csv`` and compute everything the page shows
(summary, per source, per kind, ROC, confusion, threshold sweeps, reliability). Also times the whole page
in Streamlit's AppTest (first run, latency measurement off and on).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def page_numbers(names, scores_of):
    from models.analysis import zoo
    from models.analysis.calibration import reliability, threshold_sweep

    test = {n: scores_of(n, "test") for n in names}
    val = {n: scores_of(n, "val") for n in names}
    thresholds = {n: 0.5 for n in names}
    zoo.summary_rows()
    zoo.source_rows(test, thresholds)
    zoo.kind_rows(test, thresholds)
    zoo.roc_data(test)
    for n in names:
        zoo.confusion(test[n], thresholds[n])
        threshold_sweep(val[n].y, val[n].p)
        threshold_sweep(test[n].y, test[n].p)
        reliability(test[n].y, test[n].p)


def main() -> int:
    from models import list_models, load_model, zoo
    from models.data.files import data_root, list_files
    from models.data.intake import load_image

    root = data_root()
    names = list_models()
    t0 = time.perf_counter()
    page_numbers(names, lambda n, split: zoo.load_scores(n, split))
    cached = time.perf_counter() - t0

    t0 = time.perf_counter()
    split_files = {s: list_files(root, s) for s in ("val", "test")}
    images = {s: [load_image(p) for p in f.paths] for s, f in split_files.items()}
    fresh = {}
    for n in names:
        det = load_model(n)
        for s, f in split_files.items():
            fresh[(n, s)] = zoo.Scores(n, s, f.paths, f.sources, f.y, det.predict(images[s]), None)
    page_numbers(names, lambda n, split: fresh[(n, split)])
    recompute = time.perf_counter() - t0

    print(f"models: {', '.join(names)}; val + test = {sum(len(f) for f in split_files.values())} images")
    print(f"re-running every model, then the page's numbers: {recompute:7.2f} s")
    print(f"from the cached scores (make eval):             {cached:7.2f} s   speed-up {recompute / cached:.0f}x")

    from streamlit.testing.v1 import AppTest

    repo = Path(__file__).resolve().parent.parent
    for latency in (False, True):
        at = AppTest.from_file(str(repo / "streamlit_app.py"), default_timeout=300)
        at.run()
        at.session_state["models_latency"] = latency
        t0 = time.perf_counter()
        at.switch_page("pages/models.py").run()
        took = time.perf_counter() - t0
        assert not at.exception, at.exception
        print(f"Models page, first run in AppTest, latency measurement {'on ' if latency else 'off'}: {took:5.2f} s")
        t0 = time.perf_counter()
        at.run()
        print(f"Models page, next run (figures and latency cached):             {time.perf_counter() - t0:5.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The demo pair (issue 14): what the models say about the astronaut and the fake made from her at run time.

For each model: its reading of the real photo and of the demo fake (P(fake), spread over views, verdict with the
"unsure" rule), how many of 16 demo fakes made with other seeds it calls fake (confidently, unsure, or real), and
whether the real photo's verdict agrees across five encodings (PNG, BMP, JPEG q92, WebP q80, CMYK JPEG). The first
model is the baseline: each other model's catch rate is printed as a ratio of it (same run, same fakes).

    .venv/bin/python bench/bench_demo.py [--models detector_v1,detector_v2] [--seeds 16]
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
    from models.analysis import demo

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="detector_v1,detector_v2")
    ap.add_argument("--seeds", type=int, default=16)
    args = ap.parse_args()
    pair = demo.make_demo()
    print(f"demo fake: {pair.edited} re-blended, seed {pair.seed}; {int((pair.mask > 0).sum())} pixels may differ")
    print(f"{'model':<13} {'real photo':<32} {'demo fake':<32} {'caught':>8} {'fake/unsure/real':>17}  encodings")
    baseline = None
    for name in args.models.split(","):
        det = load_model(name)
        real, fake = demo.read(det, pair.real), demo.read(det, pair.fake)
        t = demo.typicality(det, seeds=range(args.seeds))
        enc = demo.encodings_agree(det, pair.real)
        baseline = baseline if baseline is not None else max(t["caught"], 1e-9)

        def cell(r) -> str:
            return f"{r.p_fake:.3f} ±{r.spread:.2f} {r.label}"

        print(f"{name:<13} {cell(real):<32} {cell(fake):<32} {t['caught']:8.1%} "
              f"{t['fake']:>5}/{t['unsure']}/{t['real']:<5}     spread {enc['spread']:.3f}, "
              f"{'agree' if enc['agree'] else 'disagree'}; catch ratio to {args.models.split(',')[0]}: "
              f"{t['caught'] / baseline:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

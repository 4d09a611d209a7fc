"""``python -m explain.shapley_cache [--models detector_v1,detector_v2] [--data DIR] [--split val,test] [--out DIR]``

Caches exact region Shapley values (toward fake) for every image of a labelled split, per model, as
``<out>/<name>.shapley-<split>.csv`` (default out: assets/models; see :mod:`explain.aggregate`): what the Error
analysis page aggregates over a model's false positives and false negatives. ``make eval`` runs it.

An existing cache newer than its model file is resumed: rows already there (same fill) are kept and only the
missing images are computed; progress is saved every 200 images. Exit status 0, or 2 on bad input (one line).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

CHECKPOINT = 200


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m explain.shapley_cache", description=__doc__.split("\n")[2])
    from explain.aggregate import CACHED_MODELS

    p.add_argument("--models", default=",".join(CACHED_MODELS), help="comma-separated model names (default "
                   f"{','.join(CACHED_MODELS)})")
    p.add_argument("--data", default=None, help="dataset root with {val,test}/{real,fake}/ (default $DEEPFAKE_DATA)")
    p.add_argument("--split", default="val,test", help="comma-separated splits (default val,test)")
    p.add_argument("--out", default=None, help="folder for the CSVs (default assets/models)")
    p.add_argument("--fill", default="blur", choices=("blur", "mean"), help="what a removed region becomes")
    p.add_argument("--limit", type=int, default=None, help="only the first N images of each split (a quick check)")
    p.add_argument("--no-resume", action="store_true", help="recompute every row")
    return p.parse_args(argv)


def cache_split(detector, root: Path, split: str, out: Path, *, fill: str, limit: int | None, resume: bool) -> dict:
    """Compute (or complete) one model's cache on one split; returns counts and seconds."""
    from tqdm.auto import tqdm

    from explain import aggregate
    from models.data.files import list_files

    keys = [Path(p).relative_to(root).as_posix() for p in list_files(root, split).paths][:limit]
    old = {}
    if resume and out.is_file() and not aggregate.is_stale(detector.name, split, out.parent):
        old = {r.path: r for r in aggregate.read_csv(out) if r.fill == fill and r.p_fake is not None}
    todo = [k for k in keys if k not in old]
    bar = tqdm(total=len(todo), desc=f"{detector.name} {split} Shapley", unit="img")
    start, new = time.perf_counter(), {}
    for row in aggregate.compute_files(detector, root, todo, fill=fill):
        new[row.path] = row
        bar.update(1)
        if len(new) % CHECKPOINT == 0:
            aggregate.write_csv([{**old, **new}[k] for k in keys if k in old or k in new], out)
    bar.close()
    rows = [{**old, **new}[k] for k in keys]
    aggregate.write_csv(rows, out)
    seconds = time.perf_counter() - start
    return {"model": detector.name, "split": split, "n": len(rows), "computed": len(new), "reused": len(old),
            "no_face": sum(not r.face for r in rows), "seconds": round(seconds, 1),
            "per_image_s": round(seconds / len(new), 3) if new else None, "out": str(out)}


def main(argv=None) -> int:
    args = parse_args(argv)
    from explain import aggregate
    from models import load_model
    from models.data.files import DataError, data_root
    from models.detectors.registry import ModelNotFoundError

    root = data_root(args.data)
    try:
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            detector = load_model(name)
            for split in [s.strip() for s in args.split.split(",") if s.strip()]:
                out = aggregate.cache_path(detector.name, split, args.out)
                r = cache_split(detector, root, split, out, fill=args.fill, limit=args.limit,
                                resume=not args.no_resume)
                print(f"{r['model']} {r['split']}: {r['n']} rows ({r['computed']} computed, {r['reused']} kept, "
                      f"{r['no_face']} without landmarks) in {r['seconds']} s"
                      + (f" ({r['per_image_s']} s/image)" if r["per_image_s"] is not None else "") + " "
                      f"-> {r['out']}", flush=True)
    except (DataError, ModelNotFoundError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

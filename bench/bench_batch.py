"""Batch scoring throughput: the batch path (files -> decode -> intake -> predict, ``--crop none``) vs the pure
forward pass of the same model on pre-decoded arrays, in one process; plus face detection per full photo.

1. ``--n`` dataset crops (default 2,000, drawn from all splits with seed 0) scored by
   ``models.scoring.batch.score_items(iter_inputs(paths), crop="none")``: reading, decoding, intake checks,
   preprocessing and prediction all counted. Baseline: ``Detector.predict`` on the same images, already
   decoded (and, below it, the bare forward pass on already preprocessed floats). Best of ``--reps``.
2. Face detection (mtcnn + recipe crop, ``models.scoring.stream.analyse(image, "auto")``) per synthetic full photo:
   skimage's astronaut at 512 px, upscaled and padded into larger canvases (no dataset image is used).
   Median of ``--face-reps`` after a warm-up; then the same photos through the batch path (crop auto).

``--engine ray`` (issue 16) measures instead the two CSV engines on the same ``--n`` crops in one run: the local
one (``score_items`` -> ``write_csv``, what ``python -m models.predict --crop none --csv`` runs) against Ray Data
(``models.scoring.distributed.score_csv_ray`` on a local Ray with this machine's cores): wall time of each, the
throughput ratio, Ray's start-up, and peak memory: for Ray the driver plus every process it started (GCS, raylet,
workers), for the local engine the process alone (Ray stays up between the interleaved runs); summed RSS and PSS,
sampled every 0.5 s from /proc. Best of ``--reps`` per engine, interleaved. The CSVs must agree to 1e-5 (asserted).

Usage: DEEPFAKE_DATA=../shared/data/faces128 python bench/bench_batch.py [--model M] [--n 2000] [--engine ray]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from proctree import children_map


def dataset_paths(n: int, seed: int = 0) -> list[str]:
    from models.data.files import data_root, list_files

    root = data_root()
    paths = [p for split in ("train", "val", "test") for p in list_files(root, split).paths]
    idx = np.random.default_rng(seed).choice(len(paths), size=min(n, len(paths)), replace=False)
    return [paths[i] for i in sorted(idx)]


def full_photos() -> dict[str, np.ndarray]:
    """Synthetic full photos from skimage's astronaut (one face): as is, upscaled, and padded into big canvases."""
    from PIL import Image
    from skimage import data

    astro = data.astronaut()  # 512 x 512

    def up(img, factor):
        return np.asarray(Image.fromarray(img).resize((int(img.shape[1] * factor), int(img.shape[0] * factor)),
                                                      Image.LANCZOS))

    def pad(img, width, height, x, y):
        canvas = np.full((height, width, 3), 120, np.uint8)
        canvas[y : y + img.shape[0], x : x + img.shape[1]] = img
        return canvas

    return {
        "astronaut 512x512": astro,
        "upscaled 1024x1024": up(astro, 2),
        "padded 1600x1200 (face 512 px)": pad(astro, 1600, 1200, 900, 300),
        "upscaled+padded 4000x3000 (12 MP)": pad(up(astro, 3), 4000, 3000, 1800, 600),
    }


def jpeg(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def tree_memory(root: int, tree: bool = True) -> tuple[int, int, int]:
    """(summed RSS, summed PSS, process count) in bytes of ``root`` and all its descendants (``tree`` False: of
    ``root`` alone), from /proc."""
    children = children_map()
    todo, rss, pss, n = [root], 0, 0, 0
    while todo:
        pid = todo.pop()
        todo += children.get(pid, []) if tree else []
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line and not line[0].isdigit())
            rss += int(fields["Rss"].split()[0]) * 1024
            pss += int(fields["Pss"].split()[0]) * 1024
            n += 1
        except (OSError, KeyError, ValueError):
            continue
    return rss, pss, n


class PeakMemory:
    """Samples :func:`tree_memory` of this process every ``interval`` s in a thread; ``peak`` (rss, pss, procs)."""

    def __init__(self, interval: float = 0.2, tree: bool = True):
        self.interval, self.tree, self.peak = interval, tree, (0, 0, 0)

    def __enter__(self):
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            now = tree_memory(os.getpid(), self.tree)
            self.peak = tuple(max(a, b) for a, b in zip(self.peak, now))
            self._stop.wait(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()


def csv_rows(path) -> list[dict]:
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def compare_engines(args) -> int:
    """Local CSV engine vs Ray Data on the same crops, one run, interleaved (see the module doc)."""
    import tempfile

    import ray

    from models import load_model
    from models.scoring.archive import iter_inputs
    from models.scoring.batch import score_items, write_csv
    from models.scoring.distributed import connect, score_csv_ray

    det = load_model(args.model)
    paths = dataset_paths(args.n)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    print(f"model {det.name}, {len(paths)} dataset crops, crop none, batch {args.batch_size}, {args.workers} decode "
          f"workers, {args.actors} Ray actor(s), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

    def local(out, todo=paths):
        write_csv(score_items(det, iter_inputs(todo), crop="none", batch_size=args.batch_size, workers=args.workers),
                  out)

    def on_ray(out, todo=paths):
        score_csv_ray(args.model, todo, out, actors=args.actors, workers=args.workers, crop="none",
                      batch_size=args.batch_size)

    local(tmp / "warm.csv", paths[:128])  # warm-ups: graph tracing, file cache; Ray's worker processes
    t = time.perf_counter()
    connect(None)
    start = time.perf_counter() - t
    t = time.perf_counter()
    on_ray(tmp / "warm.csv", paths[:128])
    first = time.perf_counter() - t
    seconds = {"local": [], "ray": []}
    peaks = {"local": PeakMemory(0.5, tree=False), "ray": PeakMemory(0.5)}  # local: the process; ray: + its tree
    for _ in range(args.reps):  # interleaved, so load from other processes hits both engines alike
        for name, run in (("local", local), ("ray", on_ray)):
            with peaks[name]:
                t = time.perf_counter()
                run(tmp / f"{name}.csv")
                seconds[name].append(time.perf_counter() - t)
    ray.shutdown()
    want, got = csv_rows(tmp / "local.csv"), csv_rows(tmp / "ray.csv")
    assert [r["path"] for r in want] == [r["path"] for r in got]
    assert all(abs(float(a["p_fake"]) - float(b["p_fake"])) <= 1e-5 for a, b in zip(want, got)), "engines disagree"
    print(f"Ray start-up (local Ray, {os.cpu_count()} CPUs): {start:.1f} s; first Ray run on 128 crops (workers "
          f"start, actor loads the model): {first:.1f} s; load average now {os.getloadavg()[0]:.1f}")
    base = len(paths) / min(seconds["local"])
    for name in ("local", "ray"):
        rate = len(paths) / min(seconds[name])
        rss, pss, procs = peaks[name].peak
        runs = ", ".join(f"{s:.1f}" for s in seconds[name])
        print(f"{name:6s} best {min(seconds[name]):6.1f} s of [{runs}]  {rate:6.1f} img/s  ratio {rate / base:4.2f}  "
              f"peak RSS {rss / 1e6:6.0f} MB (PSS {pss / 1e6:5.0f} MB) over {procs} processes")
    return 0


def main() -> int:
    from models import load_model
    from models.data.intake import load_image
    from models.scoring.archive import Item, iter_inputs
    from models.scoring.batch import score_items
    from models.scoring.stream import analyse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="default: the shipped default model")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3, help="timed runs (--engine ray: per engine, interleaved)")
    ap.add_argument("--face-reps", type=int, default=5)
    ap.add_argument("--skip-faces", action="store_true")
    ap.add_argument("--engine", choices=("local", "ray"), default="local",
                    help="ray: compare the local CSV engine with Ray Data on the same crops (issue 16)")
    ap.add_argument("--actors", type=int, default=1, help="--engine ray: scoring actors")
    args = ap.parse_args()
    if args.engine == "ray":
        return compare_engines(args)

    det = load_model(args.model)
    paths = dataset_paths(args.n)
    images = [load_image(p) for p in paths]  # the baseline's pre-decoded arrays (not timed)
    x = det.preprocess(images) if hasattr(det, "predict_batch_raw") else None
    print(f"model {det.name} ({det.input_size} px), {len(paths)} dataset crops, batch {args.batch_size}, "
          f"{args.workers} workers, {os.cpu_count()} CPUs")

    def forward():
        return det.predict(images)

    def raw_forward():
        return np.concatenate([det.predict_batch_raw(x[s : s + 256]) for s in range(0, len(x), 256)])

    def batch_path():
        return [r.p_fake for r in score_items(det, iter_inputs(paths), crop="none", batch_size=args.batch_size,
                                              workers=args.workers)]

    forward()
    p_batch = batch_path()  # warm-ups (graph tracing, file cache)
    p_forward = forward()
    assert np.allclose(p_batch, p_forward, atol=1e-5), "batch path and Detector.predict disagree"
    timings = {"forward": [], "raw": [], "batch": []}
    for _ in range(args.reps):  # interleaved, so load from other processes hits both sides alike
        for key, fn in (("forward", forward), ("raw", raw_forward), ("batch", batch_path)):
            if key == "raw" and x is None:
                continue
            t = time.perf_counter()
            fn()
            timings[key].append(time.perf_counter() - t)
    rate = {k: len(paths) / min(v) for k, v in timings.items() if v}
    if "raw" in rate:
        print(f"bare forward pass, preprocessed floats:  {rate['raw']:8.1f} img/s")
    print(f"Detector.predict, pre-decoded arrays:    {rate['forward']:8.1f} img/s")
    print(f"batch path (read+decode+intake+predict): {rate['batch']:8.1f} img/s")
    print(f"ratio batch / Detector.predict: {rate['batch'] / rate['forward']:.2f} (target >= 0.50)")

    if args.skip_faces:
        return 0
    photos = full_photos()
    analyse(photos["astronaut 512x512"], "auto")  # warm-up: builds mtcnn
    print("\nface detection + crop per full photo (analyse(image, 'auto'), median of "
          f"{args.face_reps}):")
    for name, img in photos.items():
        times = []
        for _ in range(args.face_reps):
            t = time.perf_counter()
            crops, kind, _w = analyse(img, "auto")
            times.append(time.perf_counter() - t)
        decode = []
        data = jpeg(img)
        for _ in range(args.face_reps):
            t = time.perf_counter()
            load_image(data, name=name)
            decode.append(time.perf_counter() - t)
        print(f"  {name:36s} faces {len(crops)} ({kind}): detect+crop {1000 * statistics.median(times):7.1f} ms, "
              f"JPEG decode {1000 * statistics.median(decode):6.1f} ms")
    items = [Item(f"{name}.jpg", data=jpeg(img)) for name, img in photos.items() for _ in range(5)]
    t = time.perf_counter()
    rows = list(score_items(det, items, crop="auto", batch_size=args.batch_size, workers=args.workers))
    dt = time.perf_counter() - t
    print(f"batch path, crop auto, {len(items)} full photos ({len(rows)} faces): {len(items) / dt:.1f} photos/s, "
          f"{1000 * dt / len(items):.0f} ms/photo")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Ray Data batch engine (models.scoring.distributed) against the local one (python -m models.predict --csv), on a
local Ray started once for the module (2 CPUs, a small object store, no dashboard). Three tests, to keep CI time
in check: identical CSVs on good, bad and zipped inputs (and a clip); a valid partial CSV after Ctrl-C or a stop;
``workers`` decode tasks really running at once."""

from __future__ import annotations

import csv
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip("ray")

from models.scoring.batch import CSV_COLUMNS  # noqa: E402
from models.scoring.distributed import score_csv_ray  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def local_ray():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ray.init(num_cpus=2, object_store_memory=200 * 1024**2, include_dashboard=False, log_to_driver=False,
             logging_level="WARNING", runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}})
    # this module's helpers (the clip scorer, the probe) travel by value: Ray's workers cannot import a test module
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A folder (a real face, tiny crops, a broken file, a clip) and a zip (crops, a broken member), plus the local
    engine's CSV of both (the reference)."""
    from skimage.data import astronaut

    from models.predict import main
    from models.video import synth

    root = tmp_path_factory.mktemp("ray-inputs")
    folder = root / "photos"
    folder.mkdir()
    Image.fromarray(astronaut()[0:300, 100:400]).save(folder / "astronaut.jpg", quality=92)
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (48 + 8 * i, 48, 3), dtype=np.uint8)).save(folder / f"crop{i}.png")
    (folder / "broken.jpg").write_bytes(b"not an image at all")
    synth.make_clip(folder / "clip.mp4", seconds=1.0, fps=4, size=(128, 128))
    pack = root / "pack.zip"
    with zipfile.ZipFile(pack, "w") as zf:
        zf.write(folder / "crop0.png", "inner/a.png")
        zf.write(folder / "astronaut.jpg", "inner/face.jpg")
        zf.writestr("inner/bad.png", b"\x89PNG broken")
    local, here = root / "local.csv", os.getcwd()
    os.chdir(root)  # relative inputs, as typed on a command line: Ray's workers do not share the driver's cwd
    try:
        assert main(["--csv", str(local), "--no-progress", "--frames", "4", "--batch-size", "4", "photos",
                     "pack.zip"]) == 2  # error rows -> exit 2
    finally:
        os.chdir(here)
    return root, ["photos", "pack.zip"], read(local)


def read(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        rows = list(reader)
    assert all(None not in r and None not in r.values() for r in rows)  # no short or long (half-written) row
    return rows


def same_rows(got: list[dict], want: list[dict]) -> None:
    assert [r["path"] for r in got] == [r["path"] for r in want]
    for g, w in zip(got, want):
        for key in ("p_fake", "spread"):
            assert (g[key] == "") == (w[key] == ""), (g["path"], key)
            if g[key]:
                assert abs(float(g[key]) - float(w[key])) <= 1e-5, (g["path"], key, g[key], w[key])
        rest = [k for k in CSV_COLUMNS if k not in ("p_fake", "spread")]
        assert {k: g[k] for k in rest} == {k: w[k] for k in rest}


def clip_rows(detector, item):
    from models.video.score import score_video

    return score_video(detector, item, frames=4, name=item.name).rows(detector.name)


def test_ray_and_local_engines_write_the_same_csv(local_ray, inputs, tmp_path, monkeypatch):
    from models.video.inputs import is_video_item

    root, paths, want = inputs
    monkeypatch.chdir(root)
    out = tmp_path / "ray.csv"
    notes = []
    summary = score_csv_ray(None, paths, out, workers=2, batch_size=4, on_note=notes.append,
                            is_clip=is_video_item, clip_rows=clip_rows)
    got = read(out)
    same_rows(got, want)
    errors = {r["path"] for r in got if r["error"]}
    assert errors == {"photos/broken.jpg", "pack.zip!inner/bad.png"}
    assert any(r["crop"] == "face" and r["path"].endswith("astronaut.jpg") for r in got)  # a real face was found
    assert any("#t=" in r["path"] for r in got)  # the clip's (track, frame) rows
    assert summary["errors"] == 2 and summary["images"] == 11  # 8 files (the clip is one) + 3 members

    # without a clip scorer a clip is one clear error row, and the rest is unchanged
    score_csv_ray(None, paths, out, workers=2, batch_size=4)
    plain = read(out)
    clip = [r for r in plain if r["path"].endswith("clip.mp4")]
    assert len(clip) == 1 and "not supported with --engine ray" in clip[0]["error"]
    same_rows([r for r in plain if r is not clip[0]], [r for r in want if "clip.mp4" not in r["path"]])


def test_cancelling_leaves_a_valid_partial_csv(local_ray, inputs, tmp_path, monkeypatch):
    root, paths, want = inputs
    monkeypatch.chdir(root)
    want = [r for r in want if "clip.mp4" not in r["path"]]
    out = tmp_path / "interrupted.csv"

    def ctrl_c(_done):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_csv_ray(None, paths, out, workers=2, batch_size=2, progress=ctrl_c)
    partial = read(out)  # header + complete rows only
    assert 0 < len(partial) < len(want)
    same_rows(partial, want[: len(partial)])

    calls = []
    summary = score_csv_ray(None, paths, out, workers=2, batch_size=2, should_stop=lambda: calls.append(1) or True)
    stopped = read(out)
    assert len(calls) == 1 and 0 < len(stopped) < len(want) and summary["images"] == len(stopped)
    same_rows(stopped, want[: len(stopped)])


def probe(folder: str):
    """A transform that records how many decodes run at once: the first one waits for a second to start (up to
    60 s: a second Ray worker process may still be starting on a loaded machine; no time is asserted)."""

    def transform(image):
        import time
        import uuid

        me = os.path.join(folder, f"run-{uuid.uuid4().hex}")
        open(me, "w").close()
        deadline = time.monotonic() + 60
        while True:
            running = sum(n.startswith("run-") for n in os.listdir(folder))
            with open(os.path.join(folder, "seen"), "a") as fh:
                fh.write(f"{running}\n")
            if running >= 2 or os.path.exists(os.path.join(folder, "waited")) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        open(os.path.join(folder, "waited"), "w").close()
        os.remove(me)
        return image

    return transform


def test_workers_decode_tasks_run_at_once(local_ray, inputs, tmp_path):
    """--workers 2: two decode tasks run at the same time (Ray Data's per-operator reservation once let only one run
    on a 2-CPU Ray), and never more."""
    workers = 2
    photos = sorted((inputs[0] / "photos").glob("crop*.png"))
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    summary = score_csv_ray(None, [str(p) for p in photos], tmp_path / "out.csv", workers=workers, batch_size=2,
                            crop="none", transform=probe(str(probe_dir)))
    assert summary["rows_scored"] == len(photos)
    seen = [int(n) for n in (probe_dir / "seen").read_text().split()]
    assert max(seen) == workers  # reached, and never exceeded

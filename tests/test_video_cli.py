"""``python -m models.predict`` on clips (issue 15): --json gives one object per clip with kind "video" and its
tracks; --csv one row per (track, sampled frame) with the usual header; a zip holding a clip is scored; a bad
clip is one error and the rest goes on. Both subprocesses start together (each imports TensorFlow)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from models.scoring.batch import CSV_COLUMNS
from models.video import synth

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("video_cli")
    clip = synth.make_clip(d / "clip.mp4", seconds=1.5, fps=8, size=(192, 192))
    (d / "renamed.mp4").write_text("just text\n")
    with zipfile.ZipFile(d / "pack.zip", "w") as zf:
        zf.write(clip, "in/c.mp4")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    invocations = {
        "json": ["--json", "--frames", "6", "clip.mp4", "renamed.mp4"],
        "csv": ["--csv", "-", "--fps", "4", "--no-progress", "pack.zip", "clip.mp4"],
    }
    procs = {key: subprocess.Popen([sys.executable, "-m", "models.predict", *args], cwd=d, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for key, args in invocations.items()}
    out = {}
    for key, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        out[key] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return out


def test_json_prints_one_video_object_per_clip(runs):
    r = runs["json"]
    assert r.returncode == 2  # one input failed
    clip, bad = (json.loads(line) for line in r.stdout.splitlines())
    assert clip["path"] == "clip.mp4" and clip["kind"] == "video" and "error" not in clip
    assert {"path", "verdict", "p_fake", "kind", "duration_s", "fps", "frames_sampled", "tracks"} <= set(clip)
    assert clip["verdict"] in ("fake", "real", "unsure") and clip["frames_sampled"] == 6
    assert clip["duration_s"] == pytest.approx(1.5) and clip["fps"] == pytest.approx(8.0)
    (track,) = clip["tracks"]
    assert {"track", "p_fake", "spread", "frames"} <= set(track) and len(track["frames"]) == 6
    assert max(t["p_fake"] for t in clip["tracks"]) == clip["p_fake"]
    assert {"time_s", "box", "p_fake"} == set(track["frames"][0])
    assert bad["path"] == "renamed.mp4" and bad["kind"] == "video" and "not a video file" in bad["error"]
    assert "Traceback" not in r.stderr


def test_csv_has_one_row_per_track_and_frame_with_media_fragment_paths(runs):
    r = runs["csv"]
    assert r.returncode == 0, r.stderr
    reader = csv.DictReader(io.StringIO(r.stdout))
    assert tuple(reader.fieldnames) == CSV_COLUMNS
    rows = list(reader)
    zipped = [row for row in rows if row["path"].startswith("pack.zip!in/c.mp4#t=")]
    plain = [row for row in rows if row["path"].startswith("clip.mp4#t=")]
    assert len(zipped) == len(plain) == 6 and len(rows) == 12  # 1.5 s at --fps 4: 0, 0.25, ..., 1.25
    assert [row["path"] for row in plain] == [f"clip.mp4#t={t:.3f}" for t in (0, 0.25, 0.5, 0.75, 1.0, 1.25)]
    assert {row["face"] for row in rows} == {"1"} and {row["crop"] for row in rows} == {"face"}
    assert all(row["error"] == "" and 0 <= float(row["p_fake"]) <= 1 and row["unsure"] in ("true", "false")
               for row in rows)
    assert "2 images" in r.stderr  # two inputs (clips), however many rows

"""Score a clip: sample frames (models.video.decode), find and crop faces with the one image path
(models.scoring.stream.analyse, the detector's crop recipe), score each crop with ``detector.predict`` (so a
frame's P(fake) equals ``predict`` on that crop taken as a still), link faces into tracks (models.video.tracks)
and give the clip a verdict: "fake" if any track is confidently fake, "real" if every track is confidently real,
"no face" when there is no track, otherwise "unsure".

Callbacks: ``progress(fraction, text)`` after each sampled frame (fraction in [0, 1]); ``cancel()`` is checked
before each sampled frame, and True ends the work early with what was scored so far (``VideoResult.cancelled``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from models.data.faces import MAX_SIDE as FACES_MAX_SIDE
from models.data.faces import NoFaceError
from models.data.intake import ImageLoadError
from models.detectors.labels import THRESHOLD
from models.scoring.batch import Row
from models.scoring.stream import analyse
from models.video.decode import LIMITS, Limits, decode_at, open_video, sample_pts
from models.video.tracks import MIN_FRAMES, Sighting, Track, build_tracks, clip_verdict

FRAMES = 32  # sampled frames per clip by default
# mtcnn runs on a copy of each frame at most this long: the photos' own setting (models.data.faces.MAX_SIDE), so a
# frame saved as a still gets the same boxes, crops and P(fake); 32 frames of 1080p take ~6 s (docs/BENCHMARKS.md)
MAX_SIDE = FACES_MAX_SIDE
CHUNK = 16  # sampled frames whose crops are scored in one predict call
NO_FACE_WARNING = "no face found in any sampled frame"


@dataclass
class VideoResult:
    """One clip scored, or why it could not be.

    ``verdict``: "fake", "real", "unsure" or "no face" (None on error); ``p_fake``: the highest track P(fake)
    (None without a track); ``duration_s``, ``fps`` (frames / duration), ``frames_sampled`` (frames decoded
    and searched for faces); ``width`` x ``height`` upright (after ``rotation``, degrees counter-clockwise);
    ``tracks`` (models.video.tracks.Track, numbered from 1); ``warnings`` (one line each: no face, variable
    frame rate, truncated file, short tracks ignored, cancelled); ``error`` one line (``detail``: technical);
    ``timings``: seconds spent decoding, finding faces and scoring (not in :meth:`to_dict`)."""

    path: str
    verdict: str | None = None
    p_fake: float | None = None
    error: str | None = None
    detail: str = ""
    threshold: float = THRESHOLD
    duration_s: float | None = None
    fps: float | None = None
    frames_sampled: int = 0
    width: int | None = None
    height: int | None = None
    rotation: int = 0
    container: str | None = None
    tracks: list[Track] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cancelled: bool = False
    timings: dict = field(default_factory=dict)
    kind: str = "video"

    @property
    def unsure(self) -> bool | None:
        return None if self.verdict is None else self.verdict == "unsure"

    def to_dict(self) -> dict:
        """The ``predict --json`` object: path, kind, verdict, p_fake, threshold, unsure, duration_s, fps,
        frames_sampled, width, height, rotation, tracks [{track, p_fake, spread, verdict, unsure, frames:
        [{time_s, box, p_fake}]}], plus warnings and error when there are any."""
        d = {"path": self.path, "kind": self.kind, "verdict": self.verdict, "p_fake": self.p_fake,
             "threshold": self.threshold, "unsure": self.unsure,
             "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
             "fps": None if self.fps is None else round(self.fps, 3), "frames_sampled": self.frames_sampled,
             "width": self.width, "height": self.height, "rotation": self.rotation,
             "tracks": [t.to_dict() for t in self.tracks]}
        if self.warnings:
            d["warnings"] = list(self.warnings)
        if self.cancelled:
            d["cancelled"] = True
        if self.error is not None:
            d["error"] = self.error
        return d

    def timeline(self) -> list[dict]:
        """One dict per (track, sampled frame), in time order: ``track``, ``time_s``, ``p_fake`` (for a chart of
        P(fake) over time per track)."""
        points = [{"track": t.track, "time_s": s.time_s, "p_fake": s.p_fake} for t in self.tracks for s in t.frames]
        return sorted(points, key=lambda d: (d["time_s"], d["track"]))

    def top_frames(self, n: int = 6) -> list[tuple[Track, Sighting]]:
        """The ``n`` most suspicious faces: (track, sighting) pairs by P(fake), highest first (ties: earlier)."""
        pairs = [(t, s) for t in self.tracks for s in t.frames]
        return sorted(pairs, key=lambda ts: (-ts[1].p_fake, ts[1].time_s, ts[0].track))[: max(0, int(n))]

    def rows(self, model: str = "") -> list[Row]:
        """CSV rows (models.scoring.batch.Row): one per (track, sampled frame), path ``clip.mp4#t=12.400``,
        ``face`` the track number, P(fake) and verdict the frame's, ``unsure``/``spread`` the track's (spread
        across frames); ``clip`` and ``time_s`` set. No track: one row with verdict "no face"; an error: one
        error row."""
        if self.error is not None:
            return [Row(self.path, model=model, error=self.error, clip=self.path)]
        if not self.tracks:
            return [Row(self.path, verdict="no face", model=model, warnings=list(self.warnings), clip=self.path)]
        rows = []
        for track in self.tracks:
            for s in track.frames:
                x, y, w, h = (int(v) for v in s.box)
                label = "fake" if s.p_fake >= self.threshold else "real"
                rows.append(Row(fragment(self.path, s.time_s), track.track, x, y, w, h, "face", float(s.p_fake),
                                label, model, unsure=track.unsure, spread=round(float(track.spread), 6),
                                confidence=s.confidence, clip=self.path, time_s=s.time_s))
        rows[0].warnings = list(self.warnings)
        return rows


def fragment(path: str, time_s: float) -> str:
    """A video row's path: ``clip.mp4#t=12.400`` (a W3C media-fragment time, milliseconds)."""
    return f"{path}#t={time_s:.3f}"


def split_fragment(name: str) -> tuple[str, float | None]:
    """``clip.mp4#t=12.400`` -> (``clip.mp4``, 12.4); a name without a time fragment -> (name, None)."""
    base, sep, tail = name.rpartition("#t=")
    if not sep:
        return name, None
    try:
        return base, float(tail)
    except ValueError:
        return name, None


def _label(source, name: str | None) -> str:
    if name is not None:
        return name
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return str(getattr(source, "name", "<upload>"))


def _raw(source):
    """A path or bytes for decode.open_video, from a path, bytes or an Item (``data`` or ``path``)."""
    if isinstance(source, (str, os.PathLike, bytes, bytearray)):
        return source
    if getattr(source, "error", None):
        raise ImageLoadError(str(source.error))
    data = getattr(source, "data", None)
    return data if data is not None else source.path


def score_video(detector, source, *, frames: int = FRAMES, fps: float | None = None,
                progress: Callable[[float, str], None] | None = None, cancel: Callable[[], bool] | None = None,
                name: str | None = None, limits: Limits = LIMITS, max_side: int = MAX_SIDE,
                keep_crops: bool = False) -> VideoResult:
    """Score one clip (a path, its bytes, or a models.scoring.archive.Item) with ``detector``.

    Samples ``frames`` frames evenly (or one every 1/``fps`` s), finds faces (mtcnn on a copy at most
    ``max_side`` px long) and crops them with ``detector.crop_recipe``, scores the crops, links them into tracks
    (at least 4 frames each) and sets the clip's verdict. Never raises for a bad clip: the result carries a
    one-line ``error`` (over ``limits``, damaged, not a video, no video track...). ``keep_crops``: keep each
    face's model input on its Sighting (``crop``, 128 px uint8) for a page to show or explain."""
    label = _label(source, name)
    threshold = float(getattr(detector, "threshold", THRESHOLD))
    result = VideoResult(label, threshold=threshold)
    try:
        with open_video(_raw(source), label, limits) as (container, stream, info):
            result.duration_s, result.fps, result.container = info.duration_s, info.fps, info.container
            result.width, result.height = info.width, info.height
            wanted = sample_pts(info, frames, fps)
            per_frame = _sample(detector, container, stream, info, wanted, result, progress, cancel, max_side,
                                keep_crops)
            _info_warnings(info, result, len(wanted))
    except ImageLoadError as exc:  # VideoError included
        result.error, result.detail = " ".join(str(exc).split()), getattr(exc, "detail", "")
        return result
    except Exception as exc:  # any other failure of one clip: an error result, the batch goes on
        result.error = f"{label}: cannot score the video ({type(exc).__name__}: {' '.join(str(exc).split())})"
        return result
    _finish(detector, result, per_frame)
    return result


def _sample(detector, container, stream, info, wanted, result: VideoResult, progress, cancel, max_side: int,
            keep_crops: bool) -> list[list[Sighting]]:
    """Decode the wanted frames, find and crop faces, score them a chunk at a time: the faces of each frame."""
    recipe = getattr(detector, "crop_recipe", None)
    per_frame: list[list[Sighting]] = []
    pending: list[tuple[Sighting, np.ndarray]] = []
    clock = {"decode_s": 0.0, "detect_s": 0.0, "score_s": 0.0}
    frames_iter = decode_at(container, stream, info, wanted)
    n = len(wanted)
    while True:
        if cancel is not None and cancel():
            result.cancelled = True
            result.warnings.append(f"cancelled after {result.frames_sampled} of {n} frames")
            break
        t0 = time.perf_counter()
        frame = next(frames_iter, None)
        t1 = time.perf_counter()
        clock["decode_s"] += t1 - t0
        if frame is None:
            break
        if result.frames_sampled == 0:
            result.rotation = frame.rotation
            result.height, result.width = frame.image.shape[:2]
        per_frame.append(_faces(frame, recipe, max_side, pending))
        clock["detect_s"] += time.perf_counter() - t1
        result.frames_sampled += 1
        if len(pending) >= CHUNK:
            clock["score_s"] += _score(detector, pending, keep_crops)
        if progress is not None:
            progress(result.frames_sampled / max(1, n), f"frame {result.frames_sampled} of {n} ({frame.time_s:.1f} s)")
    clock["score_s"] += _score(detector, pending, keep_crops)
    result.timings = {**clock, "frames": result.frames_sampled}
    return per_frame


def _faces(frame, recipe, max_side: int, pending: list) -> list[Sighting]:
    """The faces of one frame as Sightings (P(fake) filled in later by :func:`_score`), their crops queued."""
    try:
        crops, kind, _warnings = analyse(frame.image, "face", recipe=recipe, max_side=max_side)
    except NoFaceError:
        return []
    found = []
    for face, crop in crops:
        if face is None:
            continue
        sighting = Sighting(frame.time_s, tuple(int(v) for v in face.box), float("nan"), round(face.confidence, 4))
        pending.append((sighting, crop))
        found.append(sighting)
    return found


def _score(detector, pending: list, keep_crops: bool) -> float:
    """Score the queued crops in one ``detector.predict`` call, fill in their Sightings, empty the queue."""
    if not pending:
        return 0.0
    start = time.perf_counter()
    p = np.asarray(detector.predict([crop for _s, crop in pending]), dtype=np.float64).reshape(-1)
    for (sighting, crop), value in zip(pending, p):
        sighting.p_fake = float(value)
        if keep_crops:
            sighting.crop = crop
    pending.clear()
    return time.perf_counter() - start


def _info_warnings(info, result: VideoResult, n_wanted: int) -> None:
    if info.vfr:
        result.warnings.append(f"variable frame rate (about {info.fps:.1f} fps on average): frames are timed by "
                               "their own timestamps")
    if info.truncated_at is not None:
        result.warnings.append(f"the file ends early at {info.truncated_at:.1f} s (damaged or truncated); "
                               "later frames are missing")
    missing = n_wanted - result.frames_sampled
    if missing > 0 and not result.cancelled:
        result.warnings.append(f"{missing} of {n_wanted} sampled frames could not be decoded")


def _finish(detector, result: VideoResult, per_frame: list[list[Sighting]]) -> None:
    tracks, dropped = build_tracks(per_frame, detector)
    result.tracks = tracks
    result.verdict = clip_verdict(tracks)
    result.p_fake = max((t.p_fake for t in tracks), default=None)
    if not any(per_frame):
        result.warnings.append(NO_FACE_WARNING)
    elif dropped:
        result.warnings.append(f"{dropped} short face track{'s' if dropped != 1 else ''} (fewer than {MIN_FRAMES} "
                               "frames) ignored")
    if any(per_frame) and not tracks:
        result.warnings.append(f"no face was seen in {MIN_FRAMES} or more sampled frames: verdict \"no face\"")

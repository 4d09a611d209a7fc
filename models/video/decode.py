"""Open a video file safely with PyAV: what it is (by content, not extension), its limits, its frame timestamps,
and the frames at chosen timestamps, upright (the display matrix's rotation applied).

Sampling seeks to the keyframe before each wanted frame and decodes forward to it; a wanted frame in the same
group of pictures as the last one decoded is reached by decoding forward without a seek. A sample's ``time_s``
is its frame's own timestamp (pts x time base), so variable-frame-rate clips are timed exactly.

Every failure is a :class:`VideoError` (a :class:`models.data.intake.ImageLoadError`): one plain line naming the
file in ``str()``, the decoder's own message in ``.detail``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from models.data.intake import ImageLoadError

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi"})
_FTYP_QT = (b"qt  ",)
_FTYP_M4V = (b"M4V ", b"M4VH", b"M4VP")
_NOT_VIDEO_BRANDS = (b"avif", b"avis", b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1", b"M4A ", b"M4B ")


class VideoError(ImageLoadError):
    """A clip that cannot be scored: ``str()`` is one plain line naming the file, ``detail`` the technical cause."""


@dataclass(frozen=True)
class Limits:
    """What a clip may be: file size, duration and resolution (pixels of one frame; 8K UHD is 7680 x 4320)."""

    max_bytes: int = 200 * 1024 * 1024
    max_duration_s: float = 600.0
    max_pixels: int = 7680 * 4320


LIMITS = Limits()


def sniff_video(head: bytes) -> str | None:
    """The container a file's first bytes (>= 48) say it is: "mp4", "mov", "m4v", "webm", "mkv", "avi"; else None.

    ISO media (``ftyp``; still-image brands such as HEIC/AVIF and audio-only M4A excluded), Matroska/WebM (the EBML
    magic; the DocType tells the two apart) and RIFF AVI. The file name is never consulted."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _NOT_VIDEO_BRANDS:
            return None
        return "mov" if brand in _FTYP_QT else "m4v" if brand in _FTYP_M4V else "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm" if b"webm" in head[:64] else "mkv"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    return None


def head_of(source) -> bytes:
    """The first 64 bytes of a path, bytes, or an Item-like object (``data`` or ``path``); b"" when unreadable."""
    data = getattr(source, "data", None) if not isinstance(source, (str, os.PathLike, bytes)) else None
    if isinstance(source, (bytes, bytearray)):
        return bytes(source[:64])
    if data is not None:
        return bytes(data[:64])
    path = source if isinstance(source, (str, os.PathLike)) else getattr(source, "path", None)
    if path is None or getattr(source, "error", None) or getattr(source, "note", None):
        return b""
    try:
        with open(path, "rb") as fh:
            return fh.read(64)
    except OSError:
        return b""


def is_video(source) -> bool:
    """True when ``source`` (a path, bytes, or an Item) is a video container by content."""
    return sniff_video(head_of(source)) is not None


def _size(source, label: str) -> int:
    if isinstance(source, (bytes, bytearray)):
        return len(source)
    path = Path(source)
    if not path.is_file():
        raise VideoError(f"{label}: no such file", f"not a file: {path}")
    return path.stat().st_size


def _mmss(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def check_size(source, label: str, limits: Limits = LIMITS) -> int:
    """The file's size in bytes after the zero-byte and size checks (VideoError, one line)."""
    size = _size(source, label)
    if size == 0:
        raise VideoError(f"{label}: empty file (0 bytes)", "0 bytes")
    if size > limits.max_bytes:
        raise VideoError(f"{label}: video file too large ({size / 2**20:.0f} MB; the limit is "
                         f"{limits.max_bytes / 2**20:.0f} MB)", f"{size} bytes > max_bytes = {limits.max_bytes}")
    return size


@contextlib.contextmanager
def local_file(source, suffix: str = ".video") -> Iterator[str]:
    """A path PyAV can open: ``source`` itself when it is a path; bytes (an upload, a zip member) are written to a
    temporary file that is deleted afterwards."""
    if not isinstance(source, (bytes, bytearray)):
        yield os.fspath(source)
        return
    fd, tmp = tempfile.mkstemp(suffix=suffix, prefix="deepfake-lens-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(source)
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


@dataclass
class VideoInfo:
    """What a clip is, from its header and a scan of its packets (no frame decoded).

    ``width``/``height``: coded frame size (before rotation); ``duration_s``: first to last frame plus one
    frame; ``fps``: frames / duration; ``vfr``: frame intervals vary by more than 1.5x (90th vs 10th
    percentile); ``pts``: every frame's timestamp in ``time_base`` units, sorted; ``keyframes``: the keyframes'
    timestamps, sorted; ``truncated_at``: the last frame's time when reading stopped early on damaged data or the
    header's duration is longer than the frames found (None when the whole file was read)."""

    name: str
    container: str
    codec: str
    width: int
    height: int
    duration_s: float
    fps: float
    time_base: Fraction
    pts: list[int] = field(repr=False, default_factory=list)
    keyframes: list[int] = field(repr=False, default_factory=list)
    vfr: bool = False
    truncated_at: float | None = None

    def time_of(self, pts: int) -> float:
        return float(pts * self.time_base)


def _av():
    import av

    return av


def _damaged(label: str, exc: BaseException) -> VideoError:
    return VideoError(f"{label}: cannot read the video (the file is damaged or truncated)",
                      f"{type(exc).__name__}: {exc}")


def open_container(path: str, label: str):
    """``(container, video stream)``; VideoError for a file FFmpeg cannot open or one with no video track."""
    av = _av()
    try:
        container = av.open(path, mode="r")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise _damaged(label, exc) from None
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        container.close()
        raise VideoError(f"{label}: no video track in this file ({', '.join(kinds)} only)",
                         f"streams: {', '.join(kinds)}")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def _check_header(container, stream, label: str, limits: Limits) -> None:
    width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
    if width < 1 or height < 1:
        raise VideoError(f"{label}: cannot read the video (no frame size in the file)", f"{width}x{height}")
    if width * height > limits.max_pixels:
        raise VideoError(f"{label}: video resolution too large ({width}x{height}; the limit is "
                         f"{limits.max_pixels / 1e6:.1f} megapixels, 8K)", f"{width * height} px > {limits.max_pixels}")
    declared = (container.duration or 0) / 1e6
    if declared > limits.max_duration_s:
        raise _too_long(label, declared, limits)


def _too_long(label: str, seconds: float, limits: Limits) -> VideoError:
    return VideoError(f"{label}: video too long ({_mmss(seconds)}; the limit is {_mmss(limits.max_duration_s)})",
                      f"{seconds:.3f} s > max_duration_s = {limits.max_duration_s}")


def scan(container, stream, label: str, limits: Limits = LIMITS) -> VideoInfo:
    """Read every packet of the video track (demux only, nothing decoded) for the frames' timestamps and the
    keyframes; checks resolution and duration. VideoError when there is no timed frame at all."""
    av = _av()
    _check_header(container, stream, label, limits)
    tb = stream.time_base or Fraction(1, 90000)
    pts, keys, failure = [], [], None
    try:
        for packet in container.demux(stream):
            t = packet.pts if packet.pts is not None else packet.dts
            if t is None or packet.size == 0:
                continue
            pts.append(int(t))
            if packet.is_keyframe:
                keys.append(int(t))
            if float((t - pts[0]) * tb) > limits.max_duration_s:
                raise _too_long(label, float((t - pts[0]) * tb), limits)
    except av.FFmpegError as exc:
        failure = exc
    if not pts:
        raise _damaged(label, failure or ValueError("no video frames"))
    pts.sort()
    keys = sorted(set(keys)) or [pts[0]]
    return _info(container, stream, label, pts, keys, tb, failure)


def _info(container, stream, label, pts, keys, tb, failure) -> VideoInfo:
    steps = np.diff(np.asarray(pts, dtype=np.float64)) * float(tb)
    steps = steps[steps > 0]
    step = float(np.median(steps)) if len(steps) else (1.0 / float(stream.average_rate or 25))
    duration = float((pts[-1] - pts[0]) * tb) + step
    declared = float(stream.duration * tb) if stream.duration else (container.duration or 0) / 1e6
    # the header promises more than the packets hold (a cut file whose index survived, or a damaged tail)
    truncated = failure is not None or declared - duration > max(0.25, 2 * step)
    vfr = bool(not truncated and len(steps) > 1 and np.percentile(steps, 90) > 1.5 * np.percentile(steps, 10))
    fmt = (container.format.name or "").split(",")[0]
    return VideoInfo(name=label, container=fmt, codec=stream.codec_context.name, width=int(stream.codec_context.width),
                     height=int(stream.codec_context.height), duration_s=duration, fps=len(pts) / duration,
                     time_base=Fraction(tb), pts=pts, keyframes=keys, vfr=vfr,
                     truncated_at=float((pts[-1] - pts[0]) * tb) if truncated else None)


def sample_pts(info: VideoInfo, frames: int = 32, fps: float | None = None) -> list[int]:
    """The timestamps of the frames to sample: ``frames`` spread evenly from the first frame to the last (all of
    them when the clip has fewer), or with ``fps`` one every 1/fps seconds (the frame shown at that time)."""
    pts = info.pts
    if fps is not None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, not {fps}")
        start = info.time_of(pts[0])
        times = np.asarray([info.time_of(p) for p in pts])
        wanted = start + np.arange(0.0, info.duration_s - 1e-9, 1.0 / fps)
        idx = np.clip(np.searchsorted(times, wanted + 1e-9, side="right") - 1, 0, len(pts) - 1)
    else:
        n = max(1, int(frames))
        idx = np.rint(np.linspace(0, len(pts) - 1, min(n, len(pts)))).astype(int)
    return [pts[i] for i in sorted(set(idx.tolist()))]


def rotation_of(frame) -> int:
    """The display rotation of a decoded frame, degrees counter-clockwise, a multiple of 90 (0 when none)."""
    try:
        angle = float(getattr(frame, "rotation", 0) or 0)
    except (TypeError, ValueError):
        return 0
    return int(round(angle / 90.0)) * 90 % 360


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """``image`` as a player shows it: turned ``rotation`` degrees counter-clockwise."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


@dataclass
class Frame:
    """One sampled frame: its timestamp (seconds), upright RGB pixels and the rotation applied."""

    time_s: float
    image: np.ndarray = field(repr=False)
    rotation: int = 0


def _keyframe_before(keys: Sequence[int], pts: int) -> int:
    i = int(np.searchsorted(np.asarray(keys), pts, side="right")) - 1
    return keys[max(0, i)]


def decode_at(container, stream, info: VideoInfo, wanted: Sequence[int]) -> Iterator[Frame]:
    """The frames at the timestamps ``wanted`` (sorted, from :func:`sample_pts`), in order. Seeks to the keyframe
    before a wanted frame unless that frame can be reached by decoding forward from the current position.
    A wanted frame the decoder never returns (damaged data) is skipped."""
    av = _av()
    decoded, position = None, None  # the frame iterator, the pts of the last frame it gave
    for target in sorted(wanted):
        key = _keyframe_before(info.keyframes, target)
        if decoded is None or position is None or position >= target or key > position:
            container.seek(int(key), stream=stream, backward=True, any_frame=False)
            decoded, position = container.decode(stream), None
        frame = None
        try:
            for candidate in decoded:
                t = candidate.pts if candidate.pts is not None else candidate.dts
                if t is None:
                    continue
                position = int(t)
                if position >= target:
                    frame = candidate
                    break
        except av.FFmpegError:
            decoded = None
        if frame is None:
            decoded = None
            continue
        rotation = rotation_of(frame)
        yield Frame(info.time_of(int(frame.pts if frame.pts is not None else position)),
                    upright(frame.to_ndarray(format="rgb24"), rotation), rotation)


@contextlib.contextmanager
def open_video(source, name: str | None = None, limits: Limits = LIMITS) -> Iterator[tuple]:
    """Open a clip (a path or bytes) after the checks: ``(container, stream, info)``, closed afterwards.

    Checks, each a one-line :class:`VideoError`: missing or empty file, over ``limits.max_bytes``, not a video by
    content (a text file renamed .mp4), unreadable or truncated beyond use, no video track (audio only),
    resolution or duration over the limits."""
    label = name or (str(source) if not isinstance(source, (bytes, bytearray)) else "<upload>")
    check_size(source, label, limits)
    kind = sniff_video(head_of(source))
    if kind is None:
        raise VideoError(f"{label}: not a video file (or an unsupported format: mp4, mov, m4v, webm, mkv and avi "
                         "are read)", f"first bytes: {head_of(source)[:16]!r}")
    with local_file(source) as path:
        container, stream = open_container(path, label)
        try:
            info = scan(container, stream, label, limits)
            info.container = kind
            yield container, stream, info
        finally:
            container.close()


def read_frame(source, time_s: float, name: str | None = None, limits: Limits = LIMITS) -> Frame:
    """The frame shown at ``time_s`` seconds (the last frame whose timestamp is <= time_s + 1 ms), upright.
    For a page or report that shows a sampled frame again (a video row's path is ``clip.mp4#t=12.400``)."""
    with open_video(source, name, limits) as (container, stream, info):
        times = np.asarray([info.time_of(p) for p in info.pts])
        i = int(np.clip(np.searchsorted(times, time_s + 1e-3, side="right") - 1, 0, len(times) - 1))
        for frame in decode_at(container, stream, info, [info.pts[i]]):
            return frame
    raise VideoError(f"{name or source}: cannot decode the frame at {time_s:.3f} s", "decoder returned no frame")

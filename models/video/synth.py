"""Clips made at run time with PyAV, for the Video page's built-in samples, the tests and the benchmark: a photo
(scikit-image's astronaut by default) filmed with a gentle pan and zoom, optionally with a "fake" stretch where
the mouth is self-blended (models.data.blend, #9's generator), plus the awkward cases the tests need
(variable frame rate, display rotation, audio only, two people). Nothing is downloaded; no file is committed."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

CODECS = {"mp4": "libx264", "mov": "libx264", "m4v": "libx264", "mkv": "libx264", "webm": "libvpx-vp9",
          "avi": "mpeg4"}
FORMATS = {"mp4": "mp4", "mov": "mov", "m4v": "ipod", "mkv": "matroska", "webm": "webm", "avi": "avi"}


def photo() -> np.ndarray:
    """The default subject: scikit-image's astronaut (512 x 512 RGB, one face)."""
    from skimage import data

    return data.astronaut()


def blended_photo(image: np.ndarray, seed: int = 1, parts: tuple[str, ...] = ("mouth",)) -> np.ndarray:
    """``image`` with ``parts`` of its largest face (default: the mouth) re-blended from a slightly altered copy of
    itself through a soft mask on mtcnn's landmarks: #9's generator, models.data.blend.self_blend, seeded. With
    the defaults this is the same fake of the astronaut as the app's demo pair (models.analysis.demo). The image
    unchanged when no face is found."""
    from models.data.blend import self_blend
    from models.data.landmarks import detect_landmarks

    lm = detect_landmarks(np.ascontiguousarray(image))
    if lm is None:
        return image
    fake, _mask, _info = self_blend(np.ascontiguousarray(image), lm, np.random.default_rng(seed), kind="parts",
                                    parts=tuple(parts))
    return fake


def view(image: np.ndarray, t: float, size: tuple[int, int], zoom: float = 0.15, pan: float = 0.06) -> np.ndarray:
    """The frame at phase ``t`` in [0, 1] of a gentle pan and zoom over ``image``, ``size`` = (width, height).
    The window keeps the output's aspect ratio, zooms in by ``zoom`` and drifts by ``pan`` of the image."""
    h, w = image.shape[:2]
    out_w, out_h = size
    aspect = out_w / out_h
    scale = 1.0 - zoom * t
    win_w = min(w, h * aspect) * scale
    win_h = win_w / aspect
    cx = w / 2 + (t - 0.5) * pan * w
    cy = h / 2 + (t - 0.5) * pan * h * 0.5
    left = float(np.clip(cx - win_w / 2, 0, w - win_w))
    top = float(np.clip(cy - win_h / 2, 0, h - win_h))
    box = (left, top, left + win_w, top + win_h)
    return np.asarray(Image.fromarray(image).resize((out_w, out_h), Image.BILINEAR, box=box), dtype=np.uint8)


def write_clip(path: str | os.PathLike, frames: Callable[[int], np.ndarray], n: int, *, fps: float = 12.0,
               container: str | None = None, times: Sequence[float] | None = None, rotation: int | None = None,
               audio: bool = False, options: dict | None = None) -> Path:
    """Encode ``n`` frames (``frames(i)`` -> HxWx3 uint8, even sizes) to ``path`` with PyAV.

    ``container``: mp4, mov, m4v, mkv, webm or avi (default: the file's extension); ``times``: each frame's
    timestamp in seconds (variable frame rate; default i / fps); ``rotation``: a display-matrix rotation
    (degrees counter-clockwise) stored in the file; ``audio``: add a quiet AAC/Opus/MP2 track too."""
    import av

    path = Path(path)
    kind = container or path.suffix.lstrip(".").lower() or "mp4"
    first = frames(0)
    with av.open(str(path), "w", format=FORMATS[kind]) as out:
        stream = out.add_stream(CODECS[kind], rate=Fraction(fps).limit_denominator(1000), options=options or {})
        stream.width, stream.height, stream.pix_fmt = first.shape[1], first.shape[0], "yuv420p"
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        sound = _add_audio(out, kind) if audio else None
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(first if i == 0 else frames(i), format="rgb24")
            if times is not None:
                frame.pts, frame.time_base = int(round(times[i] * 1000)), Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        if sound is not None:
            _write_audio(out, sound, n / fps)
    return path


def _add_audio(out, kind: str):
    codec = {"webm": "libopus", "avi": "mp2"}.get(kind, "aac")
    return out.add_stream(codec, rate=48000)


def _write_audio(out, stream, seconds: float) -> None:
    import av

    rate, size = 48000, 1024
    fmt = stream.codec_context.format.name
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for start in range(0, len(wave), size):
        piece = wave[start : start + size]
        if len(piece) < size:
            piece = np.pad(piece, (0, size - len(piece)))
        if fmt.startswith("s16"):
            data = (piece * 32767).astype(np.int16)[None, :]
            frame = av.AudioFrame.from_ndarray(data, format="s16", layout="mono")
        else:
            frame = av.AudioFrame.from_ndarray(piece[None, :], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        out.mux(stream.encode(frame))
    out.mux(stream.encode())


def make_clip(path: str | os.PathLike, *, seconds: float = 2.0, fps: float = 12.0, size: tuple[int, int] = (256, 256),
              image: np.ndarray | None = None, fake: tuple[float, float] | None = None, container: str | None = None,
              rotation: int | None = None, vfr: bool = False, audio: bool = False, options: dict | None = None,
              grain: float = 0.0) -> Path:
    """A clip of ``image`` (default: the astronaut) with a gentle pan and zoom, ``size`` = (width, height).

    ``fake`` = (start, end) fractions of the clip during which the mouth is self-blended (:func:`blended_photo`).
    ``vfr``: frame intervals alternate between 0.5x and 1.5x of 1/fps. ``rotation``: stored in the display matrix
    (the pixels are written turned the other way, so the clip *plays* upright). ``grain``: the standard deviation of
    fresh Gaussian noise added to every frame (a camera's sensor noise: bit rates like a real clip's). Returns
    ``path``."""
    base = photo() if image is None else image
    altered = blended_photo(base) if fake else None
    n = max(1, int(round(seconds * fps)))
    times = None
    if vfr:
        steps = np.where(np.arange(n) % 2 == 0, 0.5, 1.5) / fps
        times = np.concatenate([[0.0], np.cumsum(steps[:-1])]).tolist()
    k = (int(rotation or 0) // 90) % 4
    noises: dict[int, np.ndarray] = {}

    def frame(i: int) -> np.ndarray:
        t = i / max(1, n - 1)
        source = altered if fake and fake[0] <= t <= fake[1] else base
        upright_size = size if k % 2 == 0 else (size[1], size[0])
        img = view(source, t, upright_size)
        if grain > 0:
            if i % 16 not in noises:  # 16 noise fields, cycled: fresh-looking grain at a fraction of the cost
                noises[i % 16] = np.random.default_rng(i % 16).normal(0.0, grain, img.shape).astype(np.float32)
            img = np.clip(img + noises[i % 16], 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.rot90(img, -k)) if k else img

    return write_clip(path, frame, n, fps=fps, container=container, times=times, rotation=rotation, audio=audio,
                      options=options)


def make_audio_only(path: str | os.PathLike, seconds: float = 1.0) -> Path:
    """An .mp4 holding only an AAC audio track (no video)."""
    import av

    with av.open(str(path), "w", format="mp4") as out:
        _write_audio(out, out.add_stream("aac", rate=48000), seconds)
    return Path(path)


def two_people(width: int = 512, height: int = 256) -> np.ndarray:
    """A photo of two people side by side (the astronaut and her mirror image, each scaled to ``height``)."""
    face = np.asarray(Image.fromarray(photo()).resize((height, height), Image.LANCZOS), dtype=np.uint8)
    canvas = np.full((height, width, 3), 90, np.uint8)
    canvas[:, :height] = face
    canvas[:, width - height:] = face[:, ::-1]
    return canvas


def canvas(width: int = 1920, height: int = 1080, face_height: float = 0.8) -> np.ndarray:
    """A ``width`` x ``height`` photo (e.g. 1080p) with the astronaut scaled to ``face_height`` of the height, right
    of centre, on grey: a wide frame whose face stays in view through :func:`view`'s pan and zoom."""
    side = int(height * face_height)
    face = np.asarray(Image.fromarray(photo()).resize((side, side), Image.LANCZOS), dtype=np.uint8)
    out = np.full((height, width, 3), 110, np.uint8)
    x, y = (width - side) // 2 + width // 10, (height - side) // 2
    out[y : y + side, x : x + side] = face
    return out


def blank(width: int = 256, height: int = 256) -> np.ndarray:
    """A faceless photo: a smooth colour gradient."""
    x = np.linspace(0, 255, width)[None, :, None]
    y = np.linspace(0, 255, height)[:, None, None]
    return np.concatenate([np.broadcast_to(x, (height, width, 1)), np.broadcast_to(y, (height, width, 1)),
                           np.full((height, width, 1), 128.0)], axis=-1).astype(np.uint8)


def sample_clip(kind: str = "real", seconds: float = 4.0, size: tuple[int, int] = (384, 384), fps: float = 12.0,
                folder: str | os.PathLike | None = None) -> bytes:
    """A built-in sample for the Video page, made now (about a second): ``kind`` "real" (the astronaut, pan and
    zoom) or "fake" (the same, with her mouth self-blended, as in the demo pair, over the middle 40% of the clip:
    from 30% to 70% of its length). Returns the mp4's bytes."""
    import tempfile

    if kind not in ("real", "fake"):
        raise ValueError(f"kind must be 'real' or 'fake', not {kind!r}")
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = make_clip(Path(tmp) / f"sample-{kind}.mp4", seconds=seconds, fps=fps, size=size,
                         fake=(0.3, 0.7) if kind == "fake" else None)
        return path.read_bytes()

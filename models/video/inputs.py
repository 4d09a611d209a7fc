"""Inputs that mix photos and clips (files, folders, zips: models.scoring.archive): each Item is a clip when its
content says so (models.video.decode.is_video), whatever its name. Runs of photos go through the image stream
(models.scoring.stream / batch: chunks, threads, flat memory) exactly as before; each clip is scored with
:func:`models.video.score.score_video` where it comes, so outputs keep the input order."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from models.data.intake import ImageLoadError, sniff_format
from models.scoring.archive import MAX_VIDEO_BYTES, is_archive_name, is_video_name, read_zip_bytes
from models.scoring.archive import read_named as read_image_named
from models.scoring.archive import read_upload as read_image_upload
from models.scoring.batch import Row, rows_for
from models.scoring.stream import Score, score_sources
from models.video.decode import LIMITS, Limits, head_of, read_frame, sniff_video
from models.video.score import FRAMES, VideoResult, score_video, split_fragment

_NOTHING = object()


def is_video_item(item) -> bool:
    """True when an Item (or a path) holds a clip by content, or is named like a clip (.mp4...) and its content is
    nothing known (a text file renamed .mp4 then gets the video error, "not a video file"); False for notes,
    error Items and images."""
    if getattr(item, "note", None) or getattr(item, "error", None):
        return False
    head = head_of(item)
    if sniff_video(head) is not None:
        return True
    name = str(getattr(item, "name", item))
    return is_video_name(name) and sniff_format(head, name) is None


class _Split:
    """An Item stream cut into runs of non-clips (fed lazily to the image stream) and single clips."""

    def __init__(self, items: Iterable):
        self.it, self.head = iter(items), _NOTHING

    def peek(self):
        """The next Item without taking it; StopIteration at the end (an exception of the stream propagates)."""
        if self.head is _NOTHING:
            self.head = next(self.it)
        return self.head

    def take(self):
        item, self.head = self.head, _NOTHING
        return item

    def images(self) -> Iterator:
        """The Items up to the next clip (or the end)."""
        while True:
            try:
                item = self.peek()
            except StopIteration:
                return
            if is_video_item(item):
                return
            yield self.take()


def score_inputs(detector, items: Iterable, *, crop: str = "auto", batch_size: int = 64, workers: int = 2,
                 progress: Callable[[int], None] | None = None, should_stop: Callable[[], bool] | None = None,
                 on_note: Callable | None = None, transform=None, spread: bool = True, frames: int = FRAMES,
                 fps: float | None = None, video_progress: Callable[[float, str], None] | None = None,
                 limits: Limits = LIMITS) -> Iterator[Score | VideoResult]:
    """One :class:`Score` per photo and one :class:`VideoResult` per clip, in input order.

    Photos: as :func:`models.scoring.stream.score_sources` (``crop``, ``batch_size``, ``workers``, ``transform``,
    ``spread``, notes to ``on_note``). Clips: :func:`score_video` with ``frames`` / ``fps`` (faces are always
    detected; ``crop`` does not apply), ``video_progress(fraction, text)`` within each clip. ``progress(n)``: inputs
    done so far; ``should_stop()`` ends the stream (checked between photo chunks and between a clip's frames). An
    exception of ``items`` (ArchiveLimitError) propagates after the results of every input before it."""
    split, done = _Split(items), 0

    def stopped() -> bool:
        return should_stop is not None and bool(should_stop())

    while not stopped():
        try:
            item = split.peek()
        except StopIteration:
            return
        if is_video_item(item):
            split.take()
            yield score_video(detector, item, frames=frames, fps=fps, progress=video_progress, cancel=should_stop,
                              name=getattr(item, "name", None), limits=limits)
            done += 1
            if progress is not None:
                progress(done)
            continue
        base = done

        def run_progress(n: int, base: int = base) -> None:
            if progress is not None:
                progress(base + n)

        for score in score_sources(detector, split.images(), crop=crop, batch_size=batch_size, workers=workers,
                                   progress=run_progress, transform=transform, should_stop=should_stop,
                                   on_note=on_note, spread=spread):
            done += 1
            yield score


def score_rows(detector, items: Iterable, *, crop: str = "auto", batch_size: int = 64, workers: int = 2,
               progress: Callable[[int], None] | None = None, should_stop: Callable[[], bool] | None = None,
               on_note: Callable | None = None, transform=None, frames: int = FRAMES, fps: float | None = None,
               video_progress: Callable[[float, str], None] | None = None,
               limits: Limits = LIMITS) -> Iterator[Row]:
    """:func:`models.scoring.batch.score_items` for photos and clips: one Row per photo face (as before) and one per
    (track, sampled frame) of a clip (``VideoResult.rows``). Same arguments as :func:`score_inputs`; usable as
    ``BatchRun.score(..., scorer=score_rows)``."""
    model = str(getattr(detector, "name", ""))
    for result in score_inputs(detector, items, crop=crop, batch_size=batch_size, workers=workers, progress=progress,
                               should_stop=should_stop, on_note=on_note, transform=transform, frames=frames, fps=fps,
                               video_progress=video_progress, limits=limits):
        yield from (result.rows(model) if isinstance(result, VideoResult) else rows_for(result, model))


def read_named(name: str) -> np.ndarray:
    """Decode an input again by its display name: an image (``photo.jpg``, ``a.zip!b/c.jpg``) or a video row's
    frame (``clip.mp4#t=12.400``, ``a.zip!c.mp4#t=12.400``: the frame shown at that time, upright).
    :class:`ImageLoadError` (one line) when it cannot."""
    clip, time_s = split_fragment(name)
    if time_s is None:
        return read_image_named(name)
    outer, sep, inner = clip.partition("!")
    if sep and Path(outer).is_file() and is_archive_name(outer):
        data = read_zip_bytes(outer, inner, name=clip, max_bytes=MAX_VIDEO_BYTES)
        return read_frame(data, time_s, name=clip).image
    if not os.path.isfile(clip):
        raise ImageLoadError(f"{clip}: no such file")
    return read_frame(clip, time_s, name=clip).image


def read_upload(name: str, uploads: Mapping[str, bytes], file_names: Mapping[str, str] | None = None) -> np.ndarray:
    """:func:`models.scoring.archive.read_upload` for the Batch page's rows, video rows included: ``clip.mp4#t=1.250``
    or ``pack.zip!c.mp4#t=1.250`` gives that frame (upright) of the uploaded clip; anything else is an image as
    before. :class:`ImageLoadError` (one line) when it cannot."""
    clip, time_s = split_fragment(name)
    if time_s is None:
        return read_image_upload(name, uploads, file_names)
    if clip in uploads:
        return read_frame(uploads[clip], time_s, name=clip).image
    outer, sep, inner = clip.partition("!")
    if not sep or outer not in uploads or not (file_names or {}).get(outer, outer).lower().endswith(".zip"):
        raise ImageLoadError(f"{clip}: not among the uploaded files")
    data = read_zip_bytes(uploads[outer], inner, name=clip, max_bytes=MAX_VIDEO_BYTES)
    return read_frame(data, time_s, name=clip).image

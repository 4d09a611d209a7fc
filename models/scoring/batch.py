"""Batch scoring: a stream of inputs (files, folders, zips: models.archive) in, one row per face out.

``score_items`` streams :class:`Row` objects in input order (see models.scoring.score_sources for the
pipeline: decoding and face detection in threads with a bounded prefetch, crops predicted in batches), so
memory stays flat however many images go in. ``write_csv`` writes them as they come, flushing each row.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from models.data.faces import ALREADY_CROPPED, center_square, crop, square_box
from models.detectors.labels import unsure_label, verdict
from models.scoring.recipe import MADE_CROPS, finish_crop
from models.scoring.stream import Score, score_sources

CSV_COLUMNS = ("path", "face", "box_x", "box_y", "box_w", "box_h", "crop", "p_fake", "verdict", "model", "error",
               "unsure", "spread", "provenance")


@dataclass
class Row:
    """One face of one image (or one image, for crop "center"/"none", or one error).

    ``face``: 1-based index of the face in the image, largest first (None for crop "center"/"none" and
    errors). ``box_*``: the face box in original (EXIF-upright) pixels; for crop "center" the centre
    square scored, for "none" the whole image. ``crop``: "face", "center" or "none". ``p_fake``: calibrated
    P(fake); ``verdict`` at the detector's threshold. ``error``: one line, the other fields empty.
    ``unsure`` ("true"/"false" in the CSV) and ``spread`` (max - min of P(fake) over the crop's views): see
    ``Detector.unsure``. ``provenance``: one line on what the file declares about its origin (EXIF, XMP/IPTC,
    Content Credentials; "unknown" when nothing), never part of the score. ``confidence`` and ``warnings`` are
    extra (not CSV columns).

    A video row (models.video.score.VideoResult.rows) is one (track, sampled frame): ``path`` ``clip.mp4#t=12.400``,
    ``face`` the track number, ``unsure``/``spread`` the track's (spread across frames), ``clip`` and ``time_s``
    set (not CSV columns); a clip without a track is one row with verdict "no face" and no score.
    """

    path: str
    face: int | None = None
    box_x: int | None = None
    box_y: int | None = None
    box_w: int | None = None
    box_h: int | None = None
    crop: str | None = None
    p_fake: float | None = None
    verdict: str | None = None
    model: str = ""
    error: str | None = None
    unsure: bool | None = None
    spread: float | None = None
    confidence: float | None = None
    warnings: list[str] = field(default_factory=list)
    clip: str | None = None  # a video row's clip (its path without ``#t=``); None for an image
    time_s: float | None = None  # a video row's frame time (its timestamp, seconds)
    provenance: str | None = None  # the file's provenance summary (models.data.provenance), beside the score

    @property
    def box(self) -> tuple[int, int, int, int] | None:
        return None if self.box_x is None else (self.box_x, self.box_y, self.box_w, self.box_h)

    def to_csv_dict(self) -> dict[str, str]:
        """The CSV columns as strings: empty for None, P(fake) with 6 decimals."""
        out = {}
        for key in CSV_COLUMNS:
            value = getattr(self, key)
            if value is None:
                out[key] = ""
            elif key in ("p_fake", "spread"):
                out[key] = f"{value:.6f}"
            elif key == "unsure":
                out[key] = "true" if value else "false"
            else:
                out[key] = str(value)
        return out


def row_thumbnail(image: np.ndarray, row: Row, size: int = 96) -> np.ndarray | None:
    """What ``row`` scored, as a small RGB thumbnail cut from the decoded ``image`` (EXIF-upright, as scored).

    A face row gives the recipe's square around its box (the centre square when the image is already a face
    crop, as models.faces does), a "center" row its centre square, both ``size`` x ``size``; a "none" row the
    whole image with its aspect ratio kept (longer side ``size``). None for an error row or a box that does not
    fit ``image`` (a different image).
    """
    if row.error is not None or row.box is None:
        return None
    height, width = image.shape[:2]
    x, y, w, h = row.box
    if x < 0 or y < 0 or x + w > width or y + h > height:
        return None
    try:
        if row.crop == "face":
            x, y, side = square_box(row.box, width, height)
            if row.face == 1 and side >= ALREADY_CROPPED * min(width, height):
                x, y, side = center_square(width, height)
            return crop(image, (x, y, side), size)
        if row.crop == "center":
            return crop(image, row.box[:3], size)
        from PIL import Image

        thumb = Image.fromarray(np.ascontiguousarray(image[..., :3]))
        thumb.thumbnail((size, size), Image.LANCZOS)
        return np.asarray(thumb, dtype=np.uint8)
    except ValueError:
        return None


def rows_for(score: Score, model: str) -> list[Row]:
    """The rows of one scored image: one per face (largest first), one for a centre/none crop, or one error."""
    if score.error is not None or score.p_fake is None:
        return [Row(score.path, model=model, error=score.error or f"{score.path}: not scored")]
    threshold = score.threshold
    summary = (score.provenance or {}).get("summary")
    if score.crop == "face" and score.faces:
        rows = []
        for i, face in enumerate(score.faces, start=1):
            x, y, w, h = (int(v) for v in face["box"])
            p = float(face["p_fake"])
            rows.append(Row(score.path, i, x, y, w, h, "face", p, verdict(p, threshold), model,
                            unsure=face.get("unsure"), spread=face.get("spread"), confidence=face.get("confidence"),
                            provenance=summary))
        rows[0].warnings = list(score.warnings)
        return rows
    box = (None,) * 4
    if score.size is not None:
        width, height = score.size
        if score.crop == "center":
            x, y, side = center_square(width, height)
            box = (x, y, side, side)
        else:
            box = (0, 0, width, height)
    p = float(score.p_fake)
    return [Row(score.path, None, *box, score.crop, p, verdict(p, threshold), model, unsure=score.unsure,
                spread=score.spread, warnings=list(score.warnings), provenance=summary)]


def score_items(detector, items: Iterable, *, crop: str = "auto", batch_size: int = 64, workers: int = 2,
                progress: Callable[[int], None] | None = None, should_stop: Callable[[], bool] | None = None,
                on_note: Callable | None = None, transform=None) -> Iterator[Row]:
    """Stream :class:`Row` objects for ``items`` (models.archive.Item objects or paths), in input order.

    ``crop``: "auto" (faces; the centre square when none is found), "face" (no face -> an error row) or
    "none" (each image is already a face crop). Decoding and face detection run in ``workers`` threads,
    one chunk of ``batch_size`` images ahead of the prediction, so at most about two chunks are in memory.
    A bad file gives an error row and the batch goes on. ``progress(n_images_done)`` is called after each
    chunk; ``should_stop()`` is checked between chunks (True ends the stream: cancel). Items with a
    ``note`` are not scored but passed to ``on_note(item)``. An exception raised by ``items`` (e.g.
    models.archive.ArchiveLimitError) propagates after the rows of every item before it.
    """
    model = str(getattr(detector, "name", ""))
    for score in score_sources(detector, items, crop=crop, batch_size=batch_size, workers=workers,
                               progress=progress, transform=transform, should_stop=should_stop, on_note=on_note):
        yield from rows_for(score, model)


class Summary:
    """Counts over rows, updated one row at a time (O(1) memory): see :meth:`as_dict`."""

    def __init__(self):
        self.images = self.faces = self.errors = 0
        self.by_verdict: dict[str, int] = {"fake": 0, "real": 0}
        self.by_crop: dict[str, int] = {}
        self._clip: str | None = None  # the clip of the last video row counted

    def add(self, row: Row) -> None:
        if row.clip is not None:
            if row.clip != self._clip:
                self.images += 1  # a clip is one input, however many (track, frame) rows it has
            self._clip = row.clip
        else:
            self._clip = None
            if row.face is None or row.face == 1:
                self.images += 1  # an image is one row, or starts with its face 1
        if row.error is not None:
            self.errors += 1
            return
        if row.p_fake is None:
            return  # a clip with no face: counted as an input, nothing scored
        self.faces += 1
        self.by_verdict[row.verdict] = self.by_verdict.get(row.verdict, 0) + 1
        self.by_crop[row.crop] = self.by_crop.get(row.crop, 0) + 1

    def as_dict(self) -> dict:
        """``images`` (inputs, errors included), ``rows_scored`` (faces or crops scored), ``errors``,
        ``fake`` / ``real`` (scored rows per verdict) and ``by_crop`` (scored rows per crop kind)."""
        return {"images": self.images, "rows_scored": self.faces, "errors": self.errors, **self.by_verdict,
                "by_crop": dict(self.by_crop)}


def write_csv(rows: Iterable[Row], out: str | os.PathLike | IO[str], *, summary: Summary | None = None) -> dict:
    """Write ``rows`` as CSV (header :data:`CSV_COLUMNS`) to a path or a text file object, streaming.

    Each row is flushed as it is written, so an interrupted batch keeps every row computed. Returns the
    :func:`summarize` dict. Pass your own ``summary`` to keep the counts when ``rows`` raises (e.g.
    ArchiveLimitError, which propagates after the rows before it are written).
    """
    summary = Summary() if summary is None else summary
    own = not isinstance(out, io.IOBase) and not hasattr(out, "write")
    fh = open(Path(out), "w", newline="", encoding="utf-8") if own else out  # noqa: SIM115
    try:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="raise", lineterminator="\n")
        writer.writeheader()
        fh.flush()
        for row in rows:
            writer.writerow(row.to_csv_dict())
            fh.flush()
            summary.add(row)
    finally:
        if own:
            fh.close()
        else:
            fh.flush()
    return summary.as_dict()


# --- one batch run of the Batch page: its rows, kept across reruns, and what the page shows of them -------------

def chunk_size(crop: str) -> int:
    """Images per scoring chunk: small when faces are detected (~0.3 s per photo), so that Cancel takes effect
    quickly; larger for ready crops."""
    return 64 if crop == "none" else 8


TABLE_COLUMNS = ("thumbnail", "path", "p_fake", "verdict", "unsure", "error", "box")


def unique_names(names: Iterable[str]) -> list[str]:
    """One display name per input, all different: the first of each name as it is, later ones numbered
    ``photo.jpg (2)``, ``photo.jpg (3)``... (a number is skipped when another input already has that name).

    For uploads that share a file name (the same name from two folders), so that rows, thumbnails, Explain
    and the "already scored" check each refer to one upload.
    """
    names = list(names)
    taken = set(names)
    used: set[str] = set()
    out = []
    for name in names:
        unique, k = name, 2
        while unique in used:
            unique, k = f"{name} ({k})", k + 1
            if unique in taken:
                unique = name  # another input's own name: try the next number
        used.add(unique)
        out.append(unique)
    return out


def box_text(row: Row) -> str:
    """Where ``row``'s crop came from, short (one table cell): ``face 1: 64x64 at 12,30`` (size, then the top-left
    corner, in EXIF-upright pixels), ``centre square: 128x128 at 0,16``, ``whole image: 128x96``, for a video row
    ``track 2: 64x64 at 12,30`` (upright frame pixels); "" for an error row."""
    if row.error is not None or row.box is None:
        return ""
    x, y, w, h = row.box
    if row.crop == "none":
        return f"whole image: {w}x{h}"
    where = f"face {row.face}" if row.crop == "face" else "centre square"
    if row.clip is not None:
        where = f"track {row.face}"
    return f"{where}: {w}x{h} at {x},{y}"


@dataclass
class BatchRun:
    """A batch being scored (or scored) for ``key`` (the inputs, model and crop): rows so far, their thumbnails,
    the inputs done, notes, the archive limit hit (one line) and the seconds spent.

    ``status``: "running", "cancelled" or "done". :meth:`score` continues where a previous call stopped
    (inputs already done are skipped), so a run can be resumed after an interruption.
    """

    key: tuple
    status: str = "running"
    rows: list[Row] = field(default_factory=list)
    thumbs: list[str | None] = field(default_factory=list)
    done: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    limit: str | None = None
    seconds: float = 0.0

    def cancel(self) -> None:
        if self.status == "running":
            self.status = "cancelled"

    def progress(self, n_inputs: int) -> tuple[float, str]:
        """(fraction, text) for a progress bar over ``n_inputs`` uploads."""
        done = len(self.done)
        return (min(1.0, (done + 1) / max(n_inputs, done + 1)),
                f"Scored {len(self.rows)} faces from {done} files…")

    def score(self, detector, items: Iterable, *, crop: str, thumbnail: Callable[[Row], str | None],
              progress: Callable[[], None] | None = None, scorer: Callable[..., Iterable[Row]] | None = None) -> None:
        """Score ``items`` not done yet with ``detector``, appending rows and ``thumbnail(row)``; stops early on
        :meth:`cancel`. An archive over a cap ends the run with :attr:`limit` set; the rows before it stay.
        ``scorer``: what turns items into rows, called like :func:`score_items` (default); pass
        ``models.video.inputs.score_rows`` to score clips too (a clip's rows share its ``clip``, which marks it done)."""
        from models.scoring.archive import ArchiveLimitError

        started = time.perf_counter()
        todo = (it for it in items if it.name not in self.done)
        try:
            for row in (scorer or score_items)(detector, todo, crop=crop, batch_size=chunk_size(crop),
                                               on_note=lambda item: self.notes.append(item.note),
                                               progress=None if progress is None else (lambda _n: progress()),
                                               should_stop=lambda: self.status != "running"):
                self.rows.append(row)
                self.thumbs.append(thumbnail(row))
                self.done.add(row.clip or row.path)
        except ArchiveLimitError as exc:
            self.limit = str(exc)
        self.seconds += time.perf_counter() - started
        if self.status == "running":
            self.status = "done"

    def counts(self) -> dict[str, int]:
        """Files done, faces scored, fake and real verdicts, error rows (a clip's "no face" row is none of these)."""
        ok = [r for r in self.rows if r.error is None and r.p_fake is not None]
        return {"Files": len(self.done), "Faces scored": len(ok), "Fake": sum(r.verdict == "fake" for r in ok),
                "Real": sum(r.verdict == "real" for r in ok), "Errors": sum(r.error is not None for r in self.rows)}

    def table(self) -> list[dict]:
        """One dict per row with :data:`TABLE_COLUMNS`: ``path``, ``verdict`` and ``error`` as in the CSV,
        ``p_fake`` a float (NaN for errors), ``unsure`` "unsure (leans fake|real)" or "", ``box`` the crop's
        kind, face number and box on one line (:func:`box_text`) and ``thumbnail`` the row's thumbnail."""
        out = []
        for row, thumb in zip(self.rows, self.thumbs):
            d = {"thumbnail": thumb, **row.to_csv_dict(), "box": box_text(row)}
            d["p_fake"] = float(d["p_fake"]) if d["p_fake"] else float("nan")
            d["unsure"] = unsure_label(row.verdict) if row.unsure and row.verdict else ""
            out.append({c: d[c] for c in TABLE_COLUMNS})
        return out

    def p_fakes(self) -> list[float]:
        """P(fake) of every scored row (for the histogram)."""
        return [r.p_fake for r in self.rows if r.error is None and r.p_fake is not None]


def crop_loader(rows: Sequence[Row], read: Callable[[str], np.ndarray], size: int = 128,
                recipe: dict | None = None) -> Callable[[dict], np.ndarray | None]:
    """For a report over ``rows``' CSV dicts: a function giving, for one CSV dict, the exact ``size`` px crop the
    model scored (``read(path)`` decodes the image; ``recipe``: the detector's ``crop_recipe``, applied to
    crops cut from a photo as scoring did, see models.scoring.recipe)."""
    by_key = {(r.path, str(r.face or "")): r for r in rows}

    def load(csv_row: dict) -> np.ndarray | None:
        row = by_key[(csv_row["path"], str(csv_row.get("face") or ""))]
        thumb = row_thumbnail(read(row.path), row, size=size)
        if thumb is not None and recipe and row.crop in MADE_CROPS:
            thumb = finish_crop(thumb, recipe)
        return thumb

    return load

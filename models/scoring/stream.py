"""Score image files with a detector in streamed batches: decode (models.intake), find and crop faces
(models.faces), predict. Bad files become error rows, never exceptions; the rest of a batch goes on."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from models.data.faces import CROP_MODES, MAX_SIDE, NoFaceError, face_crops
from models.data.intake import ImageLoadError, load_image
from models.data.provenance import read_provenance
from models.detectors.base import Detector
from models.detectors.labels import THRESHOLD, verdict
from models.scoring.recipe import check_recipe, finish_crops

# A model input bigger than this (crop "none" on a full photo) is resized in the worker thread, so that a chunk
# in memory never holds full photos; smaller ones (face crops: 128 px) are preprocessed a whole chunk at once
# (one batched resize, ~4x cheaper than one call per image).
PREPARE_IN_WORKER_PIXELS = 512 * 512


@dataclass
class Score:
    """One input file: the largest face's verdict, every face's score, how it was cropped, or an error.

    ``spread`` and ``unsure``: see ``Detector.views_spread`` / ``Detector.unsure`` (the largest face's; each
    face dict has its own)."""

    path: str
    p_fake: float | None = None
    error: str | None = None
    crop: str | None = None  # "face", "center" or "none"
    faces: list[dict] = field(default_factory=list)  # largest first: box [x, y, w, h], confidence, p_fake
    warnings: list[str] = field(default_factory=list)
    threshold: float = THRESHOLD  # the verdict threshold used: the detector's operating point
    size: tuple[int, int] | None = None  # (width, height) of the decoded image; not in to_dict()
    spread: float | None = None  # max - min of P(fake) over the views of the crop
    unsure: bool | None = None  # spread > delta or P(fake) within epsilon of the threshold
    provenance: dict | None = None  # what the file declares about its origin (models.data.provenance), beside the score

    @property
    def verdict(self) -> str | None:
        return None if self.p_fake is None else verdict(self.p_fake, self.threshold)

    def to_dict(self) -> dict:
        d = {"path": self.path, "verdict": self.verdict, "p_fake": self.p_fake, "threshold": self.threshold,
             "unsure": self.unsure, "spread": self.spread, "crop": self.crop, "faces": self.faces}
        if self.provenance is not None:
            d["provenance"] = self.provenance
        if self.warnings:
            d["warnings"] = self.warnings
        if self.error is not None:
            d["error"] = self.error
        return d


def analyse(image: np.ndarray, mode: str = "auto", size: int = 128, recipe: dict | None = None,
            max_side: int = MAX_SIDE):
    """The crops a detector is given for a decoded image (see models.faces.face_crops): ``(crops, kind,
    warnings)``. ``recipe`` (``Detector.crop_recipe``): crops made from the photo are finished as the
    training data was (models.scoring.recipe: Lanczos to its size, JPEG, decoded); kind "none" never is.
    ``max_side``: mtcnn runs on a copy at most this long (models.data.faces.detect_faces; video frames use less)."""
    if mode not in CROP_MODES:
        raise ValueError(f"crop mode must be one of {', '.join(CROP_MODES)}, not {mode!r}")
    recipe = check_recipe(recipe)
    crops, kind, warnings = face_crops(image, mode=mode, size=recipe["size"] if recipe else size, max_side=max_side)
    return finish_crops(crops, kind, recipe), kind, warnings


def source_name(source) -> str:
    """The display name of a source: a path as given, or an Item's ``name`` (``a.zip!inner/b.jpg``)."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return str(source.name)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def load_source(source) -> np.ndarray:
    """Decode a path, or an Item-like object (``name`` plus ``path`` or ``data`` bytes, see models.archive)."""
    if isinstance(source, (str, os.PathLike)):
        return load_image(source)
    error = getattr(source, "error", None)
    if error:
        raise ImageLoadError(error)
    data = getattr(source, "data", None)
    return load_image(data if data is not None else source.path, name=source.name)


def source_provenance(source) -> dict:
    """What a decoded source's file declares about its origin (:func:`models.data.provenance.read_provenance`,
    never raises; GPS detected, never exported), as a dict."""
    data = getattr(source, "data", None)
    raw = data if data is not None else (source if isinstance(source, (str, os.PathLike)) else source.path)
    return read_provenance(raw).to_dict()


@dataclass
class _Loaded:
    """What a worker hands back for one source: model inputs (crops, or preprocessed floats) or an error."""

    inputs: list | np.ndarray | None = None
    faces: list = field(default_factory=list)  # Face or None per input
    kind: str | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    size: tuple[int, int] | None = None
    prepared: bool = False  # inputs are already the model's float batch (detector.preprocess)
    provenance: dict | None = None


def _load(source, mode: str, transform=None, prepare: Callable | None = None, recipe: dict | None = None) -> _Loaded:
    name = source_name(source)
    try:
        image = load_source(source)
        if transform is not None:
            image = transform(image)
        size = (int(image.shape[1]), int(image.shape[0]))
        crops, kind, warnings = analyse(image, mode, recipe=recipe)
        del image  # a full photo is dropped here; only its crops travel on
        faces = [face for face, _img in crops]
        inputs = [img for _face, img in crops]
        prepared = prepare is not None and any(img.shape[0] * img.shape[1] > PREPARE_IN_WORKER_PIXELS
                                               for img in inputs)
        if prepared:
            inputs = prepare(inputs)  # resized + scaled floats (S x S): memory no longer depends on the photo
        return _Loaded(inputs, faces, kind, list(warnings), size=size, prepared=prepared,
                       provenance=source_provenance(source))
    except ImageLoadError as exc:
        return _Loaded(error=_one_line(exc))
    except NoFaceError as exc:
        return _Loaded(error=_one_line(f"{name}: {exc}"))
    except Exception as exc:  # any other failure on one file: an error row, the batch goes on
        return _Loaded(error=_one_line(f"{name}: cannot score ({type(exc).__name__}: {exc})"))


def _fast_path(detector) -> bool:
    """True when predict == calibrate(predict_batch_raw(preprocess(...))): the KerasDetector chain, unchanged.

    Then each chunk's crops are preprocessed in one batched call (inputs over PREPARE_IN_WORKER_PIXELS already
    in the worker) and the model's forward pass runs on the floats; otherwise ``detector.predict`` is called."""
    from models.detectors.base import KerasDetector

    cls = type(detector)
    return (isinstance(detector, KerasDetector) and cls.predict is Detector.predict
            and cls.predict_raw is KerasDetector.predict_raw and cls.preprocess is Detector.preprocess
            and cls.predict_batch_raw is KerasDetector.predict_batch_raw)


def _predict(detector, loaded: list[_Loaded], fast: bool, batch_size: int,
             spread: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(calibrated P(fake), spread over views or None when not ``spread``) of every input of a chunk, in order."""
    todo = [ld for ld in loaded if ld.inputs is not None and len(ld.inputs)]
    if not todo:
        return np.zeros((0,), np.float32), np.zeros((0,), np.float32)
    if not fast:
        images = [img for ld in todo for img in ld.inputs]
        p = np.asarray(detector.predict(images), dtype=np.float32)
        return p, np.asarray(detector.views_spread(images, p_fake=p, batch_size=batch_size), np.float32) if spread \
            else None
    raw = [img for ld in todo if not ld.prepared for img in ld.inputs]
    prepared = detector.preprocess(raw) if raw else None  # one batched resize for the chunk's crops
    if len(raw) == sum(len(ld.inputs) for ld in todo):
        x = prepared
    else:
        rows = iter(prepared) if prepared is not None else iter(())
        x = np.concatenate([ld.inputs if ld.prepared else np.stack([next(rows) for _ in ld.inputs]) for ld in todo])
    out = np.empty((len(x),), np.float32)
    step = max(1, batch_size)
    for start in range(0, len(x), step):
        out[start : start + step] = detector.predict_batch_raw(x[start : start + step])
    p = np.asarray(detector.calibrate(out), dtype=np.float32)
    if not spread:
        return p, None
    spread = np.concatenate([detector.spread_inputs(x[s : s + step], p[s : s + step]) for s in range(0, len(x), step)])
    return p, spread.astype(np.float32)


def score_sources(
    detector: Detector, sources: Iterable, *, crop: str = "auto", batch_size: int = 64, workers: int = 2,
    progress: Callable[[int], None] | None = None, transform=None, should_stop: Callable[[], bool] | None = None,
    on_note: Callable | None = None, spread: bool = True,
) -> Iterator[Score]:
    """Stream one :class:`Score` per source, in input order, with flat memory.

    ``sources``: paths, or :class:`models.archive.Item` objects (anything with ``name`` and ``path`` or
    ``data``; one with ``error`` set becomes an error Score, one with ``note`` set is passed to ``on_note``
    and not scored). The iterable is consumed lazily, one chunk of ``batch_size`` sources ahead: decoding
    and face detection run in ``workers`` threads on the next chunk while the model predicts the current
    one, so at most two chunks are in memory (and a full photo only while it is cropped or resized).

    An exception raised by ``sources`` itself (e.g. models.archive.ArchiveLimitError) is re-raised after
    the Scores of every source pulled before it have been yielded. ``should_stop()`` is checked between
    chunks; when it returns True the stream ends. ``progress(n_done)`` is called after each chunk.
    ``spread``: also score the views of each crop for ``Score.spread`` and ``Score.unsure`` (about 5x the
    model's work; off: both None).
    """
    if crop not in CROP_MODES:
        raise ValueError(f"crop mode must be one of {', '.join(CROP_MODES)}, not {crop!r}")
    batch_size = max(1, int(batch_size))
    threshold = float(getattr(detector, "threshold", THRESHOLD))
    fast = _fast_path(detector)
    puller = _Puller(iter(sources), batch_size, crop, transform, detector.preprocess if fast else None, on_note,
                     getattr(detector, "crop_recipe", None))

    def stopped() -> bool:
        return should_stop is not None and bool(should_stop())

    done = 0
    pool = ThreadPoolExecutor(max_workers=max(1, int(workers)))
    try:
        pending = deque()
        first = puller.pull(pool)
        if first:
            pending.append(first)
        while pending:
            chunk = pending.popleft()
            if not puller.exhausted and not stopped():
                following = puller.pull(pool)  # prefetch: the workers start on it while this chunk is predicted
                if following:
                    pending.append(following)
            loaded = [job.result() if isinstance(job, Future) else job for _name, job in chunk]
            yield from _scores(chunk, loaded, *_predict(detector, loaded, fast, batch_size, spread), threshold,
                               detector.unsure)
            done += len(chunk)
            del chunk, loaded  # this chunk's crops can go before the next one is waited for
            if progress is not None:
                progress(done)
            if stopped():
                return
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if puller.failure is not None:
        raise puller.failure


class _Puller:
    """Takes the next chunk of sources off the iterator and submits their decoding to a thread pool."""

    def __init__(self, it: Iterator, batch_size: int, crop: str, transform, prepare, on_note, recipe=None):
        self.it, self.batch_size, self.crop, self.transform, self.prepare = it, batch_size, crop, transform, prepare
        self.on_note, self.recipe = on_note, check_recipe(recipe)
        self.failure: Exception | None = None
        self.exhausted = False

    def pull(self, pool) -> list[tuple[str, Future | _Loaded]]:
        chunk = []
        while len(chunk) < self.batch_size and not self.exhausted:
            try:
                source = next(self.it)
            except StopIteration:
                self.exhausted = True
                break
            except Exception as exc:  # the source iterable failed (a cap was hit): finish what we have
                self.failure, self.exhausted = exc, True
                break
            if getattr(source, "note", None):
                if self.on_note is not None:
                    self.on_note(source)
                continue
            name = source_name(source)
            if getattr(source, "error", None):
                chunk.append((name, _Loaded(error=_one_line(source.error))))
            else:
                chunk.append((name, pool.submit(_load, source, self.crop, self.transform, self.prepare,
                                                          self.recipe)))
        return chunk


def _scores(chunk, loaded: list[_Loaded], probs: np.ndarray, spreads: np.ndarray, threshold: float,
            unsure: Callable) -> Iterator[Score]:
    """One Score per source of a chunk, its faces' P(fake) and spread taken in order from ``probs``/``spreads``;
    ``unsure(p_fake, spread)`` is the detector's band (Detector.unsure). ``spreads`` None: both left None."""
    if spreads is None:
        spreads, flags = iter([None] * len(probs)), iter([None] * len(probs))
    else:
        flags = iter(np.asarray(unsure(probs, spreads), dtype=bool).reshape(-1).tolist())
    probs, spreads = iter(probs), iter(spreads)
    for (name, _job), ld in zip(chunk, loaded):
        if ld.error is not None:
            yield Score(name, error=ld.error, threshold=threshold)
            continue
        faces, first = [], None
        for face in ld.faces:
            p, spread, flag = float(next(probs)), next(spreads), next(flags)
            spread = None if spread is None else round(float(spread), 6)
            first = (p, spread, flag) if first is None else first
            if face is not None:
                faces.append({"box": list(face.box), "confidence": round(face.confidence, 4), "p_fake": p})
                if spread is not None:
                    faces[-1].update(unsure=flag, spread=spread)
        p, spread, flag = first if first is not None else (None, None, None)
        yield Score(name, p_fake=p, crop=ld.kind, faces=faces, warnings=ld.warnings, threshold=threshold,
                    size=ld.size, spread=spread, unsure=flag, provenance=ld.provenance)


def score_paths(
    detector: Detector, paths: Iterable[str], batch_size: int = 64, workers: int = 4, progress=None,
    transform=None, crop: str = "auto", spread: bool = False,
) -> Iterator[Score]:
    """Yield one :class:`Score` per path, in order. Decoding and face detection run in threads; prediction
    runs on every crop of a chunk at once.

    ``crop``: "auto" (detect faces; centre square when none), "face" (a face is required) or "none" (the
    image is already a crop). Scores are the detector's calibrated P(fake); verdicts use its threshold
    (``detector.threshold``: the saved operating point). ``progress(n_done)`` is called after each chunk;
    ``transform`` is applied to each decoded image first (e.g. a :mod:`models.perturb` perturbation).
    Streams (see :func:`score_sources`): ``paths`` may be a lazy iterable. ``spread`` is off by default here
    (evaluation needs only the single-view scores).
    """
    return score_sources(detector, paths, crop=crop, batch_size=batch_size, workers=workers, progress=progress,
                         transform=transform, spread=spread)

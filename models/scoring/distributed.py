"""Batch scoring on Ray Data: the same CSV as the local engine (models.scoring.batch), from one machine to a cluster.

The driver lists the inputs (files, folders, zips through models.scoring.archive's guards) and writes the CSV;
Ray runs the work in between:

1. **decode + crop** in CPU tasks (``workers`` at a time): each input is decoded and its faces found and cropped by
   models.scoring.stream's own loading path (``analyse``: one preprocessing path for every engine). A zip member
   travels as (archive, member name) and is read again in the task with models.scoring.archive's guards, so the
   driver never holds an archive's bytes;
2. **score** in ``map_batches`` with a callable class that loads the Detector once per actor (``actors`` of
   them), predicting a batch of crops at once exactly as the local stream does (same P(fake), spread, unsure);
3. the driver iterates the results in input order (``iter_batches``, ``preserve_order``) and writes them through
   :func:`models.scoring.batch.write_csv`, flushing each row, so an interrupted run keeps a valid partial CSV.

A bad file is an error row, never a failed job. Clips are scored only when the caller passes ``clip_rows`` (the CLI
passes models.video's scorer; this package never imports models.video); without it each clip is one error row
(:data:`VIDEO_UNSUPPORTED`).
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from models.data.faces import CROP_MODES
from models.data.intake import ImageLoadError
from models.scoring.archive import Item, is_video_name, iter_inputs, member_cap, read_zip_bytes
from models.scoring.batch import Row, Summary, rows_for, write_csv
from models.scoring.stream import _fast_path, _load, _Loaded, _one_line, _predict, _scores

VIDEO_UNSUPPORTED = "videos are not supported with --engine ray; use --engine local"
DECODE_CPUS = 0.5  # Ray CPUs reserved per decode task: two per core keep the scoring actors fed on small crops
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Job:
    """One input as it travels through Ray: a file (``path``), a zip member (``archive`` + ``member``, read again
    in the task), bytes (``data``: a member whose name does not survive display), or an ``error`` already known.
    ``clip``: a video, scored by the caller's ``clip_rows``."""

    name: str
    path: str | None = None
    archive: str | None = None
    member: str | None = None
    data: bytes | None = None
    error: str | None = None
    clip: bool = False

    def item(self) -> Item:
        """The models.scoring.archive Item the local engine would have scored (a zip member read with its guards)."""
        if self.archive is not None:
            data = read_zip_bytes(self.archive, self.member, name=self.name, max_bytes=member_cap(self.member))
            return Item(self.name, data=data)
        return Item(self.name, path=self.path, data=self.data, error=self.error)


def list_jobs(inputs: Sequence[str | os.PathLike], *, on_note: Callable | None = None,
              is_clip: Callable[[Item], bool] | None = None,
              clips: bool = False) -> tuple[list[Job], Exception | None]:
    """The :class:`Job` of every input (models.scoring.archive.iter_inputs, in order; notes go to ``on_note``), and
    the ArchiveLimitError that stopped the listing (None when none did: the jobs before it are kept, as locally).

    ``is_clip(item)``: whether an Item is a video (default: by its extension). ``clips`` False: a clip is an error
    Job (:data:`VIDEO_UNSUPPORTED`)."""
    is_clip = is_clip or (lambda item: is_video_name(item.name))
    jobs: list[Job] = []
    try:
        for raw in inputs:
            prefix = f"{raw}!"
            for item in iter_inputs([raw]):
                if item.note:
                    if on_note is not None:
                        on_note(item)
                    continue
                jobs.append(_job(item, prefix, is_clip, clips))
    except Exception as exc:  # noqa: BLE001 - an archive over a cap: score what was listed, then re-raise
        return jobs, exc
    return jobs, None


def _job(item: Item, prefix: str, is_clip: Callable[[Item], bool], clips: bool) -> Job:
    if item.error:
        return Job(item.name, error=item.error)
    clip = bool(is_clip(item))
    if clip and not clips:
        return Job(item.name, error=f"{item.name}: {VIDEO_UNSUPPORTED}")
    if item.data is None:  # absolute: a Ray worker's working directory is not the driver's
        return Job(item.name, path=os.path.abspath(item.path), clip=clip)
    member = item.name[len(prefix):] if item.name.startswith(prefix) else None
    if member and "?" not in member and member.isprintable():  # the display name is the member's own name
        return Job(item.name, archive=os.path.abspath(prefix[:-1]), member=member, clip=clip)
    return Job(item.name, data=item.data, clip=clip)


def decode_batch(batch: dict, *, crop: str, recipe: dict | None, transform=None) -> dict:
    """Ray task: decode and crop a batch of pickled Jobs (models.scoring.stream's loading path); one pickled
    ``_Loaded`` per Job (None for a clip, scored whole by the actor)."""
    out = []
    for blob in batch["job"]:
        job: Job = pickle.loads(blob)
        if job.clip:
            loaded = None
        elif job.error is not None:
            loaded = _Loaded(error=_one_line(job.error))
        else:
            try:
                loaded = _load(job.item(), crop, transform, None, recipe)
            except ImageLoadError as exc:  # a zip member refused by the guards
                loaded = _Loaded(error=_one_line(exc))
        out.append(pickle.dumps(loaded))
    return {"job": batch["job"], "loaded": out}


class Scorer:
    """Ray actor: loads the Detector once, then scores decoded batches into pickled lists of CSV Rows.
    ``clip_rows(detector, item) -> rows`` scores a clip (None: a clip is an error row)."""

    def __init__(self, model_path: str, batch_size: int = 64, clip_rows: Callable | None = None):
        from models.detectors.registry import load_model

        self.detector = load_model(model_path)
        self.fast = _fast_path(self.detector)
        self.batch_size, self.clip_rows = int(batch_size), clip_rows
        self.model = str(getattr(self.detector, "name", ""))

    def __call__(self, batch: dict) -> dict:
        jobs = [pickle.loads(b) for b in batch["job"]]
        loaded = [pickle.loads(b) for b in batch["loaded"]]
        images = [(job, ld) for job, ld in zip(jobs, loaded) if ld is not None]
        lds = [ld for _job, ld in images]
        probs, spreads = _predict(self.detector, lds, self.fast, self.batch_size, True)
        scores = iter(_scores([(job.name, None) for job, _ld in images], lds, probs, spreads,
                              float(self.detector.threshold), self.detector.unsure))
        out = [pickle.dumps(self._clip(job) if ld is None else rows_for(next(scores), self.model))
               for job, ld in zip(jobs, loaded)]
        return {"rows": out}

    def _clip(self, job: Job) -> list[Row]:
        if self.clip_rows is None:
            return [Row(job.name, model=self.model, error=f"{job.name}: {VIDEO_UNSUPPORTED}")]
        try:
            return list(self.clip_rows(self.detector, job.item()))
        except Exception as exc:  # noqa: BLE001 - one bad clip is an error row, the job goes on
            return [Row(job.name, model=self.model, error=_one_line(f"{job.name}: cannot score ({type(exc).__name__}: "
                                                                    f"{exc})"))]


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Attach to the Ray cluster at ``address`` (``"auto"``: the one ``ray start`` runs here), or start a local Ray
    with ``num_cpus`` (default: the machine's cores) when there is none: dashboard off, quiet logs, workers able
    to import this repository. Nothing when Ray is already initialised. True when this call started Ray."""
    import ray

    if ray.is_initialized():
        return False
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    options = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
               "ignore_reinit_error": True, "runtime_env": {"env_vars": env}}
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, **options)
    return True


def _data_context():
    """This process's Ray Data context set for scoring: results in input order, no progress bars or stats, and no
    per-operator resource reservation (with it, a small cluster ran one decode task at a time whatever ``workers``
    said; the pipeline's two operators are bounded by ``workers`` tasks and ``actors`` actors instead)."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.op_resource_reservation_enabled = False
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # "progress bars disabled" and the like
    warnings.filterwarnings("ignore", message="The maximum number of concurrent tasks", category=UserWarning)
    return ctx


def iter_rows_ray(model_path: str, jobs: Sequence[Job], *, actors: int = 1, workers: int = 2, crop: str = "auto",
                  batch_size: int = 64, transform=None, clip_rows: Callable | None = None,
                  progress: Callable[[int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> Iterator[Row]:
    """Stream the CSV Rows of ``jobs`` in order from a Ray Data pipeline (Ray must be initialised: :func:`connect`).

    ``workers``: decode tasks at once (cluster-wide); ``actors``: scoring actors, each holding one Detector
    (``model_path``: a file every node can read). ``progress(n_inputs_done)`` and ``should_stop()`` (True ends the
    stream) are called between result batches."""
    import ray.data

    from models.detectors.base import check_crop_recipe
    from models.detectors.registry import read_metadata

    if crop not in CROP_MODES:
        raise ValueError(f"crop mode must be one of {', '.join(CROP_MODES)}, not {crop!r}")
    if not jobs:
        return
    _data_context()
    batch_size, workers = max(1, int(batch_size)), max(1, int(workers))
    per_task = max(1, -(-batch_size // workers))  # one local chunk is split over the decode tasks
    recipe = check_crop_recipe(read_metadata(Path(model_path)).get("crop_recipe"))
    ds = ray.data.from_items([{"job": pickle.dumps(j)} for j in jobs], override_num_blocks=-(-len(jobs) // per_task))
    ds = ds.map_batches(decode_batch, batch_size=per_task, batch_format="numpy", num_cpus=DECODE_CPUS,
                        compute=ray.data.TaskPoolStrategy(size=workers), udf_modifying_row_count=False,
                        fn_kwargs={"crop": crop, "recipe": recipe, "transform": transform})
    ds = ds.map_batches(Scorer, batch_size=batch_size, batch_format="numpy", num_cpus=1,
                        compute=ray.data.ActorPoolStrategy(size=max(1, int(actors))), udf_modifying_row_count=False,
                        fn_constructor_kwargs={"model_path": model_path, "batch_size": batch_size,
                                               "clip_rows": clip_rows})
    done = 0
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1):
        for blob in batch["rows"]:
            yield from pickle.loads(blob)
        done += len(batch["rows"])
        if progress is not None:
            progress(done)
        if should_stop is not None and should_stop():
            return


def _tap(rows: Iterable[Row], on_row: Callable[[Row], None]) -> Iterator[Row]:
    for row in rows:
        on_row(row)
        yield row


def score_csv_ray(detector_name: str | None, inputs: Sequence[str | os.PathLike], out: str | os.PathLike | IO[str],
                  *, address: str | None = None, actors: int | None = None, workers: int = 2, crop: str = "auto",
                  batch_size: int = 64, progress: Callable[[int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None, on_note: Callable | None = None,
                  summary: Summary | None = None, is_clip: Callable[[Item], bool] | None = None,
                  clip_rows: Callable | None = None, transform=None,
                  on_row: Callable[[Row], None] | None = None) -> dict:
    """``python -m models.predict --csv OUT INPUTS`` on Ray: the same header, rows, order and error rows.

    ``detector_name``: a model name or path (None: the default), resolved here to the file every node must read.
    ``address``: a Ray cluster (None: the one already initialised, else a local Ray on this machine's cores, shut
    down at the end). ``actors``: scoring actors (None: one per alive node). ``workers``: decode tasks at once.
    ``summary``: your own :class:`Summary`, to keep the counts when this raises (KeyboardInterrupt: the CSV holds
    the header and every complete row). An ArchiveLimitError is raised after the rows of the inputs before it.
    ``is_clip`` / ``clip_rows(detector, item) -> rows``: how clips are found and scored (see :func:`list_jobs`).
    ``on_row(row)``: called with each row as it is written (the CLI prints error rows). Returns the
    :meth:`Summary.as_dict` counts."""
    import ray

    from models.detectors.registry import resolve_model_path

    model_path = str(resolve_model_path(detector_name).resolve())
    jobs, failure = list_jobs(inputs, on_note=on_note, is_clip=is_clip, clips=clip_rows is not None)
    summary = Summary() if summary is None else summary
    started = connect(address) if jobs else False
    try:
        if actors is None:
            actors = max(1, sum(1 for n in ray.nodes() if n.get("Alive"))) if jobs else 1
        rows = iter_rows_ray(model_path, jobs, actors=actors, workers=workers, crop=crop, batch_size=batch_size,
                             transform=transform, clip_rows=clip_rows, progress=progress, should_stop=should_stop)
        write_csv(rows if on_row is None else _tap(rows, on_row), out, summary=summary)
    finally:
        if started:
            ray.shutdown()
    if failure is not None:
        raise failure
    return summary.as_dict()


"""Score images: ``python -m models.predict [--model M] [--json | --csv OUT] INPUT...``.

INPUT: image files, folders (searched recursively for images) and ``.zip`` archives (members are named
``archive.zip!inner/path.jpg``). One line per image: path, verdict and P(fake) of its largest face (one
more line per further face). P(fake) is calibrated, and the verdict uses the model's saved operating
point (``threshold`` in the --json rows; 0.5 when none is saved). Faces are found with mtcnn and cropped
as the training data was (--crop auto); with no face the centre square is scored and a warning printed.
A file that cannot be read gets a one-line error and the others go on. --json rows (and each of their
"faces") carry ``unsure`` and ``spread`` (models.detectors.base: "unsure", defined once). ``--csv OUT`` writes one row per
face instead (``-``: standard output), streaming, with a progress bar. Exit status 0 when every file
succeeded, 2 when any failed (or an archive was over a cap: the rows before it are kept).

Videos (mp4, mov, m4v, webm, mkv, avi, told by content; also inside folders and zips) are scored by models.video:
``--frames N`` sampled evenly (default 32) or ``--fps F``; faces linked into tracks; one line (or JSON object with
``kind: "video"`` and ``tracks``) per clip, and in the CSV one row per (track, sampled frame), path
``clip.mp4#t=12.400``, ``face`` = the track number.

``--engine ray [--ray-address ADDR] [--ray-actors N]``: the same CSV scored on Ray Data, on this machine or a cluster
(CSV only; see README "Scaling out"). Every JSON row and CSV row also carries the file's provenance
(models.data.provenance: EXIF, XMP/IPTC, Content Credentials), beside the score, never in it.
"""

from __future__ import annotations

import argparse
import json
import sys

from models.data.faces import CROP_MODES


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m models.predict", description=__doc__.split("\n")[0])
    p.add_argument("images", nargs="+", metavar="INPUT", help="image files, folders (recursive) or .zip files")
    p.add_argument("--model", default=None, help="model name or .keras path (default: the shipped default)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true",
                     help="one JSON object per line: path, verdict, p_fake, threshold, unsure, spread, crop, faces"
                          "[, error]")
    fmt.add_argument("--csv", default=None, metavar="OUT",
                     help="write one CSV row per face to OUT ('-': stdout): "
                          "path,face,box_x,box_y,box_w,box_h,crop,p_fake,verdict,model,error,unsure,spread,provenance")
    p.add_argument("--report", default=None, metavar="OUT.html",
                   help="with --csv: also write a self-contained HTML report (summary, histogram, the --top most "
                        "suspicious faces explained with LIME and Grad-CAM)")
    p.add_argument("--top", type=int, default=5, help="faces explained in --report (default 5)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2, help="threads that decode images and find faces")
    p.add_argument("--crop", default="auto", choices=CROP_MODES,
                   help="auto: find faces, centre square if none (default); face: require a face; "
                        "none: the images are already face crops (no detection)")
    p.add_argument("--frames", type=int, default=32, metavar="N",
                   help="videos: frames sampled evenly per clip (default 32)")
    p.add_argument("--fps", type=float, default=None, metavar="F",
                   help="videos: sample F frames per second instead of --frames")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: score in this process (default); ray: Ray Data on a local Ray or the cluster at "
                        "--ray-address (--csv only; see README 'Scaling out')")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="--engine ray: the Ray cluster ('auto': the one `ray start` runs on this machine, or "
                        "HOST:6379); default: start a local Ray on this machine's cores")
    p.add_argument("--ray-actors", type=int, default=None, metavar="N",
                   help="--engine ray: scoring actors, each holding one copy of the model (default: one per node)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is shown on stderr with --csv, or when stderr is a terminal)")
    args = p.parse_args(argv)
    if args.frames < 1 or (args.fps is not None and not args.fps > 0):
        p.error("--frames must be >= 1 and --fps > 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.report and args.csv is None:
        print("error: --report needs --csv (the report summarises the CSV's rows)", file=sys.stderr)
        return 2
    if args.engine == "ray":
        if args.json or args.report or args.csv is None:
            print("error: --engine ray writes a CSV only: --json, --report and plain output are not supported with "
                  "--engine ray (use --csv OUT, or --engine local)", file=sys.stderr)
            return 2
        return _score_ray(args)
    from tqdm.auto import tqdm

    from models.detectors.registry import ModelNotFoundError, load_model
    from models.scoring.archive import ArchiveLimitError, iter_inputs

    try:
        detector = load_model(args.model)
    except ModelNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    show_bar = not args.no_progress and (args.csv is not None or sys.stderr.isatty())
    bar, say = _progress(args.images, show_bar, f"scoring ({detector.name})")

    def out(line: str) -> None:
        if show_bar:
            tqdm.write(line, file=sys.stdout)  # clears and redraws the bar around the line
            sys.stdout.flush()
        else:
            print(line, flush=True)

    def note(item) -> None:
        say(f"note: {item.note}")

    def progress(n: int) -> None:
        bar.update(n - bar.n)

    items = iter_inputs(args.images)
    opts = {"crop": args.crop, "batch_size": args.batch_size, "workers": args.workers, "progress": progress,
            "on_note": note, "frames": args.frames, "fps": args.fps,
            "video_progress": (lambda _f, text: bar.set_postfix_str(text)) if show_bar else None}
    try:
        if args.csv is not None:
            return _write_csv(detector, items, args, opts, say, bar.close)
        from models.video.inputs import score_inputs
        from models.video.score import VideoResult

        failed = 0
        try:
            for score in score_inputs(detector, items, **opts):
                failed += score.error is not None
                for warning in score.warnings:
                    say(f"warning: {score.path}: {warning}")
                if isinstance(score, VideoResult):
                    _print_video(score, detector, args.json, out, say)
                else:
                    _print_image(score, detector, args.json, out, say)
        except ArchiveLimitError as exc:
            say(f"error: {exc} (stopped; the results above are kept)")
            return 2
        return 2 if failed else 0
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        bar.close()


def _progress(images, show_bar: bool, desc: str):
    """A tqdm bar over ``images``' inputs on stderr (disabled unless ``show_bar``), and ``say(line)``: a message on
    stderr that keeps the bar intact."""
    from tqdm.auto import tqdm

    from models.scoring.archive import count_inputs

    bar = tqdm(total=count_inputs(images) if show_bar else None, unit="img", desc=desc, file=sys.stderr,
               disable=not show_bar, dynamic_ncols=True)

    def say(line: str) -> None:
        if show_bar:
            tqdm.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    return bar, say


def _clip_rows(detector, item, frames: int = 32, fps: float | None = None) -> list:
    """One clip's CSV rows (models.video), as the local engine writes them: run inside --engine ray's actors."""
    from models.video.score import score_video

    return score_video(detector, item, frames=frames, fps=fps, name=item.name).rows(detector.name)


def _score_ray(args) -> int:
    """--engine ray: the local engine's CSV (same header, rows, order and error rows), scored by Ray Data."""
    import functools

    from models.detectors.registry import ModelNotFoundError
    from models.scoring.archive import ArchiveLimitError
    from models.scoring.batch import Summary
    from models.scoring.distributed import score_csv_ray
    from models.video.inputs import is_video_item

    show_bar = not args.no_progress
    bar, say = _progress(args.images, show_bar, "scoring (ray)")

    summary, where = Summary(), "stdout" if args.csv == "-" else args.csv
    try:
        s = score_csv_ray(args.model, args.images, sys.stdout if args.csv == "-" else args.csv,
                          address=args.ray_address, actors=args.ray_actors, workers=args.workers, crop=args.crop,
                          batch_size=args.batch_size, progress=lambda n: bar.update(n - bar.n),
                          on_note=lambda item: say(f"note: {item.note}"), summary=summary, is_clip=is_video_item,
                          clip_rows=functools.partial(_clip_rows, frames=args.frames, fps=args.fps),
                          on_row=lambda row: row.error is not None and say(f"error: {row.error}"))
    except ModelNotFoundError as exc:
        say(f"error: {exc}")
        return 2
    except ArchiveLimitError as exc:
        say(f"error: {exc} (stopped; {summary.images:,} images written to {where} are kept)")
        return 2
    except KeyboardInterrupt:
        say(f"interrupted: {summary.images:,} images written to {where}")
        return 130
    finally:
        bar.close()
    say(f"{s['images']:,} images, {s['rows_scored']:,} scored ({s['fake']:,} fake, {s['real']:,} real), "
        f"{s['errors']:,} errors -> {where}")
    return 2 if s["errors"] else 0


def _print_image(score, detector, as_json: bool, out, say) -> None:
    """One image's lines: a JSON object (with its provenance and any conflict), or path, verdict and P(fake) per
    face, plus a note when what the file declares disagrees with the verdict."""
    from models.data.provenance import conflict
    from models.detectors.labels import verdict

    if as_json:
        row = score.to_dict()
        row["model"] = detector.name
        if row.get("provenance") is not None:
            row["provenance"]["conflict"] = conflict(row["provenance"], score.verdict)
        out(json.dumps(row))
        return
    if score.error:
        say(f"error: {score.error}")
        return
    out(f"{score.path}\t{score.verdict}\t{score.p_fake:.4f}")
    if disagree := conflict(score.provenance, score.verdict):
        say(f"note: {score.path}: {disagree} ({score.provenance['summary']})")
    for i, face in enumerate(score.faces[1:], start=2):
        out(f"{score.path}[face {i}]\t{verdict(face['p_fake'], score.threshold)}\t{face['p_fake']:.4f}")


def _print_video(result, detector, as_json: bool, out, say) -> None:
    """One clip: its JSON object, or a line for the clip (verdict, highest track P(fake)) and one per track."""
    if as_json:
        row = result.to_dict()
        row["model"] = detector.name
        out(json.dumps(row))
    elif result.error:
        say(f"error: {result.error}")
    else:
        p = "" if result.p_fake is None else f"{result.p_fake:.4f}"
        out(f"{result.path}\t{result.verdict}\t{p}")
        for t in result.tracks:
            label = f"unsure (leans {t.verdict})" if t.unsure else t.verdict
            out(f"{result.path}[track {t.track}]\t{label}\t{t.p_fake:.4f}\t"
                f"spread {t.spread:.4f} over {len(t.frames)} frames, {t.frames[0].time_s:.1f}-{t.frames[-1].time_s:.1f} s")


def _write_csv(detector, items, args, opts, say, close_bar) -> int:
    from models.scoring.archive import ArchiveLimitError
    from models.scoring.batch import Summary, write_csv
    from models.video.inputs import score_rows

    def reported(rows):
        for row in rows:
            if row.error is not None:
                say(f"error: {row.error}")
            yield row

    summary = Summary()
    target = sys.stdout if args.csv == "-" else args.csv
    where = "stdout" if args.csv == "-" else args.csv
    kept = []  # for --report: the rows (a few hundred bytes each, no pixels)

    def keep(rows):
        for row in rows:
            if args.report:
                kept.append(row)
            yield row

    try:
        write_csv(keep(reported(score_rows(detector, items, **opts))), target, summary=summary)
    except ArchiveLimitError as exc:
        say(f"error: {exc} (stopped; {summary.images:,} images written to {where} are kept)")
        return 2
    except KeyboardInterrupt:
        say(f"interrupted: {summary.images:,} images written to {where}")
        return 130
    s = summary.as_dict()
    close_bar()
    say(f"{s['images']:,} images, {s['rows_scored']:,} scored ({s['fake']:,} fake, {s['real']:,} real), "
        f"{s['errors']:,} errors -> {where}")
    if args.report:
        _write_report(detector, kept, args, say)
    return 2 if s["errors"] else 0


def _write_report(detector, rows, args, say) -> None:
    """The batch's HTML report: each explained face is cut again from its file (or zip member)."""
    from pathlib import Path

    from explain.report.batch import batch_report
    from models.scoring.batch import crop_loader
    from models.video.inputs import read_named  # images, and video rows' frames (clip.mp4#t=12.400)

    rows = [r for r in rows if r.error is not None or r.p_fake is not None]  # not a clip's "no face" row
    load = crop_loader(rows, read_named, size=128, recipe=detector.crop_recipe)

    html = batch_report([r.to_csv_dict() for r in rows], load, model=detector, top_n=args.top,
                        progress=lambda f, m="": None)
    Path(args.report).write_text(html, encoding="utf-8")
    say(f"report -> {args.report}")


if __name__ == "__main__":
    sys.exit(main())

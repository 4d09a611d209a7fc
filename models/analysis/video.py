"""What the Video page and the video report show about a scored clip (models.video.score.VideoResult), without
Streamlit: the timeline per track, a table of tracks, a one-line headline, and a sampled frame found again with the
tracked face numbered as the photo pages number faces (so Explain opens on that face)."""

from __future__ import annotations

import numpy as np

VERDICT_WORDS = {"fake": "Fake", "real": "Real", "unsure": "Unsure", "no face": "No face"}


def timeline_tracks(result) -> dict[int, tuple[list[float], list[float]]]:
    """Track number -> (times in seconds, P(fake) per sampled frame), for :func:`plots.timeline_figure`."""
    return {t.track: ([s.time_s for s in t.frames], [float(s.p_fake) for s in t.frames]) for t in result.tracks}


def track_label(track) -> str:
    """A track's verdict as shown: "fake", "real" or "unsure (leans fake|real)"."""
    return f"unsure (leans {track.verdict})" if track.unsure else track.verdict


def track_rows(result) -> list[dict]:
    """One dict per track: number, frames with a face, first and last seen (s), mean P(fake), spread across
    frames (standard deviation) and the verdict with the "unsure" rule."""
    return [{"track": t.track, "frames": len(t.frames), "from (s)": round(t.frames[0].time_s, 2),
             "to (s)": round(t.frames[-1].time_s, 2), "P(fake)": float(t.p_fake), "spread": round(float(t.spread), 3),
             "verdict": track_label(t)} for t in result.tracks]


def headline(result) -> str:
    """One sentence on the clip: its verdict and why (which track decided it), or its error."""
    if result.error:
        return result.error
    n = len(result.tracks)
    if result.verdict == "no face" or not n:
        return f"No face: no face was tracked in {result.frames_sampled} sampled frames, so there is no verdict."
    worst = max(result.tracks, key=lambda t: t.p_fake)
    people = f"{n} face track{'s' if n != 1 else ''}"
    if result.verdict == "fake":
        why = f"track {worst.track} is confidently fake (mean P(fake) {worst.p_fake:.2f} over {len(worst.frames)} frames)"
    elif result.verdict == "real":
        why = "every track is confidently real"
    else:
        unsure = [t.track for t in result.tracks if t.unsure]
        why = (f"track{'s' if len(unsure) != 1 else ''} {', '.join(map(str, unsure))} "
               f"{'is' if len(unsure) == 1 else 'are'} unsure" if unsure else "no track is confidently fake")
    return f"{VERDICT_WORDS.get(result.verdict, result.verdict)}: {people}; {why}."


def face_number(image: np.ndarray, box) -> int | None:
    """The 1-based number (largest face first, as the photo pages and the batch CSV number them) of the face in
    ``image`` that overlaps ``box`` (x, y, w, h) most; None when no face overlaps it."""
    from models.data.faces import detect_faces
    from models.video.tracks import iou

    faces = detect_faces(image)
    overlaps = [iou(f.box, box) for f in faces]
    if not overlaps or max(overlaps) <= 0.0:
        return None
    return int(np.argmax(overlaps)) + 1


def frame_at(source, time_s: float, box, name: str | None = None) -> tuple[np.ndarray, int | None]:
    """The sampled frame at ``time_s`` of a clip (a path or bytes), upright, and the number of the face at ``box``
    in it (:func:`face_number`): what Explain needs to open on that face."""
    from models.video.decode import read_frame

    frame = read_frame(source, time_s, name=name)
    return frame.image, face_number(frame.image, box)

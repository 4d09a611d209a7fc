"""Score image files with a detector in streamed batches: decode (models.intake), find and crop faces
(models.faces), predict. Bad files become error rows, never exceptions; the rest of a batch goes on."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from models.detector import THRESHOLD, Detector, verdict
from models.faces import NoFaceError, face_crops
from models.intake import ImageLoadError, load_image

CROP_MODES = ("auto", "face", "none")


@dataclass
class Score:
    """One input file: the largest face's verdict, every face's score, how it was cropped, or an error."""

    path: str
    p_fake: float | None = None
    error: str | None = None
    crop: str | None = None  # "face", "center" or "none"
    faces: list[dict] = field(default_factory=list)  # largest first: box [x, y, w, h], confidence, p_fake
    warnings: list[str] = field(default_factory=list)
    threshold: float = THRESHOLD  # the verdict threshold used: the detector's operating point

    @property
    def verdict(self) -> str | None:
        return None if self.p_fake is None else verdict(self.p_fake, self.threshold)

    def to_dict(self) -> dict:
        d = {"path": self.path, "verdict": self.verdict, "p_fake": self.p_fake, "threshold": self.threshold,
             "crop": self.crop, "faces": self.faces}
        if self.warnings:
            d["warnings"] = self.warnings
        if self.error is not None:
            d["error"] = self.error
        return d


def analyse(image: np.ndarray, mode: str = "auto", size: int = 128):
    """The crops a detector is given for a decoded image (see models.faces.face_crops)."""
    if mode not in CROP_MODES:
        raise ValueError(f"crop mode must be one of {', '.join(CROP_MODES)}, not {mode!r}")
    return face_crops(image, mode=mode, size=size)


def _load(path: str, mode: str, transform=None):
    try:
        image = load_image(path)
        if transform is not None:
            image = transform(image)
        crops, kind, warnings = analyse(image, mode)
        return crops, kind, warnings, None
    except (ImageLoadError, NoFaceError) as exc:
        message = str(exc) if isinstance(exc, ImageLoadError) else f"{path}: {exc}"
        return None, None, [], message


def score_paths(
    detector: Detector, paths: Iterable[str], batch_size: int = 64, workers: int = 4, progress=None,
    transform=None, crop: str = "auto",
) -> Iterator[Score]:
    """Yield one :class:`Score` per path, in order. Decoding and face detection run in threads; prediction
    runs on every crop of a chunk at once.

    ``crop``: "auto" (detect faces; centre square when none), "face" (a face is required) or "none" (the
    image is already a crop). Scores are the detector's calibrated P(fake); verdicts use its threshold
    (``detector.threshold``: the saved operating point). ``progress(n_done)`` is called after each chunk;
    ``transform`` is applied to each decoded image first (e.g. a :mod:`models.perturb` perturbation).
    """
    if crop not in CROP_MODES:
        raise ValueError(f"crop mode must be one of {', '.join(CROP_MODES)}, not {crop!r}")
    paths = list(paths)
    threshold = float(getattr(detector, "threshold", THRESHOLD))
    done = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            loaded = list(pool.map(lambda p: _load(p, crop, transform), chunk))
            images = [img for crops, *_ in loaded if crops for _face, img in crops]
            probs = iter(detector.predict(images)) if images else iter(())
            for path, (crops, kind, warnings, error) in zip(chunk, loaded):
                if error is not None:
                    yield Score(path, error=error, threshold=threshold)
                    continue
                faces = []
                first = None
                for face, _img in crops:
                    p = float(next(probs))
                    first = p if first is None else first
                    if face is not None:
                        faces.append({"box": list(face.box), "confidence": round(face.confidence, 4), "p_fake": p})
                yield Score(path, p_fake=first, crop=kind, faces=faces, warnings=list(warnings), threshold=threshold)
            done += len(chunk)
            if progress is not None:
                progress(done)

"""Score image files with a detector in streamed batches; bad files become error rows, not exceptions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from models.detector import Detector, verdict
from models.intake import ImageLoadError, load_image
from models.preprocess import center_square


@dataclass
class Score:
    path: str
    p_fake: float | None = None
    error: str | None = None

    @property
    def verdict(self) -> str | None:
        return None if self.p_fake is None else verdict(self.p_fake)

    def to_dict(self) -> dict:
        d = {"path": self.path, "verdict": self.verdict, "p_fake": self.p_fake}
        if self.error is not None:
            d["error"] = self.error
        return d


def prepare(image: np.ndarray) -> np.ndarray:
    """What a detector is given for a whole image: its centre square (a no-op on square face crops)."""
    return center_square(image)


def _load(path: str, transform=None):
    try:
        image = load_image(path)
        if transform is not None:
            image = transform(image)
        return prepare(image), None
    except ImageLoadError as exc:
        return None, str(exc)


def score_paths(
    detector: Detector, paths: Iterable[str], batch_size: int = 64, workers: int = 4, progress=None, transform=None
) -> Iterator[Score]:
    """Yield one :class:`Score` per path, in order. Decoding runs in threads; prediction in batches.

    ``progress`` is an optional callable ``progress(n_done)`` called after each batch; ``transform`` an
    optional function applied to each decoded image (e.g. a :mod:`models.perturb` perturbation).
    """
    paths = list(paths)
    done = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            loaded = list(pool.map(lambda p: _load(p, transform), chunk))
            ok = [i for i, (img, _) in enumerate(loaded) if img is not None]
            probs = detector.predict([loaded[i][0] for i in ok]) if ok else []
            p_by_index = dict(zip(ok, probs))
            for i, path in enumerate(chunk):
                if i in p_by_index:
                    yield Score(path, p_fake=float(p_by_index[i]))
                else:
                    yield Score(path, error=loaded[i][1])
            done += len(chunk)
            if progress is not None:
                progress(done)

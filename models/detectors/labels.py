"""Label convention, in one place: fake = 1, every score is P(fake), verdict "fake" at P(fake) >= THRESHOLD."""

THRESHOLD = 0.5


def threshold_of(metadata: dict | None) -> float:
    """A model's verdict threshold from its metadata: the saved operating point, else THRESHOLD."""
    op = (metadata or {}).get("operating_point") or {}
    return THRESHOLD if op.get("threshold") is None else float(op["threshold"])


def verdict(p_fake: float, threshold: float = THRESHOLD) -> str:
    return "fake" if p_fake >= threshold else "real"


def unsure_mask(p_fake, spread, threshold: float, delta: float, epsilon: float):
    """Bool array (a 0-d one for scalars): unsure when ``spread > delta`` or ``|p_fake - threshold| < epsilon``."""
    import numpy as np

    p = np.asarray(p_fake, dtype=np.float64)
    s = np.asarray(spread, dtype=np.float64)
    return (s > float(delta)) | (np.abs(p - float(threshold)) < float(epsilon))


def unsure_label(verdict_: str) -> str:
    """What the pages show beside an unsure verdict: "unsure (leans fake)" or "unsure (leans real)"."""
    return f"unsure (leans {verdict_})"

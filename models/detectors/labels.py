"""Label convention, in one place: fake = 1, every score is P(fake), verdict "fake" at P(fake) >= THRESHOLD."""

THRESHOLD = 0.5


def threshold_of(metadata: dict | None) -> float:
    """A model's verdict threshold from its metadata: the saved operating point, else THRESHOLD."""
    op = (metadata or {}).get("operating_point") or {}
    return THRESHOLD if op.get("threshold") is None else float(op["threshold"])


def verdict(p_fake: float, threshold: float = THRESHOLD) -> str:
    return "fake" if p_fake >= threshold else "real"

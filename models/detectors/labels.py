"""Label convention, in one place: fake = 1, every score is P(fake), verdict "fake" at P(fake) >= THRESHOLD."""

THRESHOLD = 0.5


def verdict(p_fake: float, threshold: float = THRESHOLD) -> str:
    return "fake" if p_fake >= threshold else "real"

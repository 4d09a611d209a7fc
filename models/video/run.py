"""A clip scored in a thread of its own, for a page: progress to poll, a cancel that keeps what was scored, and
the report made from the result, all kept across the page's reruns (Streamlit session state)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from models.video.score import VideoResult, score_video


@dataclass
class VideoRun:
    """The clip being scored (or scored) for ``key`` (its bytes' hash, model, sampling), kept across reruns. The
    scoring runs in a thread of its own, so that a click (Cancel) reruns the page without losing the frames
    already scored: the thread sees the cancel at the next frame and finishes with what it has."""

    key: tuple
    status: str = "running"  # running, cancelled, done
    result: VideoResult | None = None
    report: str | None = field(default=None, repr=False)
    want_report: bool = False
    fraction: float = 0.0
    text: str = "Decoding and finding faces…"
    thread: threading.Thread | None = field(default=None, repr=False)

    def start(self, detector, data: bytes, *, frames: int, fps: float | None, name: str) -> None:
        """Score ``data`` (a clip's bytes) with ``detector`` in a daemon thread; poll :attr:`busy`,
        :attr:`fraction` and :attr:`text`; :meth:`cancel` stops it at the next frame."""
        def work():
            try:
                self.result = score_video(detector, data, frames=frames, fps=fps, name=name, keep_crops=True,
                                          progress=self._progress, cancel=lambda: self.status != "running")
            except Exception as exc:  # never leave the page without a result: one line instead
                self.result = VideoResult(name, error=f"{name}: cannot score the video ({type(exc).__name__}: "
                                                      f"{' '.join(str(exc).split())})")

        self.thread = threading.Thread(target=work, name="video-score", daemon=True)
        self.thread.start()

    def _progress(self, fraction: float, text: str) -> None:
        self.fraction, self.text = min(1.0, float(fraction)), text

    @property
    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def cancel(self) -> None:
        if self.status == "running":
            self.status = "cancelled"

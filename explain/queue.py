"""A bounded, explicit queue for explanations shared by every session of one server.

On a small machine eight people pressing "Explain" at once would otherwise all slow down together (each LIME run
takes both cores). Instead, at most ``slots`` explanation phases run at a time, the rest wait in order, each told
its place ("waiting for 3 others"), and beyond ``max_waiting`` a newcomer gets a one-line :class:`Busy` at once
rather than an unbounded wait. Quick work goes first: a lower ``priority`` (the Explain page's first phase, the
Summary, about 0.5 s) is served before a higher one (its second phase, LIME, a few seconds), then first come,
first served.

A :class:`Slot` is taken lazily: only when a step actually has to compute (a cache miss), so revisiting an image
already explained never waits behind anyone.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

SLOTS = int(os.environ.get("DEEPFAKE_EXPLAIN_SLOTS", "1"))  # phases running at once (2 cores: one at a time)
MAX_WAITING = int(os.environ.get("DEEPFAKE_EXPLAIN_QUEUE", "16"))  # waiting phases beyond which newcomers are told


class Busy(RuntimeError):
    """The queue is full: one plain line to show instead of waiting."""


@dataclass(order=True)
class _Ticket:
    priority: int
    number: int
    done: bool = field(default=False, compare=False)


class WorkQueue:
    """At most ``slots`` holders at a time; waiters served by (priority, arrival); at most ``max_waiting`` waiters."""

    def __init__(self, slots: int = SLOTS, max_waiting: int = MAX_WAITING):
        if slots < 1 or max_waiting < 0:
            raise ValueError("a queue needs at least one slot and a waiting bound >= 0")
        self.slots, self.max_waiting = int(slots), int(max_waiting)
        self._cond = threading.Condition()
        self._running = 0
        self._waiting: list[_Ticket] = []
        self._numbers = itertools.count()

    def state(self) -> tuple[int, int]:
        """(running, waiting) right now."""
        with self._cond:
            return self._running, len(self._waiting)

    def acquire(self, priority: int = 0, on_wait: Callable[[int], None] | None = None, poll: float = 0.5) -> None:
        """Block until a slot is free and it is this caller's turn. ``on_wait(ahead)`` is called (outside the lock)
        each ``poll`` seconds while waiting, with the number of phases running or queued ahead. Raises :class:`Busy`
        when ``max_waiting`` others already wait. Anything raised inside ``on_wait`` (a page rerun) gives the place
        up and propagates."""
        with self._cond:
            if self._running < self.slots and not self._waiting:
                self._running += 1
                return
            if len(self._waiting) >= self.max_waiting:
                raise Busy(f"The server is busy: {len(self._waiting)} explanations are already waiting. "
                           "Try again in a minute.")
            ticket = _Ticket(int(priority), next(self._numbers))
            self._waiting.append(ticket)
            self._waiting.sort()
        try:
            while True:
                with self._cond:
                    if self._running < self.slots and self._waiting[0] is ticket:
                        self._waiting.pop(0)
                        self._running += 1
                        return
                    ahead = self._running + self._waiting.index(ticket)
                if on_wait is not None:
                    on_wait(ahead)
                with self._cond:
                    self._cond.wait(poll)
        except BaseException:
            with self._cond:
                if ticket in self._waiting:
                    self._waiting.remove(ticket)
                self._cond.notify_all()
            raise

    def release(self) -> None:
        with self._cond:
            if self._running <= 0:
                raise RuntimeError("release without acquire")
            self._running -= 1
            self._cond.notify_all()

    def slot(self, priority: int = 0, on_wait: Callable[[int], None] | None = None) -> Slot:
        return Slot(self, priority, on_wait)


class Slot:
    """A place in a :class:`WorkQueue` taken on the first :meth:`ensure` (a step that must compute) and given back
    on :meth:`release` or leaving the ``with`` block; :meth:`guard` wraps a cache's compute function."""

    def __init__(self, queue: WorkQueue, priority: int = 0, on_wait: Callable[[int], None] | None = None):
        self.queue, self.priority, self.on_wait = queue, priority, on_wait
        self.held = False

    def ensure(self) -> None:
        if not self.held:
            self.queue.acquire(self.priority, self.on_wait)
            self.held = True

    def guard(self, compute: Callable):
        """``compute`` that first takes the slot (waiting its turn) when it has to run."""

        def run():
            self.ensure()
            return compute()

        return run

    def release(self) -> None:
        if self.held:
            self.held = False
            self.queue.release()

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


SHARED = WorkQueue()  # the one queue of this server process (the Explain page's phases)

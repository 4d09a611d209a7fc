"""explain.queue: the bounded explanation queue shared by a server's sessions (threads, no timing)."""

from __future__ import annotations

import threading

import pytest

from explain.queue import Busy, WorkQueue


def waiter(queue: WorkQueue, priority: int, order: list, name: str, seen: dict, started: threading.Event):
    def on_wait(ahead: int) -> None:
        seen.setdefault(name, []).append(ahead)
        started.set()

    def run():
        with queue.slot(priority, on_wait) as slot:
            slot.ensure()
            order.append(name)

    t = threading.Thread(target=run)
    t.start()
    return t


def test_waiters_are_served_by_priority_then_arrival_and_told_their_place():
    q = WorkQueue(slots=1, max_waiting=8)
    q.acquire()  # someone holds the only slot
    order, seen, threads = [], {}, []
    for name, priority in (("lime-1", 1), ("lime-2", 1), ("summary", 0)):
        started = threading.Event()
        threads.append(waiter(q, priority, order, name, seen, started))
        assert started.wait(10)  # it is waiting (and was told so) before the next one arrives
    assert q.state() == (1, 3)
    assert seen["lime-1"][0] == 1 and seen["lime-2"][0] == 2  # one running ahead, then lime-1 too
    q.release()
    for t in threads:
        t.join(10)
    assert order == ["summary", "lime-1", "lime-2"]  # the quick phase jumps the LIME phases
    assert q.state() == (0, 0)


def test_a_full_queue_says_busy_at_once_and_a_free_slot_never_waits():
    q = WorkQueue(slots=1, max_waiting=1)
    calls = []
    with q.slot(on_wait=calls.append) as slot:  # free: taken at once, on_wait never called
        slot.ensure()
    assert calls == [] and q.state() == (0, 0)
    q.acquire()
    started = threading.Event()
    t = waiter(q, 0, [], "w", {}, started)
    assert started.wait(10)
    with pytest.raises(Busy, match="1 explanations are already waiting"):
        q.acquire()
    q.release()
    t.join(10)
    assert q.state() == (0, 0)


def test_a_waiter_interrupted_gives_its_place_up():
    q = WorkQueue(slots=1, max_waiting=4)
    q.acquire()

    class Rerun(BaseException):
        pass

    def on_wait(_ahead):
        raise Rerun  # what a Streamlit rerun does inside a progress update

    with pytest.raises(Rerun):
        q.acquire(on_wait=on_wait)
    assert q.state() == (1, 0)
    q.release()


def test_a_slot_is_only_taken_when_a_step_has_to_compute():
    q = WorkQueue(slots=1)
    q.acquire()  # busy: a cached step must still run at once
    slot = q.slot()
    cache = {"hit": 1}

    def cached(key, compute):
        return cache[key] if key in cache else compute()

    assert cached("hit", slot.guard(lambda: 2)) == 1 and not slot.held
    q.release()
    assert cached("miss", slot.guard(lambda: 3)) == 3 and slot.held and q.state() == (1, 0)
    slot.release()
    assert q.state() == (0, 0)
    with pytest.raises(RuntimeError):
        q.release()

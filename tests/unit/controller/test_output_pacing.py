"""Pacing a container's output to its reader: the attach thread waits while it is more than the
window ahead, goes on once the reader catches up, and never waits for good (a stalled reader,
a closed pacer)."""

from __future__ import annotations

import threading
import time

from ci_controller.docker.output_pacing import OutputPacer

KIB = 1024


def attach_in_thread(pacer: OutputPacer, size: int) -> threading.Event:
    """`pacer.attached(size)` in a thread; the event is set once it returned."""
    returned = threading.Event()

    def attach() -> None:
        pacer.attached(size)
        returned.set()

    threading.Thread(target=attach, daemon=True).start()
    return returned


def test_within_the_window_the_container_prints_on() -> None:
    pacer = OutputPacer(window_bytes=64 * KIB, stall_seconds=30)

    assert attach_in_thread(pacer, 64 * KIB).wait(5)
    assert pacer.ahead == 64 * KIB


def test_past_the_window_it_waits_until_the_reader_takes_enough() -> None:
    pacer = OutputPacer(window_bytes=64 * KIB, stall_seconds=30)
    returned = attach_in_thread(pacer, 100 * KIB)

    assert not returned.wait(0.2)
    pacer.taken(20 * KIB)  # 80 KiB ahead: still past the window
    assert not returned.wait(0.2)
    pacer.taken(16 * KIB)  # 64 KiB ahead
    assert returned.wait(5)


def test_a_reader_that_takes_nothing_lets_the_job_run_free_until_it_moves() -> None:
    pacer = OutputPacer(window_bytes=64 * KIB, stall_seconds=0.3)
    started = time.monotonic()

    assert attach_in_thread(pacer, 100 * KIB).wait(5)
    assert time.monotonic() - started >= 0.3
    assert attach_in_thread(pacer, 100 * KIB).wait(0.2)  # still stalled: no wait at all

    pacer.taken(KIB)  # it moves, 199 KiB behind: pacing again
    assert not attach_in_thread(pacer, KIB).wait(0.1)


def test_a_reader_that_keeps_taking_is_waited_for_past_the_stall_time() -> None:
    pacer = OutputPacer(window_bytes=64 * KIB, stall_seconds=1.0)
    returned = attach_in_thread(pacer, 64 * KIB + 10 * KIB)
    for _ in range(6):  # 1.2 s in all, never 1 s without taking something
        assert not returned.wait(0.2)
        pacer.taken(KIB)

    assert not returned.is_set()
    pacer.taken(4 * KIB)
    assert returned.wait(5)


def test_closing_releases_a_waiting_attach_thread() -> None:
    pacer = OutputPacer(window_bytes=64 * KIB, stall_seconds=30)
    returned = attach_in_thread(pacer, 100 * KIB)
    assert not returned.wait(0.1)

    pacer.close()

    assert returned.wait(5)


def test_pace_counts_a_stream_until_it_ends_or_the_pacer_closes() -> None:
    pacer = OutputPacer(window_bytes=64 * KIB, stall_seconds=30)
    pacer.pace([b"x" * KIB] * 10)
    assert pacer.ahead == 10 * KIB

    pacer.close()
    pacer.pace([b"x" * 100 * KIB] * 10)  # closed: returns after the first, without waiting
    assert pacer.ahead == 110 * KIB

"""Holding a job back to the pace at which the controller takes its output.

Docker writes a container's output to its log file as fast as the container prints, and the
controller reads that file back (`logs`). A job that prints faster than the controller takes
(18 MB in half a second) leaves a backlog in the file, and every line behind it reaches the
followers later: the lag grows for as long as the job prints (to 300 ms for 18 MB on two
cores, the log's whole length for a job that never stops). Under `docker run` it cannot grow:
the engine hands output to an attached client through a buffer that blocks the container
once 1 MB waits in it (Docker's `BytesPipe`), so the client's reading sets the job's pace.

So the controller attaches as well, only to pace. A thread reads the attach stream and counts
its bytes (`attached`), and stops reading while it is more than `WINDOW_BYTES` ahead of what
the log reader has taken (`taken`): the container then waits in `write`, and no line is more
than the window (plus Docker's buffers) behind. The output itself still comes from the log,
whose positions make a restart exact; the attach stream carries the same bytes, so the two
counts meet, and they are only counted.

Pacing never holds a job for good. A reader that takes nothing for `STALL_SECONDS` (a database
held locked, say) lets the job run free until it moves again; a stream that fails ends the
pacing, not the job; and with no controller attached (killed, restarting) a job prints at full
speed into its log file, which the next controller reads from its cursor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

logger = logging.getLogger(__name__)

WINDOW_BYTES = 128 * 1024
"""How far the attach stream may run ahead of the reader. Docker's own buffers come on top
(its 1 MB `BytesPipe` and the socket's), so the window need not be large to keep the job
going while a batch is stored; with 128 KiB the followers' p99 latency under an 18 MB log
was ~180 ms against ~230 ms with 512 KiB, and the job took no longer."""
STALL_SECONDS = 1.0


class OutputPacer:
    """Counts what the container printed and what the reader took; one per followed stream.

    `attached` is called by the attach thread and blocks; `taken`, by the reader, does not."""

    def __init__(
        self, *, window_bytes: int = WINDOW_BYTES, stall_seconds: float = STALL_SECONDS
    ) -> None:
        self._window_bytes = window_bytes
        self._stall_seconds = stall_seconds
        self._changed = threading.Condition()
        self._attached = 0
        self._taken = 0
        self._free_while_taken: int | None = None
        """The count at which the reader stalled: the job runs free until `taken` moves."""
        self._closed = False

    @property
    def ahead(self) -> int:
        """Bytes printed that the reader has not taken yet (as far as the attach stream saw)."""
        with self._changed:
            return self._attached - self._taken

    def taken(self, size: int) -> None:
        with self._changed:
            self._taken += size
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def attached(self, size: int) -> None:
        """`size` more bytes were printed: return once the reader is within the window again,
        or has stalled, or the pacer is closed."""
        with self._changed:
            self._attached += size
            seen, moved_at = self._taken, time.monotonic()
            while not self._closed and self._attached - self._taken > self._window_bytes:
                if self._taken == self._free_while_taken:
                    return
                now = time.monotonic()
                if self._taken != seen:
                    seen, moved_at = self._taken, now
                left = moved_at + self._stall_seconds - now
                if left <= 0:
                    self._free_while_taken = self._taken
                    logger.info(
                        "the log reader took nothing for %.1f s; the job prints unpaced until "
                        "it does",
                        self._stall_seconds,
                    )
                    return
                self._changed.wait(left)

    def pace(self, stream: Iterable[bytes]) -> None:
        """Count `stream` (the container's attached output) until it ends or the pacer closes."""
        for data in stream:
            self.attached(len(data))
            if self._closed:
                return

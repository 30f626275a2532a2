"""One job's log as the controller writes it: batched chunks, each with its cursor, and a cap.

Output is stored in chunks, flushed 50 ms after the first unflushed byte or once 256 KiB are
waiting, so a reader sees a line within a fraction of a second while a chatty job costs one
transaction per batch, not one per line. A job printing as fast as it can fills 256 KiB in
~20 ms, well inside the 50 ms; smaller batches only cost more transactions (with 64 KiB, the
aiosqlite round trips of ~280 transactions per 18 MB were about a fifth of the controller's
CPU, which under saturation is CPU the pipeline lacks to keep up with the job).

Each chunk is written together with the `LogPosition` of its last container frame
(`repo.append_log(…, cursor=…)`): what the database holds and where to resume are one fact,
so a controller killed at any instant resumes without losing or repeating a line. And each is
written only while the log's last chunk is still the one this writer stored last (`after_seq`),
so two controllers following one job (one that lost its lock and has not noticed yet) never
both store a chunk: the one that finds the log moved stops (`ConcurrentWriterError`).

Lines the controller itself adds (dependency installation, cancellation, errors) start with
`[ci] ` and carry no cursor. Past `max_bytes` of stored output one truncation note is stored
and later output is dropped while the job goes on; the note is how a restarted controller
knows the log was truncated already.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging

from ci_common.models import Job, JobId
from ci_common.repository import JobRepository
from ci_controller.log_cursor import LogPosition
from ci_controller.runtime import LogFrame

logger = logging.getLogger(__name__)

FLUSH_AFTER_SECONDS = 0.05
FLUSH_AT_BYTES = 256 * 1024
NOTE_PREFIX = "[ci] "
TRUNCATION_NOTE = NOTE_PREFIX + "log truncated at {mib:g} MiB (CI_MAX_LOG_MB); the job goes on, "
TRUNCATION_MARK = NOTE_PREFIX + "log truncated at "


class JobLog:
    """Buffers one job's output and stores it in order; one writer per job."""

    def __init__(
        self,
        *,
        repo: JobRepository,
        job_id: JobId,
        max_bytes: int,
        stored_bytes: int = 0,
        last_seq: int | None = None,
    ) -> None:
        self._repo = repo
        self._job_id = job_id
        self._max_bytes = max_bytes
        self._stored_bytes = stored_bytes
        self._last_seq = last_seq
        """The seq of the last chunk stored, known to this writer: each append is made only
        while it still is (`append_log(after_seq=…)`), so a second writer of the same job
        (see `ConcurrentWriterError`) can never double a line. None: unchecked."""
        self._truncated = False
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._storing_bytes = 0
        """The batch being written: neither pending nor stored, yet counted against the cap
        (a timer's flush runs beside `add_frame`)."""
        self._position: LogPosition | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._at_line_start = True
        """Whether the stored output ends with a newline, so a note starts a line of its own."""

    @classmethod
    async def resume(
        cls, *, repo: JobRepository, job: Job, max_bytes: int, fenced: bool = True
    ) -> JobLog:
        """The log of a job that may have stored output already (an adopted job), as `job`
        says it is. `fenced=False` for a note from outside the job's own writer (a job whose
        engine was lost): it is stored whatever was appended since, and fences that writer."""
        log = cls(
            repo=repo,
            job_id=job.id,
            max_bytes=max_bytes,
            stored_bytes=job.log_bytes,
            last_seq=job.last_log_seq if fenced else None,
        )
        if job.last_log_seq > 0:
            last = await repo.read_logs(job.id, after_seq=job.last_log_seq - 1)
            log._truncated = bool(last) and last[-1].data.lstrip("\n").startswith(TRUNCATION_MARK)
            log._at_line_start = not last or last[-1].data.endswith("\n")
        return log

    @property
    def truncated(self) -> bool:
        return self._truncated

    async def add_frame(self, frame: LogFrame) -> None:
        """Container output: stored with its position, unless past the cap."""
        if self._truncated:
            return
        text = self._decoder.decode(frame.data)
        size = len(text.encode())
        if self._stored_bytes + self._storing_bytes + self._pending_bytes + size > self._max_bytes:
            await self._truncate(frame.position)
            return
        self._buffer(text, size)
        self._position = frame.position
        await self._schedule_flush()

    async def add_text(self, text: str) -> None:
        """Output that is not the job container's (a dependency build): no position."""
        if self._truncated or not text:
            return
        self._buffer(text, len(text.encode()))
        await self._schedule_flush()

    async def note(self, message: str) -> None:
        """A line from the controller, stored after everything before it."""
        await self.flush()
        await self._append(self._note_line(message), cursor=None)

    async def flush(self) -> None:
        async with self._lock:
            await self._flush_locked()

    async def close(self) -> None:
        """Store what is pending; the log is complete after this returns.

        Cancelling the timer interrupts at most its sleep: its flush runs shielded, so a write
        in flight finishes (holding the lock) and the flush below waits for it."""
        timer, self._timer = self._timer, None
        if timer is not None and not timer.done():
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        await self.flush()

    def _buffer(self, text: str, size: int) -> None:
        self._pending.append(text)
        self._pending_bytes += size

    async def _schedule_flush(self) -> None:
        if self._pending_bytes >= FLUSH_AT_BYTES:
            await self.flush()
        elif self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        """Store what is pending shortly, and again for as long as output came in while a
        store was in flight: `_schedule_flush` starts no timer while this one runs, so without
        the loop that output would wait for the job's next output."""
        while True:
            await asyncio.sleep(FLUSH_AFTER_SECONDS)
            if not await asyncio.shield(self._flush_logging_failure()) or not self._pending:
                return

    async def _flush_logging_failure(self) -> bool:
        """Whether the flush stored what was pending."""
        try:
            await self.flush()
        except Exception:
            logger.exception("job %s: storing log output failed; will retry", self._job_id)
            return False
        return True

    async def _flush_locked(self) -> None:
        if not self._pending:
            return
        # Take the batch before awaiting: frames keep arriving while the write is in flight.
        text, size, position = "".join(self._pending), self._pending_bytes, self._position
        self._pending, self._pending_bytes, self._position = [], 0, None
        self._storing_bytes = size
        try:
            await self._append(text, cursor=position.encode() if position else None)
        except asyncio.CancelledError:
            # Repository writes run to completion before a cancellation arrives, so the batch
            # is stored; and if it failed, its cursor did not move and the next controller
            # reads those frames again. Keeping it would store it twice.
            raise
        except Exception:
            self._pending.insert(0, text)
            self._pending_bytes += size
            self._position = self._position or position
            raise
        finally:
            self._storing_bytes = 0

    async def _append(self, text: str, *, cursor: str | None) -> None:
        chunk = await self._repo.append_log(
            self._job_id, text, cursor=cursor, after_seq=self._last_seq
        )
        if self._last_seq is not None:
            self._last_seq = chunk.seq
        self._stored_bytes += len(text.encode())
        self._at_line_start = text.endswith("\n")

    def _note_line(self, message: str) -> str:
        """`[ci] message` as a whole line, after a line break if output stopped mid-line."""
        start = "" if self._at_line_start else "\n"
        return start + NOTE_PREFIX + message.rstrip("\n") + "\n"

    async def _truncate(self, position: LogPosition) -> None:
        async with self._lock:
            await self._flush_locked()
            mib = self._max_bytes / (1024 * 1024)
            note = TRUNCATION_NOTE.format(mib=mib) + "further output is not stored"
            await self._append(
                self._note_line(note.removeprefix(NOTE_PREFIX)), cursor=position.encode()
            )
            self._truncated = True
            logger.info("job %s: log reached %g MiB; truncated", self._job_id, mib)

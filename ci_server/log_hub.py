"""One watcher per server process that turns database changes into events for followers.

Many clients may follow the same job. Asking the database on their behalf one by one would
cost a query per follower per tick, so a single task does the asking for all of them:

- every `poll_interval` it reads `change_counter()` (SQLite's `data_version`, one cheap
  pragma); only when that moved, or when `full_check_interval` has passed, does it read the
  followed jobs (one `get_jobs` query) and, for each job whose `last_log_seq` grew, the new
  chunks (per job, not per follower, in pages of bounded size: `log_pages`);
- likewise for new per-test results (`tests_reported` grew), broadcast as `TestBatch`es after
  the chunks of the same look;
- it encodes each chunk as an SSE message once and puts the same bytes on every follower's
  queue, with `JobStarted` before and `JobFinished` after the chunks when the status moved;
- the full check exists because `data_version` does not move for this process's own writes
  (a cancel); `poke()` asks for a check at once after such a write;
- where the database pushes changes (PostgreSQL's NOTIFY, wired in `application`),
  `job_changed(job_id)` wakes it for a followed job and, while that feed is live
  (`changes_pushed(True)`), it polls only every `full_check_interval`.

The hub delivers every chunk with `seq > Follower.start_seq`; a follower that wants older
chunks reads them itself once, on subscribing. A follower whose queue overflows (a client
that stopped reading) gets a `Resync` instead of more chunks and catches up from the
database a page at a time, so a slow client costs memory bounded by `queue_limit` updates and
`queue_limit_bytes` of encoded chunks, not by the log's size. The batches are shared, so the
followers of one job together hold at most one queue's worth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from bisect import bisect_right
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

from ci_common.api import LogEvent
from ci_common.models import Job, JobId, JobStatus, LogChunk
from ci_common.repository import JobResultsRepository
from ci_server.log_pages import LOG_PAGE_BYTES, log_pages
from ci_server.test_events import TestBatch, result_batches

logger = logging.getLogger(__name__)

ERROR_BACKOFF_SECONDS = 1.0
QUEUE_LIMIT_BYTES = 16 * LOG_PAGE_BYTES


def encode_chunk(chunk: LogChunk) -> bytes:
    """A chunk as one SSE message: `id: <seq>` and the `LogEvent` JSON as `data:`.

    The same bytes `ServerSentEvent.encode` makes, without its search of the payload for line
    breaks: JSON has none (they are escaped in strings), and for 64 KiB chunks that search was
    a third of the server's work streaming a verbose log."""
    payload = LogEvent(seq=chunk.seq, data=chunk.data).model_dump_json()
    return f"id: {chunk.seq}\r\ndata: {payload}\r\n\r\n".encode()


def encode_chunks(chunks: Sequence[LogChunk]) -> bytes:
    return b"".join(encode_chunk(chunk) for chunk in chunks)


@dataclass(frozen=True)
class ChunkBatch:
    """New chunks of one job, in order, SSE-encoded into one buffer (`starts[i]` is where
    chunk `seqs[i]` begins in `joined`)."""

    seqs: tuple[int, ...]
    starts: tuple[int, ...]
    joined: bytes

    @classmethod
    def of(cls, chunks: Sequence[LogChunk]) -> ChunkBatch:
        encoded = [encode_chunk(chunk) for chunk in chunks]
        return cls(
            seqs=tuple(chunk.seq for chunk in chunks),
            starts=tuple(accumulate((len(message) for message in encoded[:-1]), initial=0)),
            joined=b"".join(encoded),
        )

    def after(self, seq: int) -> bytes:
        """The encoded chunks with a sequence number above `seq`."""
        index = bisect_right(self.seqs, seq)
        if index == 0:
            return self.joined
        return self.joined[self.starts[index] :] if index < len(self.seqs) else b""

    @property
    def size(self) -> int:
        return len(self.joined)

    @property
    def last_seq(self) -> int:
        return self.seqs[-1]


@dataclass(frozen=True)
class JobStarted:
    """The followed job left the queue (sent before the first chunks it printed)."""


@dataclass(frozen=True)
class JobFinished:
    """The followed job completed (sent after its last chunks); `job` is the final row."""

    job: Job


@dataclass(frozen=True)
class Resync:
    """The follower fell behind and lost queued updates: re-read from the database."""


HubUpdate = ChunkBatch | TestBatch | JobStarted | JobFinished | Resync


@dataclass(eq=False)
class Follower:
    """One subscriber's inbox. `start_seq`/`status` are the hub's view when it subscribed.

    The inbox holds at most `max_updates` updates and `max_bytes` of encoded chunks; an update
    that would pass either replaces everything queued by one `Resync`."""

    job_id: JobId
    start_seq: int
    status: JobStatus
    max_updates: int
    max_bytes: int
    queue: asyncio.Queue[HubUpdate] = field(default_factory=asyncio.Queue[HubUpdate])
    queued_bytes: int = 0
    start_test: int = 0
    """The last test result the hub had handed out when this follower joined."""

    async def next(self) -> HubUpdate:
        update = await self.queue.get()
        if isinstance(update, ChunkBatch | TestBatch):
            self.queued_bytes -= update.size
        return update

    def deliver(self, update: HubUpdate) -> None:
        size = update.size if isinstance(update, ChunkBatch | TestBatch) else 0
        if self.queue.qsize() < self.max_updates and self.queued_bytes + size <= self.max_bytes:
            self.queue.put_nowait(update)
            self.queued_bytes += size
            return
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(Resync())
        self.queued_bytes = 0


@dataclass(eq=False)
class _FollowedJob:
    cursor: int
    status: JobStatus
    test_cursor: int
    followers: set[Follower] = field(default_factory=set[Follower])

    def broadcast(self, update: HubUpdate) -> None:
        for follower in self.followers:
            follower.deliver(update)


class LogHub:
    """Watches the followed jobs of this process; start with `async with hub:`."""

    def __init__(
        self,
        repo: JobResultsRepository,
        *,
        poll_interval: float = 0.02,
        full_check_interval: float = 1.0,
        queue_limit: int = 256,
        queue_limit_bytes: int = QUEUE_LIMIT_BYTES,
    ) -> None:
        self._repo = repo
        self._poll_interval = poll_interval
        self._full_check_interval = full_check_interval
        self._queue_limit = queue_limit
        self._queue_limit_bytes = queue_limit_bytes
        self._jobs: dict[JobId, _FollowedJob] = {}
        self._wake = asyncio.Event()
        self._pushed = False
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LogHub:
        self._task = asyncio.create_task(self._run(), name="log-hub")
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def followed_jobs(self) -> int:
        return len(self._jobs)

    @property
    def followers(self) -> int:
        return sum(len(job.followers) for job in self._jobs.values())

    def delivered_seq(self, job_id: JobId) -> int | None:
        """The last chunk handed to `job_id`'s followers, or None if nobody follows it."""
        followed = self._jobs.get(job_id)
        return None if followed is None else followed.cursor

    def poke(self) -> None:
        """This process wrote something followers may care about: check now."""
        self._wake.set()

    def job_changed(self, job_id: JobId) -> None:
        """The database says `job_id` changed: check now if anyone here follows it."""
        if job_id in self._jobs:
            self._wake.set()

    def changes_pushed(self, live: bool) -> None:
        """Changes are pushed (`job_changed`) from now on, or no longer: poll only as a
        safety net, or every `poll_interval` again. Checks at once either way."""
        self._pushed = live
        self._wake.set()

    @contextlib.asynccontextmanager
    async def follow(self, job: Job) -> AsyncGenerator[Follower]:
        """Subscribe to `job` (as just read) for as long as the block runs."""
        followed = self._jobs.get(job.id)
        if followed is None:
            followed = _FollowedJob(
                cursor=job.last_log_seq, status=job.status, test_cursor=job.tests_reported
            )
            self._jobs[job.id] = followed
            # The snapshot may be older than the hub's last look at the database.
            self.poke()
        follower = Follower(
            job_id=job.id,
            start_seq=followed.cursor,
            status=followed.status,
            start_test=followed.test_cursor,
            max_updates=self._queue_limit,
            max_bytes=self._queue_limit_bytes,
        )
        followed.followers.add(follower)
        try:
            yield follower
        finally:
            followed.followers.discard(follower)
            if not followed.followers and self._jobs.get(job.id) is followed:
                del self._jobs[job.id]

    async def _run(self) -> None:
        last_counter: int | None = None
        last_full = time.monotonic()
        while True:
            interval = self._full_check_interval if self._pushed else self._poll_interval
            timeout = interval if self._jobs else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            poked = self._wake.is_set()
            self._wake.clear()
            if not self._jobs:
                continue
            try:
                counter = await self._repo.change_counter()
                now = time.monotonic()
                if poked or counter != last_counter or now - last_full >= self._full_check_interval:
                    last_counter, last_full = counter, now
                    await self._refresh()
            except Exception:
                # The loop must outlive a locked or briefly unreadable database.
                logger.exception("log hub: checking followed jobs failed; retrying in 1 s")
                await asyncio.sleep(ERROR_BACKOFF_SECONDS)

    async def _refresh(self) -> None:
        for job in await self._repo.get_jobs(list(self._jobs)):
            followed = self._jobs.get(job.id)
            if followed is None:
                continue
            started = followed.status is JobStatus.QUEUED and job.started_at is not None
            finished = job.is_terminal and followed.status is not JobStatus.COMPLETED
            followed.status = job.status
            if started:
                # Even if it finished within one tick: it ran before it printed anything.
                followed.broadcast(JobStarted())
            pages = log_pages(
                self._repo,
                job.id,
                after_seq=followed.cursor,
                up_to=job.last_log_seq,
                encode=ChunkBatch.of,
            )
            async for last_seq, batch in pages:
                followed.cursor = last_seq
                followed.broadcast(batch)
            tests = result_batches(
                self._repo, job.id, after_index=followed.test_cursor, up_to=job.tests_reported
            )
            async for test_batch in tests:
                followed.test_cursor = test_batch.last_index
                followed.broadcast(test_batch)
            if finished:
                followed.broadcast(JobFinished(job))
            if job.is_terminal and self._jobs.get(job.id) is followed:
                # Followers finish from their queues; a later subscriber starts afresh.
                del self._jobs[job.id]

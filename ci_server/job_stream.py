"""The SSE stream of one job for one client: opening status, replay, live chunks, `complete`.

Where a stream starts is the caller's choice (`after_seq`): 0 replays everything, the job's
current `last_log_seq` is forward-only, a `Last-Event-ID` resumes exactly after that chunk.
Every stream opens with a `status` event (the job's status as read) whose SSE `id:` is that
starting point, so a client that loses the connection before its first chunk still resumes
exactly with `Last-Event-ID` instead of reconnecting forward-only and missing what was
written meanwhile. A `status: running` follows once if the job was queued when read and
starts later (or had already started by the time the hub was joined).

Per-test results (`event: test`) follow the same way with their own cursor (`_last_test`): a
replay from the start sends all of them, any other stream those reported after it opened.
Chunks come from two places — the follower's own catch-up read of the database and the
shared `LogHub` — and may overlap; `last_sent` makes every seq go out at most once and in
order. Before `complete`, any chunk still missing up to the job's final `last_log_seq` is read,
so a stream never ends short of the stored log.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from sse_starlette import ServerSentEvent

from ci_common.api import CompleteEvent, JobIdEvent, StatusEvent
from ci_common.models import Job, JobStatus
from ci_common.repository import JobResultsRepository
from ci_server.log_hub import (
    ChunkBatch,
    Follower,
    JobStarted,
    LogHub,
    Resync,
    encode_chunks,
)
from ci_server.log_pages import log_pages
from ci_server.test_events import TestBatch, result_batches


def job_id_message(job: Job) -> bytes:
    return ServerSentEvent(data=JobIdEvent(job_id=job.id).model_dump_json()).encode()


def status_message(status: JobStatus, *, resume_seq: int | None = None) -> bytes:
    """A status event; with `resume_seq` it also carries the SSE id a client resumes after."""
    event = ServerSentEvent(
        data=StatusEvent(status=status).model_dump_json(),
        id=None if resume_seq is None else str(resume_seq),
    )
    return event.encode()


def complete_message(job: Job) -> bytes:
    event = CompleteEvent(
        status=job.status,
        conclusion=job.conclusion,
        success=job.success,
        exit_code=job.exit_code,
        error=job.error,
    )
    return ServerSentEvent(data=event.model_dump_json()).encode()


class JobStream:
    """The encoded SSE messages for one follower of one job: iterate `messages()`."""

    def __init__(
        self, *, repo: JobResultsRepository, hub: LogHub, job: Job, after_seq: int, announce: bool
    ) -> None:
        self._repo = repo
        self._hub = hub
        self._job = job
        self._last_sent = after_seq
        # A replay from the start sends every result; otherwise those reported from now on.
        self._last_test = 0 if after_seq == 0 else job.tests_reported
        self._announce = announce

    async def messages(self) -> AsyncGenerator[bytes]:
        """A generator (not just an iterator) so the response can `aclose()` it at once when
        the client goes, which unsubscribes from the hub."""
        if self._announce:
            yield job_id_message(self._job)
        # Where this stream starts, as an event id: a client that loses the connection before
        # the first chunk resumes exactly here instead of at a later forward-only position.
        yield status_message(self._job.status, resume_seq=self._last_sent)
        if self._job.is_terminal:
            async for message in self._finish(self._job):
                yield message
            return
        async with self._hub.follow(self._job) as follower:
            async for message in self._follow(follower):
                yield message

    async def _follow(self, follower: Follower) -> AsyncIterator[bytes]:
        status = self._job.status
        if status is JobStatus.QUEUED and await self._started_before(follower):
            # The hub saw it start after our snapshot was read: its `JobStarted` went out
            # before we subscribed, so this is the only `running` this stream sends.
            status = JobStatus.RUNNING
            yield status_message(status)
        if self._last_sent < follower.start_seq:
            async for message in self._replay(up_to=follower.start_seq):
                yield message
        async for message in self._replay_tests(up_to=follower.start_test):
            yield message
        while True:
            update = await follower.next()
            if isinstance(update, TestBatch):
                if update.last_index > self._last_test:
                    data = update.after(self._last_test)
                    self._last_test = update.last_index
                    yield data
                continue
            if isinstance(update, ChunkBatch):
                if update.last_seq > self._last_sent:
                    data = update.after(self._last_sent)
                    self._last_sent = update.last_seq
                    yield data
                continue
            if isinstance(update, JobStarted):
                if status is JobStatus.QUEUED:
                    status = JobStatus.RUNNING
                    yield status_message(status)
                continue
            if isinstance(update, Resync):
                async for message in self._replay(up_to=None):
                    yield message
                async for message in self._replay_tests(up_to=None):
                    yield message
                job = await self._repo.get_job(self._job.id)
                if status is JobStatus.QUEUED and job.started_at is not None:
                    status = JobStatus.RUNNING
                    yield status_message(status)
                if not job.is_terminal:
                    continue
            else:
                job = update.job
            async for message in self._finish(job):
                yield message
            return

    async def _started_before(self, follower: Follower) -> bool:
        """Whether the job had left the queue when we joined the hub.

        The hub's view may be `completed` already (we joined in the middle of its update, after
        its `JobStarted`); a job cancelled while queued completes without running, so then the
        row decides."""
        if follower.status is JobStatus.QUEUED:
            return False
        if follower.status is JobStatus.RUNNING:
            return True
        return (await self._repo.get_job(self._job.id)).started_at is not None

    async def _finish(self, job: Job) -> AsyncIterator[bytes]:
        """Whatever is still unsent of the final log, then `complete`."""
        if self._last_sent < job.last_log_seq:
            async for message in self._replay(up_to=None):
                yield message
        async for message in self._replay_tests(up_to=job.tests_reported):
            yield message
        yield complete_message(job)

    async def _replay_tests(self, *, up_to: int | None) -> AsyncIterator[bytes]:
        """Stored results after `_last_test` (through `up_to`), a page at a time."""
        batches = result_batches(self._repo, self._job.id, after_index=self._last_test, up_to=up_to)
        async for batch in batches:
            self._last_test = batch.last_index
            yield batch.joined

    async def _replay(self, *, up_to: int | None) -> AsyncIterator[bytes]:
        """Stored chunks after `_last_sent` (up to `up_to` if given), a page at a time, each
        read once the client has taken the one before."""
        pages = log_pages(
            self._repo, self._job.id, after_seq=self._last_sent, up_to=up_to, encode=encode_chunks
        )
        async for last_seq, page in pages:
            self._last_sent = last_seq
            yield page

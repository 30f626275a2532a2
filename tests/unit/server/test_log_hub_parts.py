"""The hub's pieces without a database: a batch sliced after a seq, and a follower's inbox
bounded by updates and by bytes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sse_starlette import ServerSentEvent

from ci_common.api import LogEvent
from ci_common.models import JobId, JobStatus, LogChunk
from ci_server.log_hub import ChunkBatch, Follower, JobStarted, Resync, encode_chunk

JOB = JobId("job")


def chunk(seq: int, data: str) -> LogChunk:
    return LogChunk(job_id=JOB, seq=seq, data=data, created_at=datetime.now(UTC))


def batch(*seqs: int, size: int = 10) -> ChunkBatch:
    return ChunkBatch.of([chunk(seq, "x" * size) for seq in seqs])


@pytest.mark.parametrize(
    ("after", "expected"),
    [(0, [4, 5, 6]), (3, [4, 5, 6]), (4, [5, 6]), (5, [6]), (6, []), (9, [])],
)
def test_a_batch_after_a_seq_is_its_later_chunks(after: int, expected: list[int]) -> None:
    chunks = [chunk(4, "a\n"), chunk(5, "é" * 30), chunk(6, '"q"\n')]
    assert ChunkBatch.of(chunks).after(after) == b"".join(
        encode_chunk(c) for c in chunks if c.seq in expected
    )


@pytest.mark.parametrize(
    "data", ["", "plain\n", "a\r\nb\rc\n", '\u2028\x85\x0b\x1e é \x00 \\ "', "x" * 70_000]
)
def test_a_chunk_is_the_sse_message_sse_starlette_would_make(data: str) -> None:
    log = chunk(42, data)
    event = LogEvent(seq=42, data=data)

    assert encode_chunk(log) == ServerSentEvent(data=event.model_dump_json(), id="42").encode()


def follower(*, max_updates: int = 100, max_bytes: int = 10_000) -> Follower:
    return Follower(
        job_id=JOB,
        start_seq=0,
        status=JobStatus.RUNNING,
        max_updates=max_updates,
        max_bytes=max_bytes,
    )


def queued(inbox: Follower) -> list[object]:
    items: list[object] = []
    while not inbox.queue.empty():
        items.append(inbox.queue.get_nowait())
    return items


def test_an_inbox_over_its_bytes_is_replaced_by_a_resync() -> None:
    first, second, third = batch(1, size=400), batch(2, size=400), batch(3, size=400)
    inbox = follower(max_bytes=first.size + second.size)
    for update in (first, JobStarted(), second):
        inbox.deliver(update)
    assert inbox.queued_bytes == first.size + second.size
    inbox.deliver(third)
    assert queued(inbox) == [Resync()]
    assert inbox.queued_bytes == 0
    inbox.deliver(third)
    assert inbox.queued_bytes == third.size


def test_an_inbox_over_its_count_is_replaced_by_a_resync() -> None:
    inbox = follower(max_updates=2)
    for update in (JobStarted(), JobStarted(), batch(1)):
        inbox.deliver(update)
    assert queued(inbox) == [Resync()]


async def test_taking_a_batch_frees_its_bytes() -> None:
    inbox = follower()
    one, two = batch(1), batch(2, 3)
    inbox.deliver(one)
    inbox.deliver(two)
    assert await inbox.next() is one
    assert inbox.queued_bytes == two.size
    assert await inbox.next() is two
    assert inbox.queued_bytes == 0

"""The controller's pure parts: log positions, scheduling, the lock and the batching log
writer (the upload conversion is in test_project.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from controller_world import World

from ci_common.errors import ConcurrentWriterError
from ci_common.models import Job, JobId, JobStatus, UserId
from ci_common.repository import JobRepository
from ci_controller.job_log import FLUSH_AT_BYTES, JobLog
from ci_controller.log_cursor import LogPosition, PositionTracker, parse_timestamp
from ci_controller.runtime import LogFrame
from ci_controller.scheduling import dispatch_order
from ci_controller.singleton import ControllerAlreadyRunningError, ControllerLock

# Log positions.


def test_docker_timestamps_parse_to_nanoseconds_whatever_the_fraction_length() -> None:
    base = parse_timestamp("2026-11-23T05:25:48Z")
    assert parse_timestamp("2026-11-23T05:25:48.284294436Z") == base + 284_294_436
    assert parse_timestamp("2026-11-23T05:25:48.5Z") == base + 500_000_000
    assert parse_timestamp("2026-11-23T07:25:48.5+02:00") == base + 500_000_000
    with pytest.raises(ValueError, match="malformed"):
        parse_timestamp("2026-11-23T05:25:48.x5Z")


def test_a_position_survives_its_text_form() -> None:
    position = LogPosition(timestamp_ns=1_700_000_000_123_456_789, count=3)
    assert LogPosition.decode(position.encode()) == position
    assert LogPosition.decode(None) is None
    assert position.since_seconds == 1_700_000_000


def test_the_tracker_drops_frames_up_to_the_position_and_numbers_the_rest() -> None:
    tracker = PositionTracker(LogPosition(timestamp_ns=20, count=2))
    accepted = [tracker.accept(stamp) for stamp in (10, 20, 20, 20, 30, 30)]
    assert accepted == [
        None,
        None,
        None,
        LogPosition(20, 3),
        LogPosition(30, 1),
        LogPosition(30, 2),
    ]


def test_without_a_position_every_frame_is_new() -> None:
    tracker = PositionTracker(None)
    assert [tracker.accept(s) for s in (5, 5, 6)] == [
        LogPosition(5, 1),
        LogPosition(5, 2),
        LogPosition(6, 1),
    ]


# Scheduling.


def _job(number: int, user: int, status: JobStatus = JobStatus.QUEUED) -> Job:
    return Job(
        id=JobId(f"job-{number}"),
        user_id=UserId(f"user-{user}"),
        status=status,
        conclusion=None,
        exit_code=None,
        error=None,
        created_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=number),
        started_at=None,
        finished_at=None,
        cancel_requested=False,
        container_id=None,
        log_cursor=None,
        log_bytes=0,
        last_log_seq=0,
        archive_bytes=0,
    )


def test_one_user_is_first_in_first_out() -> None:
    jobs = [_job(3, 1), _job(1, 1), _job(2, 1)]
    assert [j.id for j in dispatch_order(jobs)] == ["job-1", "job-2", "job-3"]


def test_users_take_turns_and_running_jobs_count_against_their_owner() -> None:
    jobs = [
        _job(0, 1, JobStatus.RUNNING),
        _job(1, 1),
        _job(2, 1),
        _job(3, 2),
        _job(4, 2),
        _job(5, 3),
    ]
    assert [j.id for j in dispatch_order(jobs)] == [
        "job-3",
        "job-5",
        "job-1",
        "job-4",
        "job-2",
    ]


# The singleton lock.


def test_a_second_lock_on_the_same_database_names_the_holder(tmp_path: Path) -> None:
    db = tmp_path / "ci.db"
    held = ControllerLock.acquire(db)
    script = (
        "import sys; from pathlib import Path; from ci_controller.singleton import ControllerLock;"
        f"ControllerLock.acquire(Path({str(db)!r}))"
    )
    other = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert other.returncode != 0
    assert f"pid {os.getpid()}" in other.stderr
    held.release()
    again = ControllerLock.acquire(db)  # released: free at once
    with pytest.raises(ControllerAlreadyRunningError, match="already running"):
        ControllerLock.acquire(db)
    again.release()


# The log writer.


def _frame(stamp: int, data: bytes) -> LogFrame:
    return LogFrame(position=LogPosition(timestamp_ns=stamp, count=1), data=data)


async def test_the_log_is_stored_in_batches_with_the_cursor_of_the_last_frame(
    world: World,
) -> None:
    job = await world.submit()
    log = JobLog(repo=world.repo, job_id=job.id, max_bytes=10**6)
    await log.add_frame(_frame(1, b"a\n"))
    await log.add_frame(_frame(2, b"b\n"))
    assert await world.repo.read_logs(job.id) == []  # not yet: batched
    await log.close()

    [chunk] = await world.repo.read_logs(job.id)
    assert chunk.data == "a\nb\n"
    assert (await world.job(job)).log_cursor == LogPosition(2, 1).encode()


async def test_a_batch_is_flushed_at_once_when_large(world: World) -> None:
    job = await world.submit()
    log = JobLog(repo=world.repo, job_id=job.id, max_bytes=10**7)
    await log.add_frame(_frame(1, b"x" * FLUSH_AT_BYTES))
    assert len(await world.repo.read_logs(job.id)) == 1
    await log.close()


async def test_a_verbose_burst_is_stored_in_few_large_chunks(world: World) -> None:
    """A job printing as fast as it can: 240 KB of Docker messages arriving at once are one
    transaction, not one per 64 KiB (each costs the controller round trips to SQLite)."""
    job = await world.submit()
    log = JobLog(repo=world.repo, job_id=job.id, max_bytes=10**7)
    for n in range(15):
        await log.add_frame(_frame(n + 1, b"x" * 15_999 + b"\n"))
    assert await world.repo.read_logs(job.id) == []  # not yet: under the batch size
    await log.close()

    [chunk] = await world.repo.read_logs(job.id)
    assert len(chunk.data) == 240_000
    assert (await world.job(job)).log_cursor == LogPosition(15, 1).encode()


async def test_a_batch_is_flushed_within_a_fraction_of_a_second(world: World) -> None:
    job = await world.submit()
    log = JobLog(repo=world.repo, job_id=job.id, max_bytes=10**6)
    await log.add_frame(_frame(1, b"a\n"))
    for _ in range(50):
        if await world.repo.read_logs(job.id):
            break
        await asyncio.sleep(0.01)
    assert [c.data for c in await world.repo.read_logs(job.id)] == ["a\n"]
    await log.close()


class _GatedRepo:
    """The world's repository, whose log writes wait for `go` once `entered`."""

    def __init__(self, repo: JobRepository) -> None:
        self._repo = repo
        self.entered = asyncio.Event()
        self.go = asyncio.Event()

    async def append_log(
        self, job_id: JobId, data: str, *, cursor: str | None, after_seq: int | None = None
    ) -> object:
        self.entered.set()
        await self.go.wait()
        return await self._repo.append_log(job_id, data, cursor=cursor, after_seq=after_seq)

    def __getattr__(self, name: str) -> object:
        return getattr(self._repo, name)


async def test_output_arriving_while_a_batch_is_written_counts_against_the_cap(
    world: World,
) -> None:
    job = await world.submit()
    repo = _GatedRepo(world.repo)
    log = JobLog(repo=repo, job_id=job.id, max_bytes=100)  # type: ignore[arg-type]  # a wrapper
    await log.add_frame(_frame(1, b"a" * 59 + b"\n"))
    await asyncio.wait_for(repo.entered.wait(), 5)  # the timer's flush is writing those 60
    second = asyncio.create_task(log.add_frame(_frame(2, b"b" * 59 + b"\n")))  # 120 > 100
    await asyncio.sleep(0.01)
    repo.go.set()
    await second
    await log.close()

    chunks = [chunk.data for chunk in await world.repo.read_logs(job.id)]
    assert chunks[0] == "a" * 59 + "\n"
    assert chunks[1].startswith("[ci] log truncated at ")
    assert len(chunks) == 2 and log.truncated


async def test_two_controllers_resuming_one_log_never_both_store_a_line(world: World) -> None:
    """A controller that lost its lock and has not noticed, and the one that took over, both
    resume the job's log from the same row: whichever stores first wins, the other is told
    and stores nothing, so no line is doubled."""
    job = await world.submit()
    first = await JobLog.resume(repo=world.repo, job=await world.job(job), max_bytes=10**6)
    await first.add_frame(_frame(1, b"before\n"))
    await first.close()
    stale = await JobLog.resume(repo=world.repo, job=await world.job(job), max_bytes=10**6)
    taker = await JobLog.resume(repo=world.repo, job=await world.job(job), max_bytes=10**6)

    await taker.add_frame(_frame(2, b"after\n"))
    await taker.flush()
    await stale.add_frame(_frame(2, b"after\n"))
    with pytest.raises(ConcurrentWriterError):
        await stale.flush()
    with pytest.raises(ConcurrentWriterError):  # it stays refused: what it holds is stored
        await stale.close()

    chunks = [chunk.data for chunk in await world.repo.read_logs(job.id)]
    assert chunks == ["before\n", "after\n"]
    await taker.close()


async def test_a_resumed_log_knows_it_was_truncated_and_stays_quiet(world: World) -> None:
    job = await world.submit()
    first = JobLog(repo=world.repo, job_id=job.id, max_bytes=8)
    await first.add_frame(_frame(1, b"12345\n"))
    await first.add_frame(_frame(2, b"67890\n"))  # over the cap: the note instead
    await first.close()
    assert first.truncated

    resumed = await JobLog.resume(repo=world.repo, job=await world.job(job), max_bytes=8)
    await resumed.add_frame(_frame(3, b"more\n"))
    await resumed.close()

    chunks = [chunk.data for chunk in await world.repo.read_logs(job.id)]
    assert chunks[0] == "12345\n"
    assert chunks[1].startswith("[ci] log truncated at ")
    assert len(chunks) == 2
    assert (await world.job(job)).log_cursor == LogPosition(2, 1).encode()


async def test_notes_start_a_line_of_their_own_after_an_unterminated_line(world: World) -> None:
    job = await world.submit()
    log = JobLog(repo=world.repo, job_id=job.id, max_bytes=12)
    await log.add_frame(_frame(1, b"progress..."))  # no newline
    await log.add_frame(_frame(2, b"more output\n"))  # over the cap
    await log.close()
    resumed = await JobLog.resume(repo=world.repo, job=await world.job(job), max_bytes=12)
    assert resumed.truncated
    await resumed.note("cancelled on request")

    text = "".join(chunk.data for chunk in await world.repo.read_logs(job.id))
    lines = text.splitlines()
    assert lines[0] == "progress..."
    assert lines[1].startswith("[ci] log truncated at ")
    assert lines[2] == "[ci] cancelled on request"


async def test_closing_after_a_timer_flush_stores_each_batch_once(world: World) -> None:
    job = await world.submit()
    log = JobLog(repo=world.repo, job_id=job.id, max_bytes=10**6)
    await log.add_frame(_frame(1, b"a\n"))
    chunks: list[str] = []
    for _ in range(100):  # until the timer's write has begun
        chunks = [c.data for c in await world.repo.read_logs(job.id)]
        if chunks:
            break
        await asyncio.sleep(0.001)
    await log.add_frame(_frame(2, b"b\n"))
    await log.close()
    assert "".join(c.data for c in await world.repo.read_logs(job.id)) == "a\nb\n"

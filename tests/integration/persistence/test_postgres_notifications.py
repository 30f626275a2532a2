"""LISTEN/NOTIFY on PostgreSQL: each change a process waits on is announced on its topic when it
commits, and a listener whose connection is cut says so, reconnects and hears again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from ci_common.change_feed import ChangeTopic
from ci_common.errors import JobNotFoundError
from ci_common.models import JobConclusion, JobId
from ci_common.test_results import TestOutcome, TestReport
from ci_persistence import DatabaseLocation, change_feed_at
from ci_persistence.postgres import PostgresRepository, open_postgres_repository
from ci_persistence.postgres.notifications import RECONNECT_SECONDS

WAIT = 5.0


class Heard:
    """What a feed reported: job ids in order, and whether it listens."""

    def __init__(self) -> None:
        self.changes: list[JobId] = []
        self.live: list[bool] = []
        self._news = asyncio.Event()

    def on_change(self, job_id: JobId) -> None:
        self.changes.append(job_id)
        self._news.set()

    def on_live(self, live: bool) -> None:
        self.live.append(live)
        self._news.set()

    async def until(self, check: Callable[[], bool], what: str) -> None:
        async with asyncio.timeout(WAIT):
            while not check():
                self._news.clear()
                await self._news.wait()
        assert check(), what

    async def change_of(self, job_id: JobId) -> None:
        await self.until(lambda: job_id in self.changes, f"a notice of {job_id}")
        self.changes.clear()


@contextlib.asynccontextmanager
async def listening(url: str, topic: ChangeTopic, name: str) -> AsyncGenerator[Heard]:
    feed = change_feed_at(DatabaseLocation(path=Path("unused.db"), url=url), topic=topic, name=name)
    assert feed is not None
    heard = Heard()
    task = asyncio.create_task(feed.run(on_change=heard.on_change, on_live=heard.on_live))
    try:
        await heard.until(lambda: heard.live == [True], "the listener to listen")
        yield heard
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def repo(postgres_url: str) -> AsyncIterator[PostgresRepository]:
    opened = await open_postgres_repository(postgres_url)
    yield opened
    await opened.close()


async def test_sqlite_has_no_feed(tmp_path: Path) -> None:
    location = DatabaseLocation(path=tmp_path / "ci.db")
    assert change_feed_at(location, topic=ChangeTopic.QUEUE, name="x") is None


async def test_the_queue_hears_of_new_jobs_and_cancels_only(
    postgres_url: str, repo: PostgresRepository
) -> None:
    user = await repo.create_user(name="a", email="a@x.org")
    async with listening(postgres_url, ChangeTopic.QUEUE, "queue") as queue:
        job = await repo.create_job(user_id=user.id, archive=b"PK")
        await queue.change_of(job.id)

        assert await repo.mark_running(job.id, container_id=None)
        await repo.append_log(job.id, "hello\n", cursor=None)
        await repo.request_cancel(job.id)
        await queue.change_of(job.id)  # the cancel; the start and the chunk said nothing here

        other = await repo.create_job(user_id=user.id, archive=b"PK")
        await queue.change_of(other.id)
        assert queue.changes == []


async def test_followers_hear_of_starts_chunks_results_and_ends(
    postgres_url: str, repo: PostgresRepository
) -> None:
    user = await repo.create_user(name="a", email="a@x.org")
    job = await repo.create_job(user_id=user.id, archive=b"PK")
    queued = await repo.create_job(user_id=user.id, archive=b"PK")
    async with listening(postgres_url, ChangeTopic.JOBS, "jobs") as jobs:
        assert await repo.mark_running(job.id, container_id=None)
        await jobs.change_of(job.id)
        await repo.append_log(job.id, "hello\n", cursor=None)
        await jobs.change_of(job.id)
        report = TestReport(nodeid="t.py::t", outcome=TestOutcome.PASSED, phase="call", duration=0)
        await repo.record_test_results(job.id, [report], cursor=None)
        await jobs.change_of(job.id)
        assert await repo.complete_job(job.id, conclusion=JobConclusion.SUCCESS, exit_code=0)
        await jobs.change_of(job.id)
        assert not await repo.complete_job(job.id, conclusion=JobConclusion.ERROR)
        await repo.request_cancel(queued.id)  # a queued job ends at once
        await jobs.change_of(queued.id)
        assert jobs.changes == []  # the refused completion said nothing


async def test_nothing_is_announced_for_a_change_rolled_back(
    postgres_url: str, repo: PostgresRepository
) -> None:
    async with listening(postgres_url, ChangeTopic.JOBS, "jobs") as jobs:
        with pytest.raises(JobNotFoundError):
            await repo.append_log(JobId("00000000-0000-4000-8000-000000000000"), "x\n", cursor=None)
        await asyncio.sleep(0.2)
        assert jobs.changes == []


async def test_a_cut_listener_says_so_reconnects_and_hears_again(
    postgres_url: str, repo: PostgresRepository
) -> None:
    user = await repo.create_user(name="a", email="a@x.org")
    async with listening(postgres_url, ChangeTopic.QUEUE, "cut me") as queue:
        admin = await asyncpg.connect(postgres_url)
        try:
            ended = await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'cut me' AND datname = current_database()"
            )
        finally:
            await admin.close()
        assert len(ended) == 1
        await queue.until(lambda: queue.live == [True, False], "the loss to be reported")
        await queue.until(
            lambda: queue.live == [True, False, True], f"a reconnect within {RECONNECT_SECONDS} s"
        )
        job = await repo.create_job(user_id=user.id, archive=b"PK")
        await queue.change_of(job.id)

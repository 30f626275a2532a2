"""The controller on a database that pushes changes (`ChangeFeed`, PostgreSQL's LISTEN): a
notice dispatches a new job at once, polling stops while the feed listens, and a feed that
breaks hands the job back to polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from controller_world import World
from fake_runtime import FakeContainer

from ci_common.models import JobId, JobStatus
from ci_controller.controller import Controller

T = TypeVar("T")


class FakeFeed:
    """A `ChangeFeed` the test drives: `live()`, `announce(job_id)`, `down()`."""

    def __init__(self) -> None:
        self._on_change: Callable[[JobId], None] | None = None
        self._on_live: Callable[[bool], None] | None = None
        self.running = asyncio.Event()

    async def run(
        self, *, on_change: Callable[[JobId], None], on_live: Callable[[bool], None]
    ) -> None:
        self._on_change, self._on_live = on_change, on_live
        self.running.set()
        await asyncio.Event().wait()  # until cancelled

    def live(self, live: bool) -> None:
        assert self._on_live is not None
        self._on_live(live)

    def announce(self, job_id: JobId) -> None:
        assert self._on_change is not None
        self._on_change(job_id)


class Counted:
    """Counts the calls of a repository method on the way to it."""

    def __init__(self, method: Callable[[], Awaitable[T]]) -> None:
        self.calls = 0
        self._method = method

    async def __call__(self) -> T:
        self.calls += 1
        return await self._method()


async def until(check: Callable[[], bool], *, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def passes(container: FakeContainer) -> None:
    container.emit(b"1 passed\n")
    container.exit(0)


async def status_of(world: World, job_id: JobId) -> JobStatus:
    return (await world.repo.get_job(job_id)).status


async def test_a_notice_dispatches_at_once_and_polling_stops_while_the_feed_listens(
    world: World,
) -> None:
    world.runtime.on_start = passes
    polls = Counted(world.repo.change_counter)
    passes_ = Counted(world.repo.list_active_jobs)
    world.repo.change_counter = polls  # type: ignore[method-assign]  # counts the polling
    world.repo.list_active_jobs = passes_  # type: ignore[method-assign]  # counts the passes
    feed = FakeFeed()
    settings = world.settings.model_copy(update={"reconcile_interval": 60})
    controller = Controller(settings, world.runtime, world.repo, changes=feed)
    stop = asyncio.Event()
    loop = asyncio.create_task(controller.run(stop))
    await asyncio.wait_for(feed.running.wait(), 10)
    feed.live(True)
    # The start-up reconcile, then the pass the feed's going live asks for; none is pending.
    await until(lambda: passes_.calls >= 2)
    await asyncio.sleep(0.05)
    before = polls.calls

    job = await world.submit()
    await asyncio.sleep(0.3)  # fifteen poll intervals: no polling, no notice, no dispatch
    assert await status_of(world, job.id) is JobStatus.QUEUED
    assert polls.calls <= before + 1  # at most one look begun before the feed went live
    feed.announce(job.id)
    await asyncio.wait_for(world.runtime.started.wait(), timeout=10)

    world.runtime.started.clear()
    polling_resumed = polls.calls
    feed.live(False)  # the feed broke: polling takes over
    await until(lambda: polls.calls > polling_resumed + 2)
    second = await world.submit()
    await asyncio.wait_for(world.runtime.started.wait(), timeout=10)
    stop.set()
    await loop

    assert await status_of(world, second.id) is not JobStatus.QUEUED

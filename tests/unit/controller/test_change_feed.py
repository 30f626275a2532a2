"""The controller on a database that pushes changes (`ChangeFeed`, PostgreSQL's LISTEN): a
notice dispatches a new job at once, polling stops while the feed listens, and a feed that
breaks hands the job back to polling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from controller_world import World
from fake_runtime import FakeContainer

from ci_common.models import JobId, JobStatus
from ci_controller.controller import Controller


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


class CountingRepo:
    """Counts `change_counter` calls (the polling) on the way to the real repository."""

    def __init__(self, world: World) -> None:
        self.calls = 0
        self._real = world.repo.change_counter

    async def __call__(self) -> int:
        self.calls += 1
        return await self._real()


def passes(container: FakeContainer) -> None:
    container.emit(b"1 passed\n")
    container.exit(0)


async def status_of(world: World, job_id: JobId) -> JobStatus:
    return (await world.repo.get_job(job_id)).status


async def test_a_notice_dispatches_at_once_and_polling_stops_while_the_feed_listens(
    world: World,
) -> None:
    world.runtime.on_start = passes
    polls = CountingRepo(world)
    world.repo.change_counter = polls  # type: ignore[method-assign]  # count the polling
    feed = FakeFeed()
    settings = world.settings.model_copy(update={"reconcile_interval": 60})
    controller = Controller(settings, world.runtime, world.repo, changes=feed)
    stop = asyncio.Event()
    loop = asyncio.create_task(controller.run(stop))
    await asyncio.wait_for(feed.running.wait(), 2)
    feed.live(True)
    await asyncio.sleep(0.1)  # the watcher sees it is not needed
    before = polls.calls

    job = await world.submit()
    await asyncio.sleep(0.3)  # fifteen poll intervals: no polling, no notice, no dispatch
    assert await status_of(world, job.id) is JobStatus.QUEUED
    assert polls.calls == before
    feed.announce(job.id)
    await asyncio.wait_for(world.runtime.started.wait(), timeout=2)

    world.runtime.started.clear()
    feed.live(False)  # the feed broke: polling takes over
    second = await world.submit()
    await asyncio.wait_for(world.runtime.started.wait(), timeout=2)
    stop.set()
    await loop

    assert polls.calls > before
    assert await status_of(world, second.id) is not JobStatus.QUEUED

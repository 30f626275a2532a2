"""Several engines on one queue, one controller each (in memory): each job is claimed once,
by one engine, within each engine's capacity; a controller adopts only its own engine's jobs;
a lost engine's running jobs end as `error` naming it, and what it had not started goes back
to the queue."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from controller_world import World, database_url_for
from fake_runtime import FakeContainer, FakeRuntime

from ci_common.models import JobConclusion, JobStatus
from ci_controller.controller import Controller
from ci_controller.runtime import ContainerState, RuntimeFault
from ci_controller.singleton import ControllerAlreadyRunningError, ControllerLock
from ci_persistence.postgres import CONTROLLER_LOCK_KEY, controller_lock_key


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    return database_url_for(request, str(request.param))


def passes(container: FakeContainer) -> None:
    container.emit(b"1 passed\n")
    container.exit(0)


def engine(world: World, name: str, runtime: FakeRuntime, *, capacity: int = 2) -> Controller:
    settings = world.settings.model_copy(
        update={"engine_name": name, "max_parallel_jobs": capacity, "engine_lost_after": 0.5}
    )
    return Controller(settings, runtime, world.repo)


async def test_two_engines_share_the_queue_each_job_once_within_capacity(world: World) -> None:
    first, second = FakeRuntime(), FakeRuntime()
    ran: list[tuple[str, str | None]] = []
    first.on_start = lambda container: ran.append(("a", container.job_id))
    second.on_start = lambda container: ran.append(("b", container.job_id))
    jobs = [await world.submit() for _ in range(6)]
    a, b = engine(world, "a", first), engine(world, "b", second)
    for _ in range(100):
        await asyncio.gather(a.reconcile(), b.reconcile())  # both claim at once
        assert len(a.running_jobs) <= 2 and len(b.running_jobs) <= 2  # never over capacity
        assert not a.running_jobs & b.running_jobs
        await asyncio.sleep(0.02)  # the workers start their containers
        for container in [*first.live(), *second.live()]:
            if container.state is ContainerState.RUNNING:
                passes(container)
        states = [(await world.job(job)).status for job in jobs]
        if all(state is JobStatus.COMPLETED for state in states):
            break
    await asyncio.gather(a.wait_idle(), b.wait_idle())

    done = [await world.job(job) for job in jobs]
    assert all(job.conclusion is JobConclusion.SUCCESS for job in done)
    assert sorted(job_id or "" for _, job_id in ran) == sorted(job.id for job in jobs)  # once each
    assert {name for name, _ in ran} == {"a", "b"}  # both engines used
    assert {job.id: job.engine for job in done} == {job_id: name for name, job_id in ran}
    assert {e.name: e.capacity for e in await world.repo.list_engines()} == {"a": 2, "b": 2}


async def test_a_controller_adopts_only_its_own_engines_running_jobs(world: World) -> None:
    first = FakeRuntime()
    job = await world.submit()
    a = engine(world, "a", first)
    await a.reconcile()
    assert job.id in a.running_jobs
    await a.shutdown()

    other = engine(world, "b", FakeRuntime())
    await other.reconcile()
    assert job.id not in other.running_jobs  # b leaves a's job alone
    assert (await world.job(job)).engine == "a"

    again = engine(world, "a", first)
    await again.reconcile()
    assert job.id in again.running_jobs  # a's controller, restarted, adopts it
    await again.shutdown()


async def test_a_lost_engines_running_job_ends_naming_it_and_its_unstarted_one_is_requeued(
    world: World,
) -> None:
    started, unstarted = await world.submit(), await world.submit()
    assert await world.repo.mark_running(started.id, container_id=None, engine="gone")
    await world.repo.set_container(started.id, "c123")
    assert await world.repo.mark_running(unstarted.id, container_id=None, engine="gone")
    await world.repo.record_engine("gone", capacity=2)

    survivor = engine(world, "here", FakeRuntime(), capacity=1)
    await survivor.reconcile()  # within the grace: nothing happens to gone's jobs
    assert (await world.job(started)).status is JobStatus.RUNNING
    assert unstarted.id not in survivor.running_jobs
    await survivor.shutdown()

    await asyncio.sleep(0.6)  # past engine_lost_after (0.5 s): the grace is real time
    survivor = engine(world, "here", FakeRuntime(), capacity=1)
    await survivor.reconcile()
    await world.assert_error_says(started, "'gone' was lost")
    requeued = await world.job(unstarted)
    assert (requeued.status, requeued.engine) == (JobStatus.QUEUED, None)  # back in the queue
    await survivor.react()
    assert (await world.job(unstarted)).engine == "here"  # claimed by the surviving engine
    await survivor.shutdown()


async def test_an_engine_that_does_not_answer_claims_nothing(world: World) -> None:
    broken = FakeRuntime()
    broken.engine_down = True
    job = await world.submit()
    a = engine(world, "a", broken)
    with pytest.raises(RuntimeFault):
        await a.reconcile()
    await a.react()
    assert (await world.job(job)).status is JobStatus.QUEUED
    assert await world.repo.list_engines() == []  # no heartbeat while it does not answer


async def test_a_job_never_waits_on_a_dependency_build_on_another_engine(world: World) -> None:
    """Dependency images live in each engine: engine b builds its own while a's build of the
    same dependencies hangs."""
    project = {"requirements.txt": "attrs\n", "test_ok.py": "def test_ok():\n    pass\n"}
    hanging, free = FakeRuntime(), FakeRuntime()
    hanging.build_gate = asyncio.Event()  # a's build never finishes in this test
    free.on_start = passes
    stuck = await world.submit(project)
    a = engine(world, "a", hanging, capacity=1)
    await a.reconcile()
    assert stuck.id in a.running_jobs

    other = await world.submit(project)
    b = engine(world, "b", free, capacity=1)
    await b.reconcile()
    await asyncio.wait_for(b.wait_idle(), timeout=5)

    done = await world.job(other)
    assert (done.conclusion, done.engine) == (JobConclusion.SUCCESS, "b")
    assert len(free.builds) == 1 and len(hanging.builds) == 1  # each engine built its own
    await a.shutdown()


def test_the_singleton_is_per_engine_name(tmp_path: Path) -> None:
    db = tmp_path / "ci.db"
    default = ControllerLock.acquire(db)
    second = ControllerLock.acquire(db, engine="second")  # another engine: its own lock
    assert default.path.name == "ci.db.controller.lock"  # unchanged for one engine
    with pytest.raises(ControllerAlreadyRunningError):
        ControllerLock.acquire(db, engine="second")
    default.release()
    second.release()
    keys = {controller_lock_key(name) for name in ("default", "second", "third")}
    assert len(keys) == 3 and controller_lock_key("default") == CONTROLLER_LOCK_KEY
    assert all(0 <= key < 2**63 for key in keys)  # a bigint advisory key

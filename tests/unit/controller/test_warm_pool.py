"""The warm container: claimed at dispatch, replaced after, never in a job's way, and owned
by the database link once claimed (it has no job label)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from controller_world import World
from fake_runtime import FakeContainer

from ci_common.models import Job, JobConclusion, JobStatus
from ci_controller.bootstrap import BOOTSTRAP, PROJECT_WAIT_SECONDS, WARM_BOOTSTRAP
from ci_controller.controller import Controller
from ci_controller.runtime import PROJECT_MISSING_EXIT, ROLE_JOB, ROLE_WARM, ContainerState


async def eventually(check: Callable[[], bool | Awaitable[bool]], *, within: float = 5) -> None:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result if isinstance(result, bool) else await result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def passes(container: FakeContainer) -> None:
    container.emit(b"1 passed\n")
    container.exit(0)


async def warm_controller(world: World) -> tuple[Controller, FakeContainer]:
    """A controller with warm containers on, after its first pass filled the pool."""
    controller = world.controller(warm_containers=True)
    await controller.reconcile()
    await eventually(lambda: len(world.runtime.warm()) == 1)
    [warm] = world.runtime.warm()
    return controller, warm


async def finished(world: World, job: Job) -> Job:
    await eventually(lambda: _completed(world, job))
    return await world.job(job)


async def _completed(world: World, job: Job) -> bool:
    return (await world.job(job)).status is JobStatus.COMPLETED


async def _any_completed(world: World, jobs: list[Job]) -> bool:
    return any([await _completed(world, job) for job in jobs])


async def test_a_job_claims_the_warm_container_and_a_replacement_starts(world: World) -> None:
    world.runtime.on_start = passes
    controller, warm = await warm_controller(world)
    assert warm.spec is not None and warm.spec.sandbox.network == world.settings.job_network

    job = await world.submit()
    await controller.react()
    done = await finished(world, job)

    assert done.conclusion is JobConclusion.SUCCESS
    assert done.container_id == warm.id
    assert warm.project is not None
    assert await world.test_output(job) == "1 passed\n"
    assert not [c for c in world.runtime.containers.values() if c.role == ROLE_JOB]
    await eventually(lambda: len(world.runtime.warm()) == 1)  # the replacement
    assert world.runtime.warm()[0].id != warm.id
    await controller.wait_idle()
    assert warm.id in world.runtime.removed  # used once, then removed like any other


async def test_a_job_falls_back_to_its_own_container_when_the_warm_one_is_gone(
    world: World,
) -> None:
    world.runtime.on_start = passes
    controller, warm = await warm_controller(world)
    del world.runtime.containers[warm.id]  # removed behind the controller's back

    job = await world.submit()
    await controller.react()
    done = await finished(world, job)

    assert done.conclusion is JobConclusion.SUCCESS
    assert done.container_id not in (None, warm.id)


async def test_a_job_falls_back_when_the_warm_container_has_exited(world: World) -> None:
    world.runtime.on_start = passes
    controller, warm = await warm_controller(world)
    warm.exit(137)

    job = await world.submit()
    await controller.react()
    done = await finished(world, job)

    assert done.conclusion is JobConclusion.SUCCESS
    assert done.container_id != warm.id
    await eventually(lambda: warm.id in world.runtime.removed)


async def test_a_job_runs_when_no_warm_container_can_be_started(world: World) -> None:
    world.runtime.on_start = passes
    world.runtime.warm_fails = True
    controller = world.controller(warm_containers=True)
    job = await world.submit()

    await controller.reconcile()
    done = await finished(world, job)

    assert done.conclusion is JobConclusion.SUCCESS
    assert world.runtime.warm() == []


async def test_a_job_needing_a_dependency_image_leaves_the_warm_container_alone(
    world: World,
) -> None:
    world.runtime.on_start = passes
    controller, warm = await warm_controller(world)

    job = await world.submit({"requirements.txt": "attrs\n", "test_a.py": ""})
    await controller.react()
    done = await finished(world, job)

    assert done.conclusion is JobConclusion.SUCCESS
    assert done.container_id != warm.id
    [image] = [f"ci-deps:{key}" for key in world.runtime.builds]
    # The job image's stays; one of the dependency image joins it for the project's next job.
    await eventually(lambda: len(world.runtime.warm()) == 2)
    assert {(c.id == warm.id, c.image) for c in world.runtime.warm()} == {
        (True, "ci-python:3.11"),
        (False, image),
    }
    await controller.wait_idle()


async def test_with_warm_containers_off_none_is_started(world: World) -> None:
    world.runtime.on_start = passes
    controller = world.controller(warm_containers=False)
    job = await world.submit()

    await controller.reconcile()
    await controller.wait_idle()

    assert (await world.job(job)).conclusion is JobConclusion.SUCCESS
    assert [c for c in world.runtime.containers.values() if c.role == ROLE_WARM] == []


async def test_warm_containers_nobody_references_are_orphans_but_the_current_one_stays(
    world: World,
) -> None:
    dead_controllers = world.runtime.add_container(
        job_id=None, state=ContainerState.RUNNING, role=ROLE_WARM
    )
    controller = world.controller(warm_containers=True)
    await controller.reconcile()
    await eventually(lambda: dead_controllers.id in world.runtime.removed)
    await eventually(lambda: len(world.runtime.warm()) == 1)
    [warm] = world.runtime.warm()

    await controller.reconcile()
    await controller.reconcile()

    assert warm.id in world.runtime.containers
    assert world.runtime.warm() == [warm]


async def test_a_claimed_warm_container_is_adopted_by_its_stored_id(world: World) -> None:
    job = await world.submit()
    assert await world.server.mark_running(job.id, container_id=None)
    claimed = world.runtime.add_container(job_id=None, state=ContainerState.RUNNING, role=ROLE_WARM)
    claimed.project = b"tar"
    first = claimed.emit(b"line 1\n")
    await world.server.set_container(job.id, claimed.id)
    await world.server.append_log(job.id, "line 1\n", cursor=first.position.encode())

    controller = world.controller(warm_containers=True)
    await controller.reconcile()
    assert claimed.id not in world.runtime.removed  # not an orphan: its job references it
    claimed.emit(b"line 2\n")
    claimed.exit(0)
    done = await finished(world, job)

    assert done.conclusion is JobConclusion.SUCCESS
    assert await world.test_output(job) == "line 1\nline 2\n"
    await controller.wait_idle()
    assert claimed.id in world.runtime.removed


async def test_a_claimed_warm_container_without_its_project_gets_it_again(world: World) -> None:
    world.runtime.on_start = passes
    job = await world.submit()
    assert await world.server.mark_running(job.id, container_id=None)
    claimed = world.runtime.add_container(job_id=None, state=ContainerState.RUNNING, role=ROLE_WARM)
    await world.server.set_container(job.id, claimed.id)

    controller = world.controller()
    await controller.reconcile()
    done = await finished(world, job)

    assert done.conclusion is JobConclusion.SUCCESS
    assert claimed.project is not None and claimed.project.endswith(b"\0" * 512)
    assert await world.test_output(job) == "1 passed\n"


async def test_stopping_removes_the_unclaimed_warm_container_but_not_running_jobs(
    world: World,
) -> None:
    controller = world.controller(warm_containers=True)
    stop = asyncio.Event()
    loop = asyncio.create_task(controller.run(stop))
    await eventually(lambda: len(world.runtime.warm()) == 1)
    [warm] = world.runtime.warm()
    job = await world.submit()
    await eventually(lambda: warm.project is not None)  # claimed: the job runs in it
    await eventually(lambda: len(world.runtime.warm()) == 1)  # and a replacement waits

    stop.set()
    await loop

    assert world.runtime.warm() == []
    assert warm.state is ContainerState.RUNNING
    assert (await world.job(job)).container_id == warm.id
    assert (await world.job(job)).status is JobStatus.RUNNING


def test_only_a_warm_containers_bootstrap_waits_for_its_project_without_a_deadline() -> None:
    give_up = f"os._exit({PROJECT_MISSING_EXIT})"
    assert give_up in BOOTSTRAP and f"+ {PROJECT_WAIT_SECONDS}" in BOOTSTRAP
    assert give_up not in WARM_BOOTSTRAP and "never reached" not in WARM_BOOTSTRAP
    assert BOOTSTRAP.replace(give_up, "") != WARM_BOOTSTRAP  # same program otherwise
    compile(BOOTSTRAP, "bootstrap", "exec")
    compile(WARM_BOOTSTRAP, "warm bootstrap", "exec")


def warm_containers_ever(world: World) -> int:
    return sum(1 for c in world.runtime.containers.values() if c.role == ROLE_WARM)


async def test_no_warm_container_is_started_while_jobs_wait_for_a_slot(world: World) -> None:
    held: list[FakeContainer] = []
    world.runtime.on_start = held.append  # jobs run until the test lets them finish
    controller, _ = await warm_controller(world)
    slots = world.settings.max_parallel_jobs
    jobs = [await world.submit() for _ in range(slots + 1)]

    await controller.react()
    await eventually(lambda: len(held) == slots)
    await controller.react()

    # The warm container went to the first job; one job still waits, so none replaced it.
    assert world.runtime.warm() == []
    assert warm_containers_ever(world) == 1

    passes(held[0])  # whichever job reached its container first (projects stage in threads)
    await eventually(lambda: _any_completed(world, jobs))
    await controller.react()  # the waiting job takes the free slot: the queue is empty now
    await eventually(lambda: len(held) == slots + 1)
    await controller.react()
    await eventually(lambda: len(world.runtime.warm()) == 1)  # so the pool fills again
    for container in held[1:]:
        passes(container)
    for job in jobs:
        assert (await finished(world, job)).conclusion is JobConclusion.SUCCESS


async def test_the_next_job_on_a_dependency_image_claims_a_warm_container_of_it(
    world: World,
) -> None:
    world.runtime.on_start = passes
    controller, _ = await warm_controller(world)
    files = {"requirements.txt": "attrs\n", "test_a.py": ""}

    first = await world.submit(files)
    await controller.react()
    first_done = await finished(world, first)
    [image] = [f"ci-deps:{key}" for key in world.runtime.builds]
    assert first_done.container_id not in world.runtime.warm_ids_ever  # nothing warm on it yet
    await eventually(lambda: {c.image for c in world.runtime.warm()} == {"ci-python:3.11", image})

    second = await world.submit(files)
    await controller.react()
    second_done = await finished(world, second)

    assert second_done.conclusion is JobConclusion.SUCCESS
    assert second_done.container_id in world.runtime.warm_ids_ever
    assert world.runtime.warm_images[str(second_done.container_id)] == image
    await controller.wait_idle()

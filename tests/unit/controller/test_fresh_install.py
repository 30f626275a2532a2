"""A cold job installs its dependencies in its own container and runs its tests there; the
image later jobs reuse is built after it (`dependencies.FreshInstall`, against the fake
runtime, which records whether a project ever came while the install's network was on)."""

from __future__ import annotations

import asyncio

from controller_world import World
from fake_runtime import FakeContainer

from ci_common.models import JobConclusion
from ci_controller.runtime import ContainerState

FILES = {"requirements.txt": "attrs\n", "test_a.py": "def test_a(): pass\n"}


def passes(container: FakeContainer) -> None:
    container.emit(b"collected 1 item\n")
    container.emit(b"1 passed\n")
    container.exit(0)


async def test_a_cold_job_installs_and_tests_in_one_container_then_the_image_is_built(
    world: World,
) -> None:
    world.runtime.installs_in_job_containers = True
    world.runtime.on_start = passes
    first = await world.submit(FILES)
    controller = await world.reconciled()  # waits for the background build too

    [key] = world.runtime.installs
    [container_id] = world.runtime.removed
    assert world.runtime.builds == [key]  # the image, built after the job
    done = await world.job(first)
    assert (done.conclusion, done.container_id) == (JobConclusion.SUCCESS, container_id)
    log = await world.log_text(first)
    assert log.count("Collecting things") == 1  # the install's output, stored once
    assert "[ci] installing the dependencies in this job's container" in log
    assert log.index("[ci] dependencies installed in ") < log.index("collected 1 item")
    assert log.endswith("1 passed\n")

    second = await world.submit(FILES)
    await controller.reconcile()
    await controller.wait_idle()

    assert world.runtime.installs == [key] and world.runtime.builds == [key]
    assert "[ci] dependencies: cached image ci-deps:" in await world.log_text(second)
    assert (await world.job(second)).conclusion is JobConclusion.SUCCESS


async def test_the_project_never_reaches_a_container_while_its_install_has_the_network(
    world: World,
) -> None:
    world.runtime.installs_in_job_containers = True
    seen: list[FakeContainer] = []

    def record(container: FakeContainer) -> None:
        seen.append(container)
        passes(container)

    world.runtime.on_start = record
    await world.submit(FILES)
    await world.reconciled()

    [container] = seen
    assert container.installs and container.project is not None
    assert not container.project_with_network


async def test_a_controller_killed_during_the_install_starts_the_job_again_elsewhere(
    world: World,
) -> None:
    world.runtime.installs_in_job_containers = True
    world.runtime.on_start = passes
    job = await world.submit(FILES)
    assert await world.server.mark_running(job.id, container_id=None)
    installing = world.runtime.add_container(job_id=job.id, state=ContainerState.RUNNING)
    installing.installs, installing.network_on = True, True  # the install was under way
    await world.server.set_container(job.id, installing.id)

    await world.reconciled()

    done = await world.job(job)
    assert (done.conclusion, done.attempts) == (JobConclusion.SUCCESS, 2)
    assert installing.id in world.runtime.removed
    assert installing.project is None  # it never got the project
    assert done.container_id != installing.id
    assert "starting the job again (attempt 2 of 3)" in await world.log_text(job)


async def test_an_adopted_container_past_its_install_goes_on_from_the_stored_cursor(
    world: World,
) -> None:
    world.runtime.installs_in_job_containers = True
    job = await world.submit(FILES)
    assert await world.server.mark_running(job.id, container_id=None)
    container = world.runtime.add_container(job_id=job.id, state=ContainerState.RUNNING)
    container.installs, container.project = True, b"the project"
    installed = container.emit(b"[ci] dependencies installed\n")
    await world.server.set_container(job.id, container.id)
    await world.server.append_log(
        job.id, installed.data.decode(), cursor=installed.position.encode()
    )

    controller = world.controller()
    await controller.reconcile()
    passes(container)
    await controller.wait_idle()

    done = await world.job(job)
    assert (done.conclusion, done.attempts) == (JobConclusion.SUCCESS, 1)
    log = await world.log_text(job)
    assert log == "[ci] dependencies installed\ncollected 1 item\n1 passed\n"


async def test_a_failed_install_ends_the_job_as_error_and_builds_no_image(world: World) -> None:
    world.runtime.installs_in_job_containers = True
    world.runtime.build_output = b"ERROR: No matching distribution found for nope\n"
    world.runtime.build_exit_code = 1
    job = await world.submit({**FILES, "requirements.txt": "nope\n"})
    await world.reconciled()

    await world.assert_error_says(job, "requirements.txt")
    assert "No matching distribution found for nope" in await world.log_text(job)
    assert world.runtime.builds == []
    assert world.runtime.containers == {}


async def test_tests_with_a_network_get_an_image_built_before_them(world: World) -> None:
    world.runtime.installs_in_job_containers = True
    world.runtime.on_start = passes
    job = await world.submit(FILES)
    await world.reconciled(job_network="bridge")

    assert world.runtime.installs == []
    assert len(world.runtime.builds) == 1
    assert "[ci] installing the dependencies into a new dependency image" in (
        await world.log_text(job)
    )


async def test_a_cancel_during_the_install_ends_the_job_and_removes_its_container(
    world: World,
) -> None:
    world.runtime.installs_in_job_containers = True
    world.runtime.build_gate = asyncio.Event()  # the install never ends by itself
    job = await world.submit(FILES)
    controller = world.controller()
    await controller.reconcile()
    deadline = asyncio.get_running_loop().time() + 5
    while not world.runtime.installs:
        assert asyncio.get_running_loop().time() < deadline, "the install never began"
        await asyncio.sleep(0.01)

    await world.server.request_cancel(job.id)
    await controller.react()
    await controller.wait_idle()

    assert (await world.job(job)).conclusion is JobConclusion.CANCELLED
    assert world.runtime.containers == {}
    assert world.runtime.builds == []  # nothing was installed: no image to build

"""The way from a dispatched job to its tests: independent engine and database waits overlap
instead of adding up. Each spy makes the upload's copy out of the database wait for the other
call to begin: run in turn, it would wait out its deadline."""

from __future__ import annotations

import asyncio

from controller_world import World
from test_warm_pool import finished, passes, warm_controller

from ci_common.models import JobConclusion
from ci_controller.runtime import ContainerInfo

OVERLAP_DEADLINE = 2.0


def copy_waiting_for(world: World, asked: asyncio.Event) -> list[bool]:
    """Make the job's upload copy wait for `asked`; the list says whether it came in time."""
    overlapped: list[bool] = []
    real_copy = world.repo.copy_archive

    async def copy_archive(*args: object, **kwargs: object) -> bool:
        try:
            await asyncio.wait_for(asked.wait(), OVERLAP_DEADLINE)
            overlapped.append(True)
        except TimeoutError:
            overlapped.append(False)
        return await real_copy(*args, **kwargs)  # type: ignore[arg-type]  # passed through

    world.repo.copy_archive = copy_archive  # type: ignore[method-assign]  # a spy
    return overlapped


async def test_the_warm_container_is_inspected_while_the_upload_is_unpacked(
    world: World,
) -> None:
    world.runtime.on_start = passes
    controller, warm = await warm_controller(world)
    runtime = world.runtime
    asked = asyncio.Event()
    project_in: list[bool] = []
    real_inspect = runtime.inspect

    async def inspect(container_id: str) -> ContainerInfo | None:
        if container_id == warm.id:
            asked.set()
            project_in.append(warm.project is not None)
        return await real_inspect(container_id)

    runtime.inspect = inspect
    overlapped = copy_waiting_for(world, asked)
    job = await world.submit()
    await controller.react()
    done = await finished(world, job)

    assert done.conclusion is JobConclusion.SUCCESS and done.container_id == warm.id
    assert overlapped == [True]
    # Asked once, and before the project went in: a container that exited because its tests
    # ran is never taken for one that died while idle.
    assert project_in == [False]


async def test_the_image_is_looked_up_while_the_upload_is_unpacked(world: World) -> None:
    world.runtime.on_start = passes
    controller = world.controller()
    await controller.reconcile()
    await controller.wait_idle()
    asked = asyncio.Event()
    real_ensure = world.runtime.ensure_image

    async def ensure_image(image: str) -> str:
        asked.set()
        return await real_ensure(image)

    world.runtime.ensure_image = ensure_image
    overlapped = copy_waiting_for(world, asked)
    job = await world.submit()
    await controller.react()
    done = await finished(world, job)

    assert done.conclusion is JobConclusion.SUCCESS
    assert overlapped == [True]

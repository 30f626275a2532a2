"""Each container is placed on `ceil(CI_JOB_CPUS)` CPUs, least used first, so the CPUs its
tests see (`os.sched_getaffinity`) are the CPUs it may use."""

from __future__ import annotations

import dataclasses
from typing import cast

from fake_engine import FakeEngine

from ci_common.models import JobId
from ci_controller.cpu_sets import CpuSets, cpuset_text
from ci_controller.docker.engine_api import EngineApi
from ci_controller.docker.runtime import DockerRuntime
from ci_controller.runtime import JobContainerSpec, Sandbox

SANDBOX = Sandbox(
    network="none", memory="1g", cpus=1.0, pids=64, disk=1 << 30, max_log_bytes=1 << 20
)


def test_cpus_are_rounded_up_and_capped_at_the_engines() -> None:
    cpus = CpuSets(4)
    assert cpus.take(0.5) == (0,)
    assert CpuSets(4).take(1.5) == (0, 1)
    assert CpuSets(2).take(8) == (0, 1)
    assert cpuset_text((0, 2, 3)) == "0,2,3"


def test_the_least_used_cpus_are_taken_and_given_back() -> None:
    cpus = CpuSets(2)
    first = cpus.take(1)
    cpus.hold("a", first)
    second = cpus.take(1)
    cpus.hold("b", second)
    assert (first, second) == ((0,), (1,))
    cpus.release("a")
    cpus.release("a")  # twice is harmless
    assert cpus.take(1) == (0,)
    cpus.give_back((0,))  # its container was never created
    cpus.release("b")
    assert cpus.take(2) == (0, 1)


async def test_job_containers_get_cpusets_spread_over_the_engine() -> None:
    engine = FakeEngine()
    engine.cpus = 2
    api = cast(EngineApi, engine)
    runtime = DockerRuntime(installation_id="abc123def456", calls=api, streams=api)

    async def create(job: str, sandbox: Sandbox = SANDBOX) -> str:
        return await runtime.create_job_container(
            JobContainerSpec(
                job_id=JobId(job),
                image="ci-python:3.11",
                command=("python", "-m", "pytest"),
                sandbox=sandbox,
                project_tar=b"",  # pyright: ignore[reportArgumentType] -- never read here
            )
        )

    def cpuset(container_id: str) -> object:
        return engine.containers[container_id].host_config["cpuset_cpus"]

    first, second = await create("j1"), await create("j2")
    assert (cpuset(first), cpuset(second)) == ("0", "1")
    await runtime.remove(first)
    third = await create("j3")
    assert cpuset(third) == "0"
    wide = await create("j4", dataclasses.replace(SANDBOX, cpus=2.0))
    assert (cpuset(wide), engine.containers[wide].host_config["nano_cpus"]) == ("0,1", 2e9)

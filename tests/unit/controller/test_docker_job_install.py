"""What `DockerRuntime` asks the engine for when a job's own container installs its
dependencies: the job's sandbox and labels on the checked build network, then no network at
all before `install_in_job_container` returns (against `fake_engine`)."""

from __future__ import annotations

import io
import tarfile
from typing import cast

import pytest
from fake_engine import CreatedContainer, FakeEngine

from ci_common.models import JobId
from ci_controller.bootstrap import BOOTSTRAP, JOB_COMMAND, JOB_ENVIRONMENT
from ci_controller.dependency_plan import InstallStep, StepKind
from ci_controller.dependency_script import INSTALLED_MARKER
from ci_controller.docker.engine_api import EngineApi
from ci_controller.docker.runtime import DockerRuntime
from ci_controller.runtime import (
    DependencyBuildSpec,
    DependencyInstallError,
    InstallingJobSpec,
    LogFrame,
    RuntimeFault,
    Sandbox,
)

INSTALLATION = "abc123def456"
JOB_SANDBOX = Sandbox(
    network="none", memory="1g", cpus=0.5, pids=64, disk=1 << 30, max_log_bytes=1 << 20
)
BUILD_SANDBOX = Sandbox(
    network="isolated", memory="1g", cpus=0.5, pids=64, disk=1 << 30, max_log_bytes=1 << 20
)
NETWORK = f"ci-build-{INSTALLATION}"
SPEC = InstallingJobSpec(
    job_id=JobId("j1"),
    image="ci-python:3.11",
    command=JOB_COMMAND,
    sandbox=JOB_SANDBOX,
    environment=JOB_ENVIRONMENT,
    build=DependencyBuildSpec(
        base_image="ci-python:3.11",
        key="k1",
        steps=(InstallStep(StepKind.REQUIREMENTS, ("requirements.txt",)),),
        files={"requirements.txt": b"attrs\n"},
        sandbox=BUILD_SANDBOX,
    ),
)


def installs(container: CreatedContainer) -> bool:
    return container.command[:2] == ["sh", "-c"]


def succeeding(container: CreatedContainer) -> list[bytes]:
    if installs(container):
        return [b"+ attrs==26.1.0\n", INSTALLED_MARKER.encode() + b"\n"]
    return [b"the Docker host is unreachable\n"]


async def install(engine: FakeEngine) -> tuple[DockerRuntime, str, list[LogFrame]]:
    api = cast(EngineApi, engine)
    runtime = DockerRuntime(installation_id=INSTALLATION, calls=api, streams=api)
    frames: list[LogFrame] = []

    async def output(frame: LogFrame) -> None:
        frames.append(frame)

    container_id = await runtime.create_installing_job_container(SPEC)
    await runtime.install_in_job_container(container_id, SPEC, output=output)
    return runtime, container_id, frames


async def test_the_install_runs_in_the_job_sandbox_on_the_build_network_then_it_is_gone() -> None:
    engine = FakeEngine()
    engine.output = succeeding

    _, container_id, frames = await install(engine)

    container = engine.containers[container_id]
    assert container.labels == {
        "ci.installation": INSTALLATION,
        "ci.engine": "default",
        "ci.role": "job",
        "ci.job_id": "j1",
        "ci.dependency_key": "k1",
    }
    assert container.user == "1000:1000"
    config = container.host_config
    assert config["cap_drop"] == ["ALL"]
    assert config["security_opt"] == ["no-new-privileges"]
    assert (config["mem_limit"], config["nano_cpus"], config["pids_limit"]) == ("1g", 5e8, 64)
    assert set(config["tmpfs"]) == {"/tmp", "/var/tmp"}  # pyright: ignore[reportArgumentType] -- the fake keeps options as given
    assert [m["Target"] for m in config["mounts"]] == ["/workspace"]  # pyright: ignore[reportGeneralTypeIssues,reportUnknownVariableType] -- the SDK's Mount is a dict
    assert config["network_mode"] == NETWORK
    # The install, then the job's own first process with the job's command.
    assert "UV_COMPILE_BYTECODE=0" in container.command[2]
    assert container.command[3:] == ["sh", "python", "-c", BOOTSTRAP, *JOB_COMMAND]
    assert container.environment == JOB_ENVIRONMENT
    [(path, data)] = container.archives
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert path == "/" and "ci-build/deps/requirements.txt" in tar.getnames()
    # The build network was checked before the start, and taken away before the return.
    [check] = [c for c in engine.containers.values() if not installs(c)]
    assert engine.started == [check.id, container_id]
    assert engine.disconnects == [(container_id, NETWORK)]
    assert container.networks == []
    assert [frame.data for frame in frames] == [
        b"+ attrs==26.1.0\n",
        INSTALLED_MARKER.encode() + b"\n",
    ]


async def test_a_network_left_on_the_container_refuses_the_tests() -> None:
    engine = FakeEngine()
    engine.output = succeeding
    engine.disconnect_works = False

    with pytest.raises(RuntimeFault) as refused:
        await install(engine)

    assert f"still on the network(s) {NETWORK}" in str(refused.value)
    assert "the tests were not started" in str(refused.value)


async def test_a_failed_install_is_the_installers_error_and_the_network_stays_unused() -> None:
    engine = FakeEngine(exit_code=lambda command: 1 if command[:2] == ["sh", "-c"] else 0)
    engine.output = lambda container: [b"ERROR: no matching distribution for nope\n"]

    with pytest.raises(DependencyInstallError) as failed:
        await install(engine)

    assert failed.value.exit_code == 1
    assert "requirements.txt" in str(failed.value)
    assert engine.disconnects == []

"""What `DockerRuntime` asks the engine for when it builds dependencies: the job's sandbox, a
confined network that is checked first, and no shared cache (against `fake_engine`)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import tarfile
import threading
from typing import cast

import pytest
import requests
from fake_engine import CreatedContainer, FakeEngine

from ci_common.models import JobId
from ci_controller.dependency_plan import InstallStep, StepKind
from ci_controller.docker import build_network
from ci_controller.docker.engine_api import EngineApi
from ci_controller.docker.labels import OwnerLabels
from ci_controller.docker.runtime import DockerRuntime
from ci_controller.runtime import (
    DependencyBuildSpec,
    EngineLostError,
    JobContainerSpec,
    RuntimeFault,
    Sandbox,
)

INSTALLATION = "abc123def456"
SANDBOX = Sandbox(
    network="isolated", memory="1g", cpus=0.5, pids=64, disk=1 << 30, max_log_bytes=1 << 20
)
ON_BRIDGE = dataclasses.replace(SANDBOX, network="bridge")


def runtime_on(engine: FakeEngine) -> DockerRuntime:
    api = cast(EngineApi, engine)
    return DockerRuntime(installation_id=INSTALLATION, calls=api, streams=api)


def build_spec(sandbox: Sandbox = SANDBOX) -> DependencyBuildSpec:
    return DependencyBuildSpec(
        base_image="ci-python:3.11",
        key="k1",
        steps=(InstallStep(StepKind.REQUIREMENTS, ("requirements.txt",)),),
        files={"requirements.txt": b"attrs\n"},
        sandbox=sandbox,
    )


async def build(runtime: DockerRuntime, spec: DependencyBuildSpec) -> tuple[str, str]:
    output: list[str] = []

    async def sink(text: str) -> None:
        output.append(text)

    image = await runtime.build_dependency_image(spec, output=sink)
    return image, "".join(output)


def is_check(command: list[str]) -> bool:
    return "socket.create_connection" in " ".join(command)


def the_build(engine: FakeEngine) -> CreatedContainer:
    [container] = [c for c in engine.containers.values() if c.command[:2] == ["sh", "-c"]]
    return container


async def test_a_build_runs_as_the_job_user_with_the_job_limits_and_no_capabilities() -> None:
    engine = FakeEngine()

    image, output = await build(runtime_on(engine), build_spec())

    assert image == f"ci-deps-{INSTALLATION}:k1"
    assert "fake output" in output
    container = the_build(engine)
    assert container.user == "1000:1000"
    config = container.host_config
    assert config["cap_drop"] == ["ALL"]
    assert config["security_opt"] == ["no-new-privileges"]
    assert (config["mem_limit"], config["nano_cpus"], config["pids_limit"]) == ("1g", 5e8, 64)
    assert config["network_mode"] == f"ci-build-{INSTALLATION}"
    assert "mounts" not in config and "binds" not in config
    assert engine.volumes == []  # the old shared ci-pip-cache is gone
    assert "export PIP_NO_CACHE_DIR=1 " in container.command[2]
    assert container.environment == {}  # a commit would keep it in the image
    [(path, data)] = container.archives
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        owners = {m.name: (m.uid, m.gid) for m in tar.getmembers()}
    assert (path, owners) == (
        "/",
        {
            "ci-build": (1000, 1000),
            "ci-build/src": (1000, 1000),
            "ci-build/deps": (1000, 1000),
            "ci-build/deps/requirements.txt": (1000, 1000),
        },
    )
    await eventually_removed(engine, container.id)
    [(_, repository, tag, changes)] = engine.commits
    assert (repository, tag, changes[0]) == (f"ci-deps-{INSTALLATION}", "k1", "USER ci")


async def test_a_build_and_a_job_container_get_the_same_sandbox() -> None:
    engine = FakeEngine()
    runtime = runtime_on(engine)
    await build(runtime, build_spec(ON_BRIDGE))
    job = await runtime.create_job_container(
        JobContainerSpec(
            job_id=JobId("j1"),
            image="ci-python:3.11",
            command=("python", "-m", "pytest"),
            sandbox=ON_BRIDGE,
            project_tar=b"",
        )
    )

    # The same sandbox; only the job gets bounded writable places (CI_JOB_DISK), which a
    # build cannot have: its requirements are copied into /tmp before it starts.
    job_config = dict(engine.containers[job].host_config)
    assert set(job_config.pop("tmpfs")) == {"/tmp", "/var/tmp"}  # pyright: ignore[reportArgumentType] -- the fake keeps options as given
    assert [m["Target"] for m in job_config.pop("mounts")] == ["/workspace"]  # pyright: ignore[reportGeneralTypeIssues,reportUnknownVariableType] -- the SDK's Mount is a dict
    assert job_config == the_build(engine).host_config
    assert engine.containers[job].user == the_build(engine).user


async def test_the_isolated_network_is_the_installations_own_and_checked_first() -> None:
    engine = FakeEngine()

    await build(runtime_on(engine), build_spec())

    network = engine.networks[f"ci-build-{INSTALLATION}"]
    assert network["Options"] == {
        "com.docker.network.bridge.name": f"cib{INSTALLATION}",
        "com.docker.network.bridge.enable_icc": "false",
    }
    assert network["Labels"] == {"ci.installation": INSTALLATION}
    check, build_container = sorted(
        engine.containers.values(), key=lambda c: not is_check(c.command)
    )
    assert is_check(check.command)
    # The build container is made while the check runs, and started only after it passed.
    assert engine.started == [check.id, build_container.id]
    assert check.command[-2:] == ["172.20.0.1", "9"]  # the gateway: the Docker host itself
    assert check.user == "1000:1000"
    assert check.host_config["network_mode"] == f"ci-build-{INSTALLATION}"
    assert check.host_config["cap_drop"] == ["ALL"]


async def test_a_second_build_reuses_the_network() -> None:
    engine = FakeEngine()
    runtime = runtime_on(engine)

    await build(runtime, build_spec())
    await build(runtime, build_spec())

    assert list(engine.networks) == [f"ci-build-{INSTALLATION}"]


async def eventually_removed(engine: FakeEngine, container_id: str) -> None:
    deadline = asyncio.get_running_loop().time() + 5
    while container_id not in engine.removed:
        assert asyncio.get_running_loop().time() < deadline, "the build container stayed"
        await asyncio.sleep(0.01)


async def test_the_image_is_ready_before_the_build_container_is_removed() -> None:
    engine = FakeEngine()
    engine.removal_gate = threading.Event()  # the engine is slow to remove containers
    try:
        # On a network used as it is: no check container, whose removal would wait too.
        building = build(runtime_on(engine), build_spec(ON_BRIDGE))
        image, _ = await asyncio.wait_for(building, timeout=3)
        assert image == f"ci-deps-{INSTALLATION}:k1"
        assert engine.removed == []
    finally:
        engine.removal_gate.set()
    await eventually_removed(engine, the_build(engine).id)


def checks(engine: FakeEngine) -> int:
    return sum(is_check(c.command) for c in engine.containers.values())


async def test_a_passed_check_holds_for_a_while_then_the_next_build_checks_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(build_network, "_now", lambda: now[0])
    engine = FakeEngine()
    runtime = runtime_on(engine)

    await build(runtime, build_spec())
    now[0] += build_network.CHECK_VALID_SECONDS - 1
    await build(runtime, build_spec())
    assert checks(engine) == 1  # the second build started without a check of its own

    now[0] += 2
    await build(runtime, build_spec())
    assert checks(engine) == 2


async def test_concurrent_builds_wait_for_one_check() -> None:
    engine = FakeEngine()
    runtime = runtime_on(engine)

    await asyncio.gather(*(build(runtime, build_spec()) for _ in range(3)))

    assert checks(engine) == 1
    assert len(engine.commits) == 3


async def test_a_failed_check_is_not_kept_so_a_fixed_firewall_needs_no_restart() -> None:
    open_host = [True]
    engine = FakeEngine(exit_code=lambda command: int(is_check(command) and open_host[0]))
    runtime = runtime_on(engine)

    with pytest.raises(RuntimeFault):
        await build(runtime, build_spec())
    with pytest.raises(RuntimeFault):
        await build(runtime, build_spec())
    open_host[0] = False  # the firewall script was run
    image, _ = await build(runtime, build_spec())

    assert image == f"ci-deps-{INSTALLATION}:k1"
    assert checks(engine) == 3


async def test_a_build_network_made_again_is_checked_again() -> None:
    engine = FakeEngine()
    runtime = runtime_on(engine)
    await build(runtime, build_spec())

    del engine.networks[f"ci-build-{INSTALLATION}"]  # removed by hand
    await build(runtime, build_spec())

    assert checks(engine) == 2


async def test_a_build_network_that_reaches_the_docker_host_refuses_the_build() -> None:
    engine = FakeEngine(exit_code=lambda command: 1 if is_check(command) else 0)

    with pytest.raises(RuntimeFault) as refused:
        await build(runtime_on(engine), build_spec())

    message = str(refused.value)
    assert "not confined" in message
    assert "scripts/build-network-firewall" in message
    assert "CI_BUILD_NETWORK=bridge" in message
    assert all(is_check(engine.containers[c].command) for c in engine.started)  # no build began
    assert sorted(engine.containers) == sorted(engine.removed)
    assert engine.commits == []


async def test_another_build_network_is_used_as_it_is_without_a_check() -> None:
    engine = FakeEngine()

    await build(runtime_on(engine), build_spec(ON_BRIDGE))

    assert engine.networks == {}
    assert [c.host_config["network_mode"] for c in engine.containers.values()] == ["bridge"]


async def test_an_image_whose_python_the_job_user_cannot_write_says_which_image_to_use() -> None:
    engine = FakeEngine(exit_code=lambda command: 97 if command[:2] == ["sh", "-c"] else 0)

    with pytest.raises(RuntimeFault) as refused:
        await build(runtime_on(engine), build_spec())

    assert "does not let the job user (uid 1000) install" in str(refused.value)
    assert "scripts/build-job-image" in str(refused.value)
    assert engine.commits == []


def test_another_engines_build_network_has_a_bridge_of_its_own() -> None:
    """Two engines on one machine share its interfaces: their build bridges must differ."""
    default = build_network.network_names(OwnerLabels(INSTALLATION))
    second = build_network.network_names(OwnerLabels(INSTALLATION, "second"))
    assert default == (f"ci-build-{INSTALLATION}", f"cib{INSTALLATION}")
    assert second[1] != default[1] and second[1].startswith("cib") and len(second[1]) <= 15
    assert second[0] == f"ci-build-{INSTALLATION}-second"


class _FailingStart(FakeEngine):
    """An engine whose start fails as a dropped connection does."""

    def start(self, container: str) -> None:
        raise requests.ConnectionError("Connection aborted.")


class _GoneEngine(_FailingStart):
    """An engine that stopped answering: the ping fails too."""

    def ping(self) -> bool:
        raise requests.ConnectionError("Connection refused")


async def test_an_engine_that_stops_answering_is_named_in_the_error() -> None:
    api = cast(EngineApi, _GoneEngine())
    runtime = DockerRuntime(installation_id=INSTALLATION, calls=api, streams=api, engine="second")
    with pytest.raises(EngineLostError, match="the Docker engine 'second' was lost"):
        await runtime.start("c1")

    answering = runtime_on(_FailingStart())
    with pytest.raises(RuntimeFault) as raised:  # a failing call on a live engine stays as it is
        await answering.start("c1")
    assert not isinstance(raised.value, EngineLostError)

"""`ContainerRuntime` on a Docker engine, for one installation, composed of parts with one
job each: `ImageIds` (the job image), `Containers` (job containers), `DependencyImages` (the
cached dependency builds), `JobInstalls` (job containers that install their own, for a cold
job) and the Python probe.

The runtime holds the parts and hands each only what it needs (the engine's API clients, the
owner's labels, `Sandboxes`, a `ContainerRunner`); no part sees the runtime. Connects to the
engine `DOCKER_HOST` names, or the local socket (`connection`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import IO, TypeVar

from ci_common.models import DEFAULT_ENGINE
from ci_controller.docker.connection import connect_engine
from ci_controller.docker.containers import Containers
from ci_controller.docker.dependency_images import DependencyImages
from ci_controller.docker.engine_api import ENGINE_ERRORS, EngineApi
from ci_controller.docker.image_ids import ImageIds
from ci_controller.docker.job_install import JobInstalls
from ci_controller.docker.labels import OwnerLabels
from ci_controller.docker.python_probe import python_in_image
from ci_controller.docker.sandboxes import Sandboxes
from ci_controller.log_cursor import LogPosition
from ci_controller.runtime import (
    ContainerInfo,
    DependencyBuildSpec,
    EngineLostError,
    ExitStatus,
    FrameSink,
    InstallingJobSpec,
    JobContainerSpec,
    LogFrame,
    OutputSink,
    RuntimeFault,
    WarmContainerSpec,
)

T = TypeVar("T")


class DockerRuntime:
    """Implements `ci_controller.runtime.ContainerRuntime` on the Docker SDK."""

    installs_in_job_containers = True

    def __init__(
        self,
        *,
        installation_id: str,
        calls: EngineApi,
        streams: EngineApi,
        engine: str = DEFAULT_ENGINE,
    ) -> None:
        owner = OwnerLabels(installation_id, engine)
        sandboxes = Sandboxes(calls)
        self._calls = calls
        self._streams = streams
        self._owner = owner
        self._images = ImageIds(calls)
        self._containers = Containers(
            owner=owner, calls=calls, streams=streams, sandboxes=sandboxes
        )
        self._dependencies = DependencyImages(
            owner=owner, calls=calls, sandboxes=sandboxes, runner=self._containers
        )
        self._installs = JobInstalls(
            owner=owner,
            calls=calls,
            sandboxes=sandboxes,
            runner=self._containers,
            network=self._dependencies.network,
        )

    @classmethod
    def connect(
        cls, *, installation_id: str, engine: str = DEFAULT_ENGINE, docker_host: str | None = None
    ) -> DockerRuntime:
        """The runtime on the engine at `docker_host` (else `DOCKER_HOST`, else the local
        socket), named `engine`; `RuntimeFault` with what to do when it does not answer."""
        calls, streams = connect_engine(docker_host)
        return cls(installation_id=installation_id, calls=calls, streams=streams, engine=engine)

    def close(self) -> None:
        self._calls.close()
        self._streams.close()

    # The engine itself.

    async def _on_engine(self, call: Awaitable[T]) -> T:
        """`call`, with a failure of the engine itself (it does not answer a ping any more)
        raised as `EngineLostError` naming it, so a job says which engine was lost."""
        try:
            return await call
        except RuntimeFault as exc:
            raise await self._lost_or(exc) from exc

    async def _lost_or(self, fault: RuntimeFault) -> RuntimeFault:
        if isinstance(fault, EngineLostError) or await asyncio.to_thread(self._answers):
            return fault
        return EngineLostError(
            f"the Docker engine {self._owner.engine!r} was lost while the job ran ({fault}); "
            "submit the job again"
        )

    def _answers(self) -> bool:
        try:
            self._calls.ping()
        except ENGINE_ERRORS:
            return False
        return True

    # Images.

    async def ensure_image(self, image: str) -> str:
        return await self._images.ensure(image)

    async def python_version(self, image: str) -> str:
        return await python_in_image(
            self._calls, image=image, owner=self._owner, runner=self._containers
        )

    async def find_dependency_image(self, key: str) -> str | None:
        return await asyncio.to_thread(self._dependencies.find, key)

    async def build_dependency_image(self, spec: DependencyBuildSpec, *, output: OutputSink) -> str:
        return await self._dependencies.build(spec, output=output)

    async def installed_distributions(self, image: str) -> dict[str, str]:
        return await self._dependencies.installed(image)

    async def collect_dependency_images(self, *, keep: int) -> list[str]:
        return await asyncio.to_thread(self._dependencies.collect, keep)

    # Containers.

    async def create_job_container(self, spec: JobContainerSpec) -> str:
        return await self._on_engine(self._containers.create_job_container(spec))

    async def create_installing_job_container(self, spec: InstallingJobSpec) -> str:
        return await self._on_engine(self._installs.create(spec))

    async def install_in_job_container(
        self, container_id: str, spec: InstallingJobSpec, *, output: FrameSink
    ) -> LogPosition:
        return await self._on_engine(self._installs.install(container_id, spec, output=output))

    async def start(self, container_id: str) -> None:
        await self._on_engine(self._containers.start(container_id))

    async def start_warm_container(self, spec: WarmContainerSpec) -> str:
        return await self._on_engine(self._containers.start_warm_container(spec))

    async def put_project(self, container_id: str, project_tar: Path) -> None:
        await self._on_engine(self._containers.put_project(container_id, project_tar))

    async def has_project(self, container_id: str) -> bool:
        return await self._on_engine(self._containers.has_project(container_id))

    async def follow_logs(
        self, container_id: str, *, after: LogPosition | None
    ) -> AsyncIterator[LogFrame]:
        try:
            async for frame in self._containers.follow_logs(container_id, after=after):
                yield frame
        except RuntimeFault as exc:
            raise await self._lost_or(exc) from exc

    async def wait(self, container_id: str) -> ExitStatus:
        return await self._on_engine(self._containers.wait(container_id))

    async def copy_out(
        self, container_id: str, path: str, *, into: IO[bytes], max_bytes: int
    ) -> bool:
        return await self._on_engine(
            self._containers.copy_out(container_id, path, into=into, max_bytes=max_bytes)
        )

    async def stop(self, container_id: str, *, grace: float) -> None:
        await self._on_engine(self._containers.stop(container_id, grace=grace))

    async def remove(self, container_id: str) -> None:
        await self._containers.remove(container_id)

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        return await self._containers.inspect(container_id)

    async def list_containers(self) -> list[ContainerInfo]:
        return await self._containers.list_containers()

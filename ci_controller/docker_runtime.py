"""`ContainerRuntime` on a Docker engine: containers (`docker_containers`) plus cached
dependency images (`dependency_images`) and job containers that install their own
(`docker_job_install`), for one installation.

Connects to the engine `DOCKER_HOST` names, or the local socket; nothing is bind-mounted, so a
remote engine works the same as a local one.
"""

from __future__ import annotations

import asyncio

from ci_controller.dependency_images import DependencyImages
from ci_controller.docker_containers import DockerContainers, connect_engine
from ci_controller.docker_job_install import JobInstalls
from ci_controller.docker_python import python_in_image
from ci_controller.engine_api import EngineApi
from ci_controller.log_cursor import LogPosition
from ci_controller.runtime import DependencyBuildSpec, FrameSink, InstallingJobSpec, OutputSink


class DockerRuntime(DockerContainers):
    """Implements `ci_controller.runtime.ContainerRuntime` on the Docker SDK."""

    installs_in_job_containers = True

    def __init__(self, *, installation_id: str, calls: EngineApi, streams: EngineApi) -> None:
        super().__init__(installation_id=installation_id, calls=calls, streams=streams)
        self._dependencies = DependencyImages(
            installation_id=installation_id, calls=calls, containers=self
        )
        self._calls = calls
        self._installs = JobInstalls(
            calls=calls, containers=self, network=self._dependencies.network
        )

    @classmethod
    def connect(cls, *, installation_id: str) -> DockerRuntime:
        """`RuntimeFault` with what to do when the engine does not answer."""
        calls, streams = connect_engine()
        return cls(installation_id=installation_id, calls=calls, streams=streams)

    async def python_version(self, image: str) -> str:
        return await python_in_image(self._calls, self, image)

    async def find_dependency_image(self, key: str) -> str | None:
        return await asyncio.to_thread(self._dependencies.find, key)

    async def build_dependency_image(self, spec: DependencyBuildSpec, *, output: OutputSink) -> str:
        return await self._dependencies.build(spec, output=output)

    async def installed_distributions(self, image: str) -> dict[str, str]:
        return await self._dependencies.installed(image)

    async def collect_dependency_images(self, *, keep: int) -> list[str]:
        return await asyncio.to_thread(self._dependencies.collect, keep)

    async def create_installing_job_container(self, spec: InstallingJobSpec) -> str:
        return await self._installs.create(spec)

    async def install_in_job_container(
        self, container_id: str, spec: InstallingJobSpec, *, output: FrameSink
    ) -> LogPosition:
        return await self._installs.install(container_id, spec, output=output)

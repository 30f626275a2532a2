"""`ContainerRuntime` on a Docker engine: containers (`docker_containers`) plus cached
dependency images (`dependency_images`), for one installation.

Connects to the engine `DOCKER_HOST` names, or the local socket; nothing is bind-mounted, so a
remote engine works the same as a local one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ci_controller.dependency_images import DependencyImages
from ci_controller.docker_containers import DockerContainers, connect_engine
from ci_controller.docker_results import follow_results
from ci_controller.engine_api import EngineApi
from ci_controller.log_cursor import LogPosition
from ci_controller.runtime import ContainerState, DependencyBuildSpec, LogFrame, OutputSink


class DockerRuntime(DockerContainers):
    """Implements `ci_controller.runtime.ContainerRuntime` on the Docker SDK."""

    def __init__(self, *, installation_id: str, calls: EngineApi, streams: EngineApi) -> None:
        super().__init__(installation_id=installation_id, calls=calls, streams=streams)
        self._result_streams = streams
        self._dependencies = DependencyImages(
            installation_id=installation_id, calls=calls, containers=self
        )

    @classmethod
    def connect(cls, *, installation_id: str) -> DockerRuntime:
        """`RuntimeFault` with what to do when the engine does not answer."""
        calls, streams = connect_engine()
        return cls(installation_id=installation_id, calls=calls, streams=streams)

    async def find_dependency_image(self, key: str) -> str | None:
        return await asyncio.to_thread(self._dependencies.find, key)

    async def build_dependency_image(self, spec: DependencyBuildSpec, *, output: OutputSink) -> str:
        return await self._dependencies.build(spec, output=output)

    async def installed_distributions(self, image: str) -> dict[str, str]:
        return await self._dependencies.installed(image)

    async def collect_dependency_images(self, *, keep: int) -> list[str]:
        return await asyncio.to_thread(self._dependencies.collect, keep)

    def follow_results(
        self, container_id: str, *, after: LogPosition | None
    ) -> AsyncIterator[LogFrame]:
        async def running() -> bool:
            info = await self.inspect(container_id)
            return info is not None and info.state is ContainerState.RUNNING

        return follow_results(self._result_streams, container_id, after=after, running=running)

"""A cold job's dependencies installed by its own container, right before its tests.

A job whose dependency image does not exist yet would otherwise wait for a build container
to start, install, compile bytecode and be committed, and then for its own container to be
created and started: twice the container start and a commit more than `uv pip install &&
pytest` in one `docker run`. Here the job's container does both, in that order:

1. It is made like any job container (`Sandboxes.create` with the bounded
   places, the job's labels and limits) but on the build network (checked as for a build,
   `build_network`), with the dependency key as a label, and its first process is the install
   script (`dependency_script.install_then_exec_script`) with the plan's files staged in it.
2. The install's output goes to the job's log with its positions. When it has succeeded the
   script prints `INSTALLED_MARKER` and execs the job's bootstrap, which waits for its
   project (printing nothing).
3. On that line the controller disconnects the container from every network and checks that
   none is left. Only then does `put_project` hand it the project, and only the project lets
   the tests begin: the tests never run with the network the install had.

Nothing of this container is committed: the tests could have written into its Python
environment, and the image is shared by everyone whose dependencies have the same key. The
image later jobs reuse is built apart, after the job (`dependencies`).

A line that is the marker but printed early by the build's own code (a build backend) only
takes the network away sooner, from the same job: its later downloads fail and so does the
job.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncGenerator
from typing import cast

from ci_controller.bootstrap import BOOTSTRAP, JOB_WORKDIR
from ci_controller.dependency_script import INSTALLED_MARKER, install_then_exec_script
from ci_controller.docker.build_network import BuildNetwork
from ci_controller.docker.dependency_images import install_failure, staging_tar
from ci_controller.docker.engine_api import ENGINE_ERRORS, EngineApi, Json, explain
from ci_controller.docker.labels import OwnerLabels
from ci_controller.docker.running import ContainerRunner
from ci_controller.docker.sandboxes import Sandboxes
from ci_controller.log_cursor import LogPosition
from ci_controller.runtime import (
    LABEL_DEPENDENCY_KEY,
    ROLE_JOB,
    FrameSink,
    InstallingJobSpec,
    LogFrame,
    RuntimeFault,
)

logger = logging.getLogger(__name__)

_MARKER = INSTALLED_MARKER.encode()


class JobInstalls:
    """Job containers that install their dependencies before their tests."""

    def __init__(
        self,
        *,
        owner: OwnerLabels,
        calls: EngineApi,
        sandboxes: Sandboxes,
        runner: ContainerRunner,
        network: BuildNetwork,
    ) -> None:
        self._owner = owner
        self._api = calls
        self._sandboxes = sandboxes
        self._runner = runner
        self._network = network

    async def create(self, spec: InstallingJobSpec) -> str:
        sandbox, gateway = await self._network.ready(spec.build.sandbox)
        # The network check (when due) runs while the container is made and filled.
        checked = asyncio.ensure_future(
            self._network.check(image=spec.image, sandbox=sandbox, gateway=gateway)
            if gateway is not None
            else asyncio.sleep(0)
        )
        labels = self._owner.for_role(ROLE_JOB, job_id=spec.job_id)
        labels[LABEL_DEPENDENCY_KEY] = spec.build.key
        script = install_then_exec_script(spec.build.steps)

        def create() -> str:
            try:
                container_id = self._sandboxes.create(
                    spec.image,
                    command=["sh", "-c", script, "sh", "python", "-c", BOOTSTRAP, *spec.command],
                    sandbox=dataclasses.replace(spec.sandbox, network=sandbox.network),
                    labels=labels,
                    working_dir=JOB_WORKDIR,
                    environment=spec.environment,
                    bounded_places=True,
                )
            except ENGINE_ERRORS as exc:
                raise RuntimeFault(
                    f"could not create the job container from {spec.image}: {explain(exc)}"
                ) from exc
            try:
                self._api.put_archive(container_id, "/", staging_tar(spec.build.files))
            except ENGINE_ERRORS as exc:
                self._remove_quietly(container_id)
                raise RuntimeFault(
                    f"could not copy the dependency files in: {explain(exc)}"
                ) from exc
            return container_id

        try:
            container_id = await asyncio.to_thread(create)
        finally:
            if not checked.done():
                with contextlib.suppress(BaseException):
                    await asyncio.wait({checked})
        try:
            checked.result()
        except BaseException:
            await asyncio.to_thread(self._remove_quietly, container_id)
            raise
        return container_id

    async def install(
        self, container_id: str, spec: InstallingJobSpec, *, output: FrameSink
    ) -> LogPosition:
        await self._runner.start(container_id)
        installed: LogPosition | None = None
        frames = cast(
            AsyncGenerator[LogFrame, None], self._runner.follow_logs(container_id, after=None)
        )
        async with contextlib.aclosing(frames):  # leaving early closes the stream
            async for frame in frames:
                await output(frame)
                if frame.data.rstrip(b"\r\n") == _MARKER:
                    installed = frame.position
                    break
        if installed is None:
            status = await self._runner.wait(container_id)
            failure = install_failure(status, spec=spec.build, sandbox=spec.build.sandbox)
            raise failure or RuntimeFault(
                "the dependency install ended without saying it had finished (exit code "
                f"{status.exit_code}); see the job log"
            )
        await asyncio.to_thread(self._take_network, container_id)
        return installed

    def _remove_quietly(self, container_id: str) -> None:
        with contextlib.suppress(Exception):
            self._api.remove_container(container_id, force=True, v=True)

    def _take_network(self, container_id: str) -> None:
        """Disconnect the container from every network it is on, then check none is left."""
        try:
            for network in _networks(self._api.inspect_container(container_id)):
                self._api.disconnect_container_from_network(container_id, network, force=True)
            left = _networks(self._api.inspect_container(container_id))
        except ENGINE_ERRORS as exc:
            raise RuntimeFault(
                f"could not take the dependency install's network away from the job's "
                f"container ({explain(exc)}); the tests were not started"
            ) from exc
        if left:
            raise RuntimeFault(
                f"the job's container is still on the network(s) {', '.join(left)} after its "
                "install; the tests were not started"
            )
        logger.info("container %s: install done, its network removed", container_id[:12])


def _networks(found: Json) -> list[str]:
    """The networks an inspected container is on (`none` is no network)."""
    settings = cast(Json, found.get("NetworkSettings") or {})
    return sorted(name for name in cast(Json, settings.get("Networks") or {}) if name != "none")

"""Job containers on one engine: created, started, fed their project, followed, waited for,
stopped and removed (their output is read by `logs`, they are made by `sandboxes`).

Every SDK call blocks, so each runs in a thread (`asyncio.to_thread` for short ones, a daemon
thread for the ones that last as long as a job: see `threads`). Two API clients: one with a
timeout for ordinary calls, one without for streams and waits, which may stay quiet for as long
as a test does.

Their first process is `bootstrap.BOOTSTRAP` (`WARM_BOOTSTRAP` for warm containers, see
`warm_pool`); the project is copied in with `put_archive` right after the start (or, for a
warm container, when a job claims it), streamed from its tar file on the controller's disk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import IO, cast

from docker.errors import APIError, NotFound

from ci_common.models import JobId
from ci_controller.bootstrap import BOOTSTRAP, JOB_WORKDIR, WARM_BOOTSTRAP, exit_status
from ci_controller.docker.engine_api import ENGINE_ERRORS, EngineApi, Json, explain
from ci_controller.docker.labels import OwnerLabels
from ci_controller.docker.logs import read_output
from ci_controller.docker.sandboxes import Sandboxes
from ci_controller.log_cursor import LogPosition
from ci_controller.project import READY_MARKER
from ci_controller.runtime import (
    LABEL_DEPENDENCY_KEY,
    LABEL_JOB_ID,
    LABEL_ROLE,
    ROLE_JOB,
    ROLE_WARM,
    ContainerGoneError,
    ContainerInfo,
    ContainerState,
    ExitStatus,
    JobContainerSpec,
    LogFrame,
    RuntimeFault,
    WarmContainerSpec,
)
from ci_controller.threads import in_daemon_thread

logger = logging.getLogger(__name__)


class Containers:
    """Job containers of one installation on one engine."""

    def __init__(
        self, *, owner: OwnerLabels, calls: EngineApi, streams: EngineApi, sandboxes: Sandboxes
    ) -> None:
        self._owner = owner
        self._api = calls
        self._streams = streams
        self._sandboxes = sandboxes
        self._projects: dict[str, Path] = {}  # created, not yet started: their project tars

    async def create_job_container(self, spec: JobContainerSpec) -> str:
        return await asyncio.to_thread(self._create_job_container, spec)

    def _create_job_container(self, spec: JobContainerSpec) -> str:
        container_id = self._create(
            spec, bootstrap=BOOTSTRAP, labels=self._owner.for_role(ROLE_JOB, job_id=spec.job_id)
        )
        self._projects[container_id] = spec.project_tar
        return container_id

    def _create(self, spec: WarmContainerSpec, *, bootstrap: str, labels: dict[str, str]) -> str:
        try:
            return self._sandboxes.create(
                spec.image,
                command=["python", "-c", bootstrap, *spec.command],
                sandbox=spec.sandbox,
                labels=labels,
                working_dir=JOB_WORKDIR,
                environment=spec.environment,
                bounded_places=True,
            )
        except ENGINE_ERRORS as exc:
            raise RuntimeFault(
                f"could not create the job container from {spec.image}: {explain(exc)}"
            ) from exc

    async def start_warm_container(self, spec: WarmContainerSpec) -> str:
        def create_and_start() -> str:
            container_id = self._create(
                spec, bootstrap=WARM_BOOTSTRAP, labels=self._owner.for_role(ROLE_WARM)
            )
            self._start(container_id)
            return container_id

        return await asyncio.to_thread(create_and_start)

    async def put_project(self, container_id: str, project_tar: Path) -> None:
        def put() -> None:
            try:
                self._put_project(container_id, project_tar)
            except NotFound as exc:
                raise ContainerGoneError(f"container {container_id[:12]} vanished") from exc
            except ENGINE_ERRORS as exc:
                raise _project_fault("could not copy the project in", exc) from exc

        await asyncio.to_thread(put)

    def _put_project(self, container_id: str, project_tar: Path) -> None:
        """Stream the tar from its file: the HTTP client sends it in blocks, so the project is
        never whole in the controller's memory."""
        try:
            tar = project_tar.open("rb")
        except OSError as exc:  # apart from the call: the SDK's errors are OSErrors too
            raise RuntimeFault(
                f"the project's tar is gone from the controller's disk ({exc}); submit the "
                "job again"
            ) from exc
        with tar:
            self._api.put_archive(container_id, "/", tar)

    async def has_project(self, container_id: str) -> bool:
        def look() -> bool:
            try:
                stream, _ = self._api.get_archive(container_id, "/" + READY_MARKER)
                for _ in stream:  # the marker is empty; read the tar so the call completes
                    pass
            except NotFound:
                return False
            except ENGINE_ERRORS as exc:
                raise RuntimeFault(
                    f"cannot look into container {container_id[:12]}: {exc}"
                ) from exc
            return True

        return await asyncio.to_thread(look)

    async def start(self, container_id: str) -> None:
        """Start the container, then hand it its project (see the module docstring)."""
        await asyncio.to_thread(self._start, container_id)

    def _start(self, container_id: str) -> None:
        project = self._projects.pop(container_id, None)
        try:
            self._api.start(container_id)
            if project is not None:
                self._put_project(container_id, project)
        except NotFound as exc:
            raise ContainerGoneError(f"container {container_id[:12]} vanished") from exc
        except ENGINE_ERRORS as exc:
            raise _project_fault("could not start the job container", exc) from exc

    async def follow_logs(
        self, container_id: str, *, after: LogPosition | None
    ) -> AsyncIterator[LogFrame]:
        """Follow until the container has stopped. A stream that ends while the container
        still runs (a dropped connection) is reopened from the last frame yielded.

        No read after the stop is needed for a last line without its newline (which the
        engine stores only when the output closes, after the follower has ended): a job
        container's PID 1 ends every record with a newline (`container_output`), also the
        partial line of a test killed mid-line."""
        position = after
        while True:
            async for frame in read_output(self._streams, container_id, after=position):
                position = frame.position
                yield frame
            info = await self.inspect(container_id)
            if info is None or info.state is not ContainerState.RUNNING:
                break
            logger.warning("log stream of %s ended early; reopening it", container_id[:12])

    async def wait(self, container_id: str) -> ExitStatus:
        def wait_and_inspect() -> ExitStatus:
            try:
                result = self._streams.wait(container_id)
                exit_code = int(cast(int, result["StatusCode"]))
                oom_killed = False
                if exit_code != 0:  # only then is it worth asking why
                    # The engine sets OOMKilled when the kernel killed any process in the
                    # container's memory cgroup, also one the tests started (verified on
                    # Docker 20.10, cgroup v1).
                    state = cast(Json, self._api.inspect_container(container_id)["State"])
                    oom_killed = bool(state.get("OOMKilled"))
            except NotFound as exc:
                raise ContainerGoneError(f"container {container_id[:12]} vanished") from exc
            except ENGINE_ERRORS as exc:
                raise RuntimeFault(f"lost track of the job container: {explain(exc)}") from exc
            self._sandboxes.release(container_id)  # it no longer runs
            return exit_status(exit_code, oom_killed=oom_killed)

        return await in_daemon_thread(f"wait-{container_id[:12]}", wait_and_inspect)

    async def copy_out(
        self, container_id: str, path: str, *, into: IO[bytes], max_bytes: int
    ) -> bool:
        def copy() -> bool:
            written = 0
            try:
                stream, _ = self._api.get_archive(container_id, path)
                for block in stream:
                    if written + len(block) > max_bytes:
                        into.write(block[: max_bytes - written])
                        break
                    into.write(block)
                    written += len(block)
            except NotFound as exc:
                if "no such container" in explain(exc).lower():
                    raise ContainerGoneError(f"container {container_id[:12]} vanished") from exc
                return False
            except ENGINE_ERRORS as exc:
                raise RuntimeFault(
                    f"could not copy {path} out of container {container_id[:12]}: {explain(exc)}"
                ) from exc
            return True

        return await in_daemon_thread(f"copy-{container_id[:12]}", copy)

    async def stop(self, container_id: str, *, grace: float) -> None:
        def stop() -> None:
            try:
                self._streams.stop(container_id, timeout=max(0, round(grace)))
            except NotFound:
                pass
            except ENGINE_ERRORS as exc:
                raise RuntimeFault(f"could not stop the job container: {explain(exc)}") from exc

        await in_daemon_thread(f"stop-{container_id[:12]}", stop)

    async def remove(self, container_id: str) -> None:
        await asyncio.to_thread(self._remove, container_id)

    def _remove(self, container_id: str) -> None:
        self._projects.pop(container_id, None)
        self._sandboxes.release(container_id)
        try:
            self._api.remove_container(container_id, force=True, v=True)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code == 409:  # removal already in progress
                return
            raise RuntimeFault(f"could not remove container {container_id[:12]}: {exc}") from exc
        except ENGINE_ERRORS as exc:
            raise RuntimeFault(f"could not remove container {container_id[:12]}: {exc}") from exc

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        def inspect() -> ContainerInfo | None:
            try:
                found = self._api.inspect_container(container_id)
            except NotFound:
                return None
            except ENGINE_ERRORS as exc:
                raise RuntimeFault(f"cannot inspect container {container_id[:12]}: {exc}") from exc
            config = cast(Json, found["Config"])
            state = cast(Json, found["State"])
            return _container_info(
                str(found["Id"]), cast(Mapping[str, str], config.get("Labels") or {}), state
            )

        return await asyncio.to_thread(inspect)

    async def list_containers(self) -> list[ContainerInfo]:
        def list_them() -> list[ContainerInfo]:
            try:
                found = self._api.containers(all=True, filters={"label": self._owner.selector()})
            except ENGINE_ERRORS as exc:
                raise RuntimeFault(
                    f"cannot list containers ({exc}); is the Docker engine running? "
                    "(scripts/install-docker starts it)"
                ) from exc
            return [
                _container_info(str(item["Id"]), labels, {"Status": item.get("State")})
                for item in found
                if self._owner.owns(labels := cast(Mapping[str, str], item.get("Labels") or {}))
            ]

        return await asyncio.to_thread(list_them)


def _container_info(container_id: str, labels: Mapping[str, str], state: Json) -> ContainerInfo:
    status = str(state.get("Status") or "")
    folded = {"created": ContainerState.CREATED, "running": ContainerState.RUNNING}
    job_id = labels.get(LABEL_JOB_ID)
    role = labels.get(LABEL_ROLE, "")
    return ContainerInfo(
        id=container_id,
        job_id=JobId(job_id) if job_id else None,
        role=role,
        state=folded.get(status, ContainerState.EXITED),
        installs=role == ROLE_JOB and LABEL_DEPENDENCY_KEY in labels,
    )


def _project_fault(what: str, exc: BaseException) -> RuntimeFault:
    why = explain(exc)
    if "no space left on device" in why.lower():
        return RuntimeFault(
            f"{what}: the project does not fit into the job's workspace; make it smaller or "
            f"ask the admin to raise CI_JOB_DISK ({why})"
        )
    return RuntimeFault(f"{what}: {why}")

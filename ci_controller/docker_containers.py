"""The container half of the Docker runtime: job containers and their end (their output is read
by `docker_logs`).

Every SDK call blocks, so each runs in a thread (`asyncio.to_thread` for short ones, a daemon
thread for the ones that last as long as a job: see `threads`). Two API clients: one with a
timeout for ordinary calls, one without for streams and waits, which may stay quiet for as long
as a test does.

Every container that runs a user's code, job containers and dependency builds alike, is made
by `create_sandboxed`: uid 1000 with no capabilities, no new privileges, the `Sandbox`'s
network, memory, CPU and pid limits, and a json-file log (the driver `logs` can read back)
capped at twice the stored-log limit so a runaway job cannot fill the disk.

What a job writes stays off the engine's disk and within CI_JOB_DISK: /tmp and /var/tmp are
tmpfs mounts of that size, and so is the workspace, but as an anonymous volume of the `local`
driver with tmpfs options. A plain tmpfs mount would not do there: the engine extracts
`put_archive` into the container's root file system underneath the mount (verified on Docker
20.10), where the job would never see its project, while it extracts into volumes properly.
The volume carries the container's labels and goes with it (`remove_container(v=True)`). The
rest of the root file system (say the home directory) is the image's writable layer, as
before: bounding that needs a storage driver with quotas (overlay2 on xfs with pquota).

Their first process is `bootstrap.BOOTSTRAP` (`WARM_BOOTSTRAP` for warm containers, see
`warm_pool`); the project is copied in with `put_archive` right after the start (or, for a
warm container, when a job claims it), streamed from its tar file on the controller's disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import IO, cast

import docker
from docker.errors import APIError, ImageNotFound, NotFound
from docker.types import DriverConfig, LogConfig, Mount

from ci_common.models import JobId
from ci_controller.bootstrap import (
    BOOTSTRAP,
    JOB_SCRATCH,
    JOB_WORKDIR,
    WARM_BOOTSTRAP,
    exit_status,
)
from ci_controller.cpu_sets import CpuSets, cpuset_text
from ci_controller.docker_logs import read_output
from ci_controller.engine_api import ENGINE_ERRORS, EngineApi, Json, engine_api
from ci_controller.log_cursor import LogPosition
from ci_controller.project import JOB_GID, JOB_UID, READY_MARKER
from ci_controller.runtime import (
    LABEL_DEPENDENCY_KEY,
    LABEL_INSTALLATION,
    LABEL_JOB_ID,
    LABEL_ROLE,
    ROLE_JOB,
    ROLE_WARM,
    ContainerGoneError,
    ContainerInfo,
    ContainerState,
    ExitStatus,
    ImageMissingError,
    JobContainerSpec,
    LogFrame,
    RuntimeFault,
    Sandbox,
    WarmContainerSpec,
)
from ci_controller.threads import in_daemon_thread

logger = logging.getLogger(__name__)

API_TIMEOUT = 60
JOB_USER = f"{JOB_UID}:{JOB_UID}"


IMAGE_ID_TTL_SECONDS = 5.0
BUILD_IMAGE_HINT = (
    "build one with scripts/build-job-image and set CI_JOB_IMAGE=ci-python:3.11 "
    "(or point CI_JOB_IMAGE at any image with python and pip)"
)


def connect_engine() -> tuple[EngineApi, EngineApi]:
    """Two API clients for the engine `DOCKER_HOST` names (or the local socket)."""
    try:
        calls = docker.from_env(version="auto", timeout=API_TIMEOUT).api
        # No read timeout for streams and waits. The SDK annotates `timeout` as int but hands
        # it to requests, where None means "wait as long as it takes".
        streams = docker.from_env(version="auto", timeout=cast(int, None)).api
    except ENGINE_ERRORS as exc:
        raise RuntimeFault(
            f"cannot reach the Docker engine ({exc}); start it with scripts/install-docker "
            "or set DOCKER_HOST"
        ) from exc
    return engine_api(calls), engine_api(streams)


class DockerContainers:
    """Containers (and the job image) of one installation on one engine."""

    def __init__(self, *, installation_id: str, calls: EngineApi, streams: EngineApi) -> None:
        self.installation_id = installation_id
        self._api = calls
        self._streams = streams
        self._image_ids: dict[str, tuple[float, str]] = {}
        self._projects: dict[str, Path] = {}  # created, not yet started: their project tars
        self._cpu_sets: CpuSets | None = None  # the engine's CPUs, asked for on first use

    def close(self) -> None:
        self._api.close()
        self._streams.close()

    # Images.

    async def ensure_image(self, image: str) -> str:
        """Cached for a few seconds: a burst of jobs asks the engine once, while a rebuilt
        image (same tag, new id) is noticed soon after."""
        now = time.monotonic()
        cached = self._image_ids.get(image)
        if cached is not None and now - cached[0] < IMAGE_ID_TTL_SECONDS:
            return cached[1]
        image_id = await asyncio.to_thread(self._ensure_image, image)
        self._image_ids[image] = (now, image_id)
        return image_id

    def _ensure_image(self, image: str) -> str:
        try:
            return _image_id(self._api.inspect_image(image))
        except ImageNotFound:
            pass
        except ENGINE_ERRORS as exc:
            raise RuntimeFault(f"cannot inspect the job image {image}: {exc}") from exc
        logger.info("job image %s is missing; trying to pull it", image)
        try:
            self._api.pull(image)
            return _image_id(self._api.inspect_image(image))
        except ENGINE_ERRORS as exc:
            raise ImageMissingError(
                f"the job image {image} is not on the Docker engine and cannot be pulled "
                f"({explain(exc)}); {BUILD_IMAGE_HINT}"
            ) from exc

    # Containers.

    def labels(self, *, role: str, job_id: JobId | None = None) -> dict[str, str]:
        labels = {LABEL_INSTALLATION: self.installation_id, LABEL_ROLE: role}
        if job_id is not None:
            labels[LABEL_JOB_ID] = job_id
        return labels

    async def create_job_container(self, spec: JobContainerSpec) -> str:
        return await asyncio.to_thread(self._create_job_container, spec)

    def _create_job_container(self, spec: JobContainerSpec) -> str:
        container_id = self._create(
            spec, bootstrap=BOOTSTRAP, labels=self.labels(role=ROLE_JOB, job_id=spec.job_id)
        )
        self._projects[container_id] = spec.project_tar
        return container_id

    def _create(self, spec: WarmContainerSpec, *, bootstrap: str, labels: dict[str, str]) -> str:
        try:
            return self.create_sandboxed(
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

    def create_sandboxed(
        self,
        image: str,
        *,
        command: Sequence[str],
        sandbox: Sandbox,
        labels: Mapping[str, str],
        working_dir: str | None = None,
        environment: Mapping[str, str] | None = None,
        bounded_places: bool = False,
    ) -> str:
        """Create (not start) a container that runs a user's code: as the job user, with no
        capabilities and no new privileges, in `sandbox`. The one place these are decided,
        for job containers and dependency builds alike. Raises the SDK's errors.

        `bounded_places` (job containers) puts the workspace, /tmp and /var/tmp on file systems
        of `sandbox.disk` bytes each. A dependency build gets none: its requirements are copied
        into /tmp before it starts, and a copy lands under a tmpfs mount, not in it."""
        log_cap = max(2 * sandbox.max_log_bytes, 10 * 1024 * 1024)
        places: dict[str, object] = {}
        if bounded_places:
            places = {
                "tmpfs": {place: f"size={sandbox.disk},mode=1777,exec" for place in JOB_SCRATCH},
                "mounts": [_workspace_mount(sandbox.disk, labels=labels)],
            }
        cpu_sets = self._engine_cpus()
        cpus = cpu_sets.take(sandbox.cpus)
        try:
            host_config = self._api.create_host_config(
                network_mode=sandbox.network,
                mem_limit=sandbox.memory,
                nano_cpus=int(sandbox.cpus * 1e9),
                cpuset_cpus=cpuset_text(cpus),  # what the tests see: see `cpu_sets`
                pids_limit=sandbox.pids,
                **places,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                log_config=LogConfig(type="json-file", config={"max-size": str(log_cap)}),  # pyright: ignore[reportUnknownArgumentType] -- untyped SDK class
            )
            created = self._api.create_container(
                image,
                command=list(command),
                user=JOB_USER,
                working_dir=working_dir,
                environment=dict(environment or {}),
                labels=dict(labels),
                host_config=host_config,
            )
        except BaseException:
            cpu_sets.give_back(cpus)
            raise
        cpu_sets.hold(str(created["Id"]), cpus)
        return str(created["Id"])

    def _engine_cpus(self) -> CpuSets:
        if self._cpu_sets is None:
            try:
                total = int(cast(int, self._api.info().get("NCPU") or 0))
            except ENGINE_ERRORS as exc:
                logger.warning("cannot ask the engine for its CPU count (%s); using ours", exc)
                total = 0
            self._cpu_sets = CpuSets(total or os.cpu_count() or 1)
        return self._cpu_sets

    async def start_warm_container(self, spec: WarmContainerSpec) -> str:
        def create_and_start() -> str:
            container_id = self._create(
                spec, bootstrap=WARM_BOOTSTRAP, labels=self.labels(role=ROLE_WARM)
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
            if self._cpu_sets is not None:
                self._cpu_sets.release(container_id)  # it no longer runs
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

    async def run_to_end(self, container_id: str) -> tuple[ExitStatus, bytes]:
        """Start a short-lived container, collect its whole output, wait, and remove it."""
        output: list[bytes] = []
        try:
            await self.start(container_id)
            async for frame in self.follow_logs(container_id, after=None):
                output.append(frame.data)
            status = await self.wait(container_id)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.remove(container_id))
        return status, b"".join(output)

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
        if self._cpu_sets is not None:
            self._cpu_sets.release(container_id)
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
                found = self._api.containers(
                    all=True, filters={"label": f"{LABEL_INSTALLATION}={self.installation_id}"}
                )
            except ENGINE_ERRORS as exc:
                raise RuntimeFault(
                    f"cannot list containers ({exc}); is the Docker engine running? "
                    "(scripts/install-docker starts it)"
                ) from exc
            return [
                _container_info(
                    str(item["Id"]),
                    cast(Mapping[str, str], item.get("Labels") or {}),
                    {"Status": item.get("State")},
                )
                for item in found
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


def _workspace_mount(size: int, *, labels: Mapping[str, str]) -> Mount:
    """The workspace: an anonymous tmpfs volume of `size` bytes (see the module docstring),
    labelled like its container."""
    options = f"size={size},uid={JOB_UID},gid={JOB_GID},mode=0755,nosuid,nodev"
    driver = DriverConfig("local", {"type": "tmpfs", "device": "tmpfs", "o": options})
    return Mount(JOB_WORKDIR, None, type="volume", driver_config=driver, labels=dict(labels))  # pyright: ignore[reportUnknownArgumentType] -- untyped SDK class


def _project_fault(what: str, exc: BaseException) -> RuntimeFault:
    why = explain(exc)
    if "no space left on device" in why.lower():
        return RuntimeFault(
            f"{what}: the project does not fit into the job's workspace; make it smaller or "
            f"ask the admin to raise CI_JOB_DISK ({why})"
        )
    return RuntimeFault(f"{what}: {why}")


def check_memory_limit(memory: str) -> None:
    """`RuntimeFault` unless Docker understands `memory` (CI_JOB_MEMORY), e.g. 512m or 2g."""
    try:
        docker.utils.parse_bytes(memory)  # pyright: ignore[reportUnknownMemberType, reportAttributeAccessIssue] -- untyped SDK helper
    except ENGINE_ERRORS as exc:
        raise RuntimeFault(
            f"CI_JOB_MEMORY={memory!r} is not a size Docker understands; use e.g. 512m or 2g"
        ) from exc


def _image_id(found: Json) -> str:
    return str(found["Id"])


def explain(exc: BaseException) -> str:
    if isinstance(exc, APIError) and exc.explanation:
        return str(exc.explanation)
    return str(exc)

"""An in-memory `ContainerRuntime`: containers are records a test drives by hand.

A container writes output with `emit` and ends with `exit`; `follow_logs`, `wait` and `stop`
behave as Docker's do (follow until the container stops, resume strictly after a position).
Every call is recorded in `calls`, so tests can assert what the controller asked for.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import tarfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ci_common.models import JobId
from ci_controller.container_output import RESULTS_CHANNEL, encode_records
from ci_controller.log_cursor import LogPosition
from ci_controller.runtime import (
    ROLE_DEPENDENCIES,
    ROLE_JOB,
    ROLE_WARM,
    ContainerGoneError,
    ContainerInfo,
    ContainerState,
    DependencyBuildSpec,
    DependencyInstallError,
    ExitStatus,
    FrameSink,
    ImageMissingError,
    InstallingJobSpec,
    JobContainerSpec,
    LogFrame,
    OutputSink,
    RuntimeFault,
    WarmContainerSpec,
)

_clock = itertools.count(1_700_000_000_000_000_000, 1000)


@dataclass
class FakeContainer:
    id: str
    job_id: JobId | None
    role: str
    image: str
    spec: JobContainerSpec | WarmContainerSpec | None = None
    project: bytes | None = None
    installs: bool = False
    network_on: bool = False
    """Whether the container still has the network its install had."""
    project_with_network: bool = False
    """Whether its project came while the network was on (which must never happen)."""
    state: ContainerState = ContainerState.CREATED
    frames: list[LogFrame] = field(default_factory=lambda: list[LogFrame]())
    exit_code: int | None = None
    oom_killed: bool = False
    disk_full: bool = False
    files: dict[str, bytes] = field(default_factory=lambda: dict[str, bytes]())
    """What `copy_out` finds, by path from the container's root (e.g. `.ci-output/junit.xml`)."""
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def emit(self, data: bytes, *, same_timestamp: bool = False) -> LogFrame:
        """Write one frame; `same_timestamp` reuses the previous frame's timestamp."""
        if same_timestamp and self.frames:
            last = self.frames[-1].position
            position = LogPosition(timestamp_ns=last.timestamp_ns, count=last.count + 1)
        else:
            position = LogPosition(timestamp_ns=next(_clock), count=1)
        frame = LogFrame(position=position, data=data)
        self.frames.append(frame)
        self.poke()
        return frame

    def emit_result(self, record: dict[str, object]) -> LogFrame:
        """Write one plugin record, framed as PID 1 sends it (`RESULTS_CHANNEL`)."""
        line = (json.dumps(record) + "\n").encode()
        frames = [
            self.emit(message)
            for message in encode_records(line, channel=RESULTS_CHANNEL).splitlines(keepends=True)
        ]
        return frames[-1]

    def exit(self, code: int, *, oom_killed: bool = False, disk_full: bool = False) -> None:
        """End with `code`; the flags are what the runtime reports about memory and disk."""
        self.state = ContainerState.EXITED
        self.exit_code = code
        self.oom_killed, self.disk_full = oom_killed, disk_full
        self.poke()

    def poke(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def info(self) -> ContainerInfo:
        return ContainerInfo(
            id=self.id, job_id=self.job_id, role=self.role, state=self.state, installs=self.installs
        )


class FakeRuntime:
    """Implements `ContainerRuntime` in memory. Jobs' own containers install dependencies
    only with `installs_in_job_containers` set; their installs are in `installs` (keys), and
    `build_output`, `build_exit_code` and `build_gate` apply to them as to builds."""

    def __init__(self, *, images: set[str] | None = None) -> None:
        self.installs_in_job_containers = False
        self.installs: list[str] = []
        self.images = images if images is not None else {"ci-python:3.11"}
        self.pythons = {"ci-python:3.11": "3.11.2", "ci-python:3.13": "3.13.5"}
        """The exact Python of each image that has one."""
        self.dependency_images: dict[str, str] = {}
        self.installed = {"pytest": "9.2.0", "iniconfig": "2.3.0"}
        self.warm_ids_ever: set[str] = set()
        self.warm_images: dict[str, str] = {}
        """Every warm container started, with its image (they outlive their removal here)."""
        self.listings = 0
        self.listing_fails = False
        self.engine_down = False
        self.builds: list[str] = []
        self.build_specs: list[DependencyBuildSpec] = []
        self.build_output = b"Collecting things\n"
        self.build_exit_code = 0
        self.build_gate: asyncio.Event | None = None
        self.containers: dict[str, FakeContainer] = {}
        self.removed: list[str] = []
        self.stopped: list[str] = []
        self.followed: list[str] = []
        self.collected: list[int] = []
        self.on_start: Callable[[FakeContainer], object] = lambda container: None
        """What the container's job does once it begins: at start, or for a warm container
        when its project arrives."""
        self.warm_fails = False
        self.started = asyncio.Event()
        self._ids = itertools.count(1)

    # Test helpers.

    def container_of(self, job_id: str) -> FakeContainer:
        matches = [c for c in self.containers.values() if c.job_id == job_id]
        assert matches, f"no container for job {job_id}"
        return matches[-1]

    def add_container(
        self, *, job_id: str | None, state: ContainerState, role: str = ROLE_JOB
    ) -> FakeContainer:
        container = FakeContainer(
            id=f"c{next(self._ids):011d}",
            job_id=JobId(job_id) if job_id else None,
            role=role,
            image="ci-python:3.11",
            state=state,
        )
        self.containers[container.id] = container
        return container

    def live(self) -> list[FakeContainer]:
        return list(self.containers.values())

    # The interface.

    async def ensure_image(self, image: str) -> str:
        if image not in self.images and image not in self.dependency_images.values():
            raise ImageMissingError(f"the job image {image} is missing; run build-job-image")
        return f"sha256:{image}"

    async def python_version(self, image: str) -> str:
        if image not in self.pythons:
            raise RuntimeFault(f"the job image {image} has no working `python`")
        return self.pythons[image]

    async def find_dependency_image(self, key: str) -> str | None:
        return self.dependency_images.get(key)

    async def build_dependency_image(self, spec: DependencyBuildSpec, *, output: OutputSink) -> str:
        self.builds.append(spec.key)
        self.build_specs.append(spec)
        if self.build_gate is not None:
            await self.build_gate.wait()
        await output(self.build_output.decode())
        if self.build_exit_code != 0:
            raise DependencyInstallError(
                "pip install failed; fix requirements.txt", exit_code=self.build_exit_code
            )
        reference = f"ci-deps:{spec.key}"
        self.dependency_images[spec.key] = reference
        return reference

    async def installed_distributions(self, image: str) -> dict[str, str]:
        self.listings += 1
        if self.listing_fails:
            raise RuntimeFault("cannot list: the probe container was removed")
        return dict(self.installed)

    async def collect_dependency_images(self, *, keep: int) -> list[str]:
        self.collected.append(keep)
        return []

    async def create_job_container(self, spec: JobContainerSpec) -> str:
        if spec.image not in self.images and spec.image not in self.dependency_images.values():
            raise ImageMissingError(f"no image {spec.image}")
        container = self.add_container(job_id=spec.job_id, state=ContainerState.CREATED)
        container.spec = spec
        container.project = await asyncio.to_thread(spec.project_tar.read_bytes)
        container.image = spec.image
        return container.id

    async def start(self, container_id: str) -> None:
        container = self._get(container_id)
        container.state = ContainerState.RUNNING
        container.poke()
        self.started.set()
        self.on_start(container)

    async def create_installing_job_container(self, spec: InstallingJobSpec) -> str:
        container = self.add_container(job_id=spec.job_id, state=ContainerState.CREATED)
        container.spec, container.image, container.installs = spec, spec.image, True
        return container.id

    async def install_in_job_container(
        self, container_id: str, spec: InstallingJobSpec, *, output: FrameSink
    ) -> LogPosition:
        container = self._get(container_id)
        container.state, container.network_on = ContainerState.RUNNING, True
        container.poke()
        self.installs.append(spec.build.key)
        if self.build_gate is not None:
            await self.build_gate.wait()
        await output(container.emit(self.build_output))
        if self.build_exit_code != 0:
            container.exit(self.build_exit_code)
            raise DependencyInstallError(
                "pip install failed; fix requirements.txt", exit_code=self.build_exit_code
            )
        marker = container.emit(b"[ci] dependencies installed\n")
        await output(marker)
        container.network_on = False
        return marker.position

    async def start_warm_container(self, spec: WarmContainerSpec) -> str:
        if self.warm_fails:
            raise RuntimeFault("cannot start a warm container: the engine said no")
        container = self.add_container(job_id=None, state=ContainerState.RUNNING, role=ROLE_WARM)
        container.spec = spec
        container.image = spec.image
        self.warm_ids_ever.add(container.id)
        self.warm_images[container.id] = spec.image
        return container.id

    async def put_project(self, container_id: str, project_tar: Path) -> None:
        container = self._get(container_id)
        container.project_with_network = container.project_with_network or container.network_on
        container.project = await asyncio.to_thread(project_tar.read_bytes)
        if container.state is ContainerState.RUNNING:  # its bootstrap was waiting for it
            self.started.set()
            self.on_start(container)

    async def has_project(self, container_id: str) -> bool:
        return self._get(container_id).project is not None

    def warm(self) -> list[FakeContainer]:
        """The warm containers nobody has put a project into."""
        return [c for c in self.containers.values() if c.role == ROLE_WARM and not c.project]

    async def follow_logs(
        self, container_id: str, *, after: LogPosition | None
    ) -> AsyncIterator[LogFrame]:
        self.followed.append(container_id)
        sent = 0
        while True:
            container = self.containers.get(container_id)
            if container is None:
                return
            changed = container.changed
            for frame in container.frames[sent:]:
                sent += 1
                if after is None or frame.position > after:
                    yield frame
            if container.state is ContainerState.EXITED and sent == len(container.frames):
                return
            await changed.wait()

    async def wait(self, container_id: str) -> ExitStatus:
        while True:
            container = self.containers.get(container_id)
            if container is None:
                raise ContainerGoneError(f"container {container_id} vanished")
            if container.state is ContainerState.EXITED:
                assert container.exit_code is not None
                return ExitStatus(
                    exit_code=container.exit_code,
                    oom_killed=container.oom_killed,
                    disk_full=container.disk_full,
                )
            await container.changed.wait()

    async def copy_out(
        self, container_id: str, path: str, *, into: IO[bytes], max_bytes: int
    ) -> bool:
        container = self._get(container_id)
        prefix = path.strip("/") + "/"
        found = {name: data for name, data in container.files.items() if name.startswith(prefix)}
        if not found:
            return False
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, data in found.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        into.write(buffer.getvalue()[:max_bytes])
        return True

    async def stop(self, container_id: str, *, grace: float) -> None:
        self.stopped.append(container_id)
        container = self.containers.get(container_id)
        if container is not None and container.state is not ContainerState.EXITED:
            container.exit(143)

    async def remove(self, container_id: str) -> None:
        container = self.containers.pop(container_id, None)
        if container is not None:
            self.removed.append(container_id)
            container.poke()

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        container = self.containers.get(container_id)
        return None if container is None else container.info()

    async def list_containers(self) -> list[ContainerInfo]:
        if self.engine_down:
            raise RuntimeFault("cannot list containers: the engine does not answer")
        return [c.info() for c in self.containers.values()]

    def _get(self, container_id: str) -> FakeContainer:
        container = self.containers.get(container_id)
        if container is None:
            raise ContainerGoneError(f"container {container_id} vanished")
        return container


__all__ = ["ROLE_DEPENDENCIES", "FakeContainer", "FakeRuntime"]

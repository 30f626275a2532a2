"""The container runtime interface the reconciler talks to, and the values it exchanges.

The controller never sees the Docker SDK: it asks a `ContainerRuntime` to make sure an image
exists, to build a dependency image, to create, start, follow, wait for, stop and remove a job's
container, and to list the containers this installation owns. `DockerRuntime` implements it on
the Docker engine; the unit tests implement it in memory, so every decision of the reconciler
is tested without a daemon.

Ownership: a runtime is built for one installation (the id stored in the database). Every
container and image it creates carries the label `ci.installation=<id>`, and `list_containers`
and `collect_dependency_images` only ever see objects with that label, so two installations
sharing one engine never touch each other's work.

Errors are converted where they enter: the runtime raises `RuntimeFault` subclasses whose
messages say what to do, never SDK exceptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Protocol

from ci_common.errors import CIError
from ci_common.models import JobId
from ci_controller.dependency_plan import InstallStep
from ci_controller.log_cursor import LogPosition
from ci_controller.settings import ControllerSettings

LABEL_INSTALLATION = "ci.installation"
LABEL_ENGINE = "ci.engine"
"""The engine's name (`CI_ENGINE_NAME`): a controller lists and adopts only its own engine's
containers, even when two names point at one engine."""
LABEL_JOB_ID = "ci.job_id"
LABEL_ROLE = "ci.role"
LABEL_DEPENDENCY_KEY = "ci.dependency_key"
ROLE_JOB = "job"
ROLE_DEPENDENCY_BUILD = "dependency-build"
ROLE_DEPENDENCIES = "dependencies"
ROLE_PROBE = "probe"
ROLE_WARM = "warm"
"""A started job container waiting for a project (see `warm_pool`). It carries no job id:
labels cannot change after creation, so the job that claims it records its id instead."""
BUILD_NETWORK_ISOLATED = "isolated"
"""`CI_BUILD_NETWORK`'s default: the installation's own build network, whose traffic the host
firewall limits to the public internet and DNS; builds are refused while the Docker host is
reachable from it. Any other value names a Docker network used as it is."""
PROJECT_MISSING_EXIT = 121
"""A job container's exit code when its project never arrived (the controller died while
starting it); pytest never uses it."""

OutputSink = Callable[[str], Awaitable[None]]
"""Where a dependency build sends its output as it comes (the job's log)."""
FrameSink = Callable[["LogFrame"], Awaitable[None]]
"""Where a job container's own install sends its output, with positions (the job's log)."""


class RuntimeFault(CIError):
    """The runtime could not do what was asked; the message says what to do."""


class ImageMissingError(RuntimeFault):
    """The job image is not on the engine and cannot be pulled."""


class EngineLostError(RuntimeFault):
    """The engine stopped answering while a job ran on it; the message names the engine."""


class ContainerGoneError(RuntimeFault):
    """The container does not exist (any more)."""


class DependencyInstallError(RuntimeFault):
    """Installing the project's dependencies failed (uv's or pip's exit); the installer's
    output is in the job log."""

    def __init__(self, message: str, *, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ContainerState(StrEnum):
    """Docker's container states, folded to what the reconciler acts on."""

    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"


@dataclass(frozen=True)
class ContainerInfo:
    """One of this installation's containers as the runtime sees it."""

    id: str
    job_id: JobId | None
    role: str
    state: ContainerState
    installs: bool = False
    """A job container that installs the job's dependencies before its tests (labelled with
    their key, see `InstallingJobSpec`): its network is on until the project is in."""


@dataclass(frozen=True, kw_only=True)
class Sandbox:
    """What confines every container that runs a user's code (tests and dependency builds
    alike): the network, the job's memory, CPU and pid limits, and the cap on its stored log.
    The rest of the sandbox is fixed by the runtime: the unprivileged job user, no
    capabilities, no new privileges."""

    network: str
    memory: str
    cpus: float
    pids: int
    disk: int
    """Bytes the job may write to each of its writable places (`bootstrap.WRITABLE_PLACES`)."""
    max_log_bytes: int

    @classmethod
    def for_jobs(cls, settings: ControllerSettings, *, network: str | None = None) -> Sandbox:
        """The job limits from `settings`, on the job network unless `network` is given."""
        return cls(
            network=settings.job_network if network is None else network,
            memory=settings.job_memory,
            cpus=settings.job_cpus,
            pids=settings.job_pids,
            disk=settings.job_disk_bytes,
            max_log_bytes=int(settings.max_log_mb * 1024 * 1024),
        )


@dataclass(frozen=True, kw_only=True)
class WarmContainerSpec:
    """A job container started before its job exists: the job image and the job sandbox."""

    image: str
    command: tuple[str, ...]
    sandbox: Sandbox
    environment: Mapping[str, str] = field(default_factory=lambda: dict[str, str]())


@dataclass(frozen=True, kw_only=True)
class JobContainerSpec(WarmContainerSpec):
    """Everything needed to create one job's container: a warm one's spec plus the job."""

    job_id: JobId
    project_tar: Path
    """The project's tar on the controller's disk (`project.Staging`), streamed to the engine,
    never read whole; it exists until `start` has returned."""


@dataclass(frozen=True, kw_only=True)
class DependencyBuildSpec:
    """One dependency build: `steps` run on `base_image` with `files` staged, kept as the
    image for `key`, in `sandbox` (the job's limits; its network is
    `ControllerSettings.build_network`, which the runtime resolves, see
    `BUILD_NETWORK_ISOLATED`)."""

    base_image: str
    key: str
    steps: tuple[InstallStep, ...]
    files: Mapping[str, bytes]
    """The plan's files, by path relative to the build's staging directory."""
    sandbox: Sandbox
    project_tar: Path | None = None
    """The project's tar, for a step that builds the project from its source."""


@dataclass(frozen=True, kw_only=True)
class InstallingJobSpec(WarmContainerSpec):
    """A job's container that first installs the job's dependencies (`build`: its steps, files
    and sandbox, on the build network) and then, once the runtime has taken that network away,
    runs the tests like any job container (`command`, `sandbox`: the job's, no network), with
    the project put in after the install (`put_project`). Nothing of it is committed."""

    job_id: JobId
    build: DependencyBuildSpec


@dataclass(frozen=True)
class LogFrame:
    """One piece of container output with its position in the container's log."""

    position: LogPosition
    data: bytes


@dataclass(frozen=True)
class ExitStatus:
    """How a job container ended: the exit code of its tests, whether the kernel killed a
    process in it for memory (the tests themselves, exit code 137, or one they started), and
    whether a place the tests may write to was full when they failed (CI_JOB_DISK)."""

    exit_code: int
    oom_killed: bool = False
    disk_full: bool = False


class ContainerRuntime(Protocol):
    """What the controller needs from a container engine. All methods are safe to call from
    the event loop: implementations keep blocking work off it."""

    installs_in_job_containers: bool
    """Whether a job's container can install its dependencies itself and lose its network
    before the tests (`create_installing_job_container`); otherwise every install is a
    dependency build."""

    async def ensure_image(self, image: str) -> str:
        """The id of `image`, pulling it if it is missing; `ImageMissingError` otherwise."""
        ...

    async def python_version(self, image: str) -> str:
        """The exact Python (`3.13.5`) of `image`, which `ensure_image` found;
        `RuntimeFault` when it has none that works."""
        ...

    async def find_dependency_image(self, key: str) -> str | None:
        """The cached dependency image for `key` (marking it used), or None."""
        ...

    async def build_dependency_image(self, spec: DependencyBuildSpec, *, output: OutputSink) -> str:
        """Install the spec's dependencies on top of its base image, in its sandbox, and keep
        the result as the image for its key; returns its reference. `DependencyInstallError`
        when the installer fails, `RuntimeFault` when the build network is not confined."""
        ...

    async def installed_distributions(self, image: str) -> dict[str, str]:
        """The Python distributions `image` has installed, by canonical name, with versions
        (empty when they cannot be listed)."""
        ...

    async def collect_dependency_images(self, *, keep: int) -> list[str]:
        """Remove this installation's least recently used dependency images beyond `keep`;
        returns what was removed. Images in use by a container are kept."""
        ...

    async def create_job_container(self, spec: JobContainerSpec) -> str:
        """Create (not start) the job's container; returns its id. The project reaches it by
        the time `start` returns, so a container found created but never started (after a
        controller crash) must be replaced, not started."""
        ...

    async def start(self, container_id: str) -> None: ...

    async def create_installing_job_container(self, spec: InstallingJobSpec) -> str:
        """Create (not start) the job's container that installs its dependencies first,
        with the build's files in it; returns its id (labelled as the job's)."""
        ...

    async def install_in_job_container(
        self, container_id: str, spec: InstallingJobSpec, *, output: FrameSink
    ) -> LogPosition:
        """Start the container made by `create_installing_job_container`, send the install's
        output to `output` as it comes, and once it has succeeded take its network away
        (checked); returns the position of the install's last line, after which the tests'
        output begins. The tests start when `put_project` hands it the project, which must
        come after this returns. `DependencyInstallError` when the installer fails,
        `RuntimeFault` when the build network is not confined or the network could not be
        taken away."""
        ...

    async def start_warm_container(self, spec: WarmContainerSpec) -> str:
        """Create and start a container labelled `ROLE_WARM` whose first process waits for a
        project for as long as it takes; returns its id."""
        ...

    async def put_project(self, container_id: str, project_tar: Path) -> None:
        """Stream the project tar at `project_tar` into a started (warm) container; its last
        entry, the ready marker, lets the waiting process go on. `ContainerGoneError` if it
        does not exist."""
        ...

    async def has_project(self, container_id: str) -> bool:
        """Whether the project (its ready marker) reached the container."""
        ...

    def follow_logs(
        self, container_id: str, *, after: LogPosition | None
    ) -> AsyncIterator[LogFrame]:
        """The container's output strictly after `after`, following it until the container
        stops; the iterator ends once everything it wrote has been yielded."""
        ...

    async def wait(self, container_id: str) -> ExitStatus:
        """Block until the container has exited."""
        ...

    async def copy_out(
        self, container_id: str, path: str, *, into: IO[bytes], max_bytes: int
    ) -> bool:
        """Write a tar of `path` (from the container's root) of a container, running or
        exited, into `into`, cut off after `max_bytes`; False when there is no such path.
        `ContainerGoneError` if the container does not exist."""
        ...

    async def stop(self, container_id: str, *, grace: float) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds. No error if it is already gone."""
        ...

    async def remove(self, container_id: str) -> None:
        """Remove the container (forcibly). No error if it is already gone."""
        ...

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        """The container, or None when it does not exist."""
        ...

    async def list_containers(self) -> list[ContainerInfo]:
        """Every container labelled with this installation, in any state."""
        ...

"""The one place a container that runs a user's code is made: job containers, dependency
builds and the build network's check alike.

Such a container runs as uid 1000 with no capabilities and no new privileges, within the
`Sandbox`'s network, memory, CPU and pid limits, on CPUs of its own (`cpu_sets`), with a
json-file log (the driver `logs` can read back) capped at twice the stored-log limit so a
runaway job cannot fill the disk.

What a job writes stays off the engine's disk and within CI_JOB_DISK: /tmp and /var/tmp are
tmpfs mounts of that size, and so is the workspace, but as an anonymous volume of the `local`
driver with tmpfs options. A plain tmpfs mount would not do there: the engine extracts
`put_archive` into the container's root file system underneath the mount (verified on Docker
20.10), where the job would never see its project, while it extracts into volumes properly.
The volume carries the container's labels and goes with it (`remove_container(v=True)`). The
rest of the root file system (say the home directory) is the image's writable layer, as
before: bounding that needs a storage driver with quotas (overlay2 on xfs with pquota).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import cast

import docker
from docker.types import DriverConfig, LogConfig, Mount

from ci_controller.bootstrap import JOB_SCRATCH, JOB_WORKDIR
from ci_controller.cpu_sets import CpuSets, cpuset_text
from ci_controller.docker.engine_api import ENGINE_ERRORS, EngineApi
from ci_controller.project import JOB_GID, JOB_UID
from ci_controller.runtime import RuntimeFault, Sandbox

logger = logging.getLogger(__name__)

JOB_USER = f"{JOB_UID}:{JOB_UID}"


class Sandboxes:
    """Creates sandboxed containers on one engine and keeps track of the CPUs they hold."""

    def __init__(self, calls: EngineApi) -> None:
        self._api = calls
        self._cpu_sets: CpuSets | None = None  # the engine's CPUs, asked for on first use

    def create(
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
        capabilities and no new privileges, in `sandbox`. Raises the SDK's errors.

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

    def release(self, container_id: str) -> None:
        """The container no longer runs: its CPUs are free for the next one."""
        if self._cpu_sets is not None:
            self._cpu_sets.release(container_id)

    def _engine_cpus(self) -> CpuSets:
        if self._cpu_sets is None:
            try:
                total = int(cast(int, self._api.info().get("NCPU") or 0))
            except ENGINE_ERRORS as exc:
                logger.warning("cannot ask the engine for its CPU count (%s); using ours", exc)
                total = 0
            self._cpu_sets = CpuSets(total or os.cpu_count() or 1)
        return self._cpu_sets


def _workspace_mount(size: int, *, labels: Mapping[str, str]) -> Mount:
    """The workspace: an anonymous tmpfs volume of `size` bytes (see the module docstring),
    labelled like its container."""
    options = f"size={size},uid={JOB_UID},gid={JOB_GID},mode=0755,nosuid,nodev"
    driver = DriverConfig("local", {"type": "tmpfs", "device": "tmpfs", "o": options})
    return Mount(JOB_WORKDIR, None, type="volume", driver_config=driver, labels=dict(labels))  # pyright: ignore[reportUnknownArgumentType] -- untyped SDK class


def check_memory_limit(memory: str) -> None:
    """`RuntimeFault` unless Docker understands `memory` (CI_JOB_MEMORY), e.g. 512m or 2g."""
    try:
        docker.utils.parse_bytes(memory)  # pyright: ignore[reportUnknownMemberType, reportAttributeAccessIssue] -- untyped SDK helper
    except ENGINE_ERRORS as exc:
        raise RuntimeFault(
            f"CI_JOB_MEMORY={memory!r} is not a size Docker understands; use e.g. 512m or 2g"
        ) from exc

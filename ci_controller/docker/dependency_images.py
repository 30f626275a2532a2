"""Cached dependency images: one per (base image, dependency plan) key, built once,
LRU-collected.

A build runs the plan's install script (`dependency_script`: uv, or pip on an image without
uv) with the plan's files staged in /ci-build/deps (and the project's source in
/ci-build/src when a step builds it), in a container from the base image in the job's sandbox
(`DependencyBuildSpec.sandbox`, made by `Sandboxes.create`, the same code
that makes job containers): as the job user (uid 1000, who owns the job image's venv), with
the job's memory, CPU and pid limits, no capabilities and no new privileges. Its network is
`CI_BUILD_NETWORK`, by default the installation's confined build network (`build_network`).
The result is committed as `ci-deps-<installation>:<key>`. The build's output goes to the
job's log as it comes, so a failing install is explained there.

No installer cache survives a build: a writable cache that outlives one build lets that
build's code plant wheels or index pages a later build trusts, and since the images are
shared by every user of the installation (the key is the plan, not the user), a per-user
cache would not stop one user poisoning another's image. The committed image is the cache:
the second build of the same plan never happens, and the base image's distributions are not
downloaded again.

Recency is kept by the engine itself: every use re-tags the image, which updates its
`LastTagTime`, and collection removes the least recently tagged beyond the configured count.
An image a container still uses is skipped, never forced.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import io
import json
import logging
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from docker.errors import APIError, ImageNotFound, NotFound

from ci_controller.dependency_plan import canonical_name
from ci_controller.dependency_script import (
    BUILD_ROOT,
    NOT_WRITABLE_EXIT,
    SOURCE,
    STAGING,
    install_script,
)
from ci_controller.docker.build_network import BuildNetwork
from ci_controller.docker.engine_api import ENGINE_ERRORS, EngineApi, Json, explain
from ci_controller.docker.labels import OwnerLabels
from ci_controller.docker.running import ContainerRunner, run_to_end
from ci_controller.docker.sandboxes import Sandboxes
from ci_controller.log_cursor import parse_timestamp
from ci_controller.project import JOB_GID, JOB_UID
from ci_controller.runtime import (
    LABEL_DEPENDENCY_KEY,
    LABEL_ROLE,
    ROLE_DEPENDENCIES,
    ROLE_DEPENDENCY_BUILD,
    ROLE_PROBE,
    DependencyBuildSpec,
    DependencyInstallError,
    ExitStatus,
    OutputSink,
    RuntimeFault,
    Sandbox,
)

logger = logging.getLogger(__name__)

_LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m\n"
    "for d in m.distributions():\n"
    "    print(d.metadata['Name'], d.version)\n"
)


class DependencyImages:
    """Finds, builds and collects one installation's dependency images."""

    def __init__(
        self, *, owner: OwnerLabels, calls: EngineApi, sandboxes: Sandboxes, runner: ContainerRunner
    ) -> None:
        self._owner = owner
        self._api = calls
        self._sandboxes = sandboxes
        self._runner = runner
        self.network = BuildNetwork(owner=owner, calls=calls, sandboxes=sandboxes, runner=runner)
        self.repository = f"ci-deps-{owner.installation_id}"
        self._removals: set[asyncio.Future[None]] = set()
        """Removals of committed build containers, in the background."""

    def find(self, key: str) -> str | None:
        reference = f"{self.repository}:{key}"
        try:
            self._api.inspect_image(reference)
            self._api.tag(reference, self.repository, key)  # marks it recently used
        except (ImageNotFound, NotFound):
            return None
        except ENGINE_ERRORS as exc:
            raise RuntimeFault(f"cannot inspect dependency image {reference}: {exc}") from exc
        return reference

    async def build(self, spec: DependencyBuildSpec, *, output: OutputSink) -> str:
        sandbox, gateway = await self.network.ready(spec.sandbox)
        # The network check (a container of its own) runs while the build container is made
        # and filled; the build starts only once the check has passed.
        checked = asyncio.ensure_future(
            self.network.check(image=spec.base_image, sandbox=sandbox, gateway=gateway)
            if gateway is not None
            else asyncio.sleep(0)
        )
        try:
            container_id = await asyncio.to_thread(self._create_build_container, spec, sandbox)
        except BaseException:
            checked.cancel()
            with contextlib.suppress(BaseException):
                await checked
            raise
        committed = False
        try:
            await asyncio.to_thread(
                self._api.put_archive, container_id, "/", staging_tar(spec.files)
            )
            if spec.project_tar is not None:
                await asyncio.to_thread(self._put_source, container_id, spec.project_tar)
            await checked
            await self._runner.start(container_id)
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            async for frame in self._runner.follow_logs(container_id, after=None):
                await output(decoder.decode(frame.data))
            status = await self._runner.wait(container_id)
            if (failure := install_failure(status, spec=spec, sandbox=sandbox)) is not None:
                raise failure
            image = await asyncio.to_thread(self._commit, container_id, spec.base_image, spec.key)
            committed = True
        except ENGINE_ERRORS as exc:
            raise RuntimeFault(f"installing dependencies failed: {explain(exc)}") from exc
        finally:
            if not checked.done():
                checked.cancel()
            with contextlib.suppress(BaseException):
                await checked
            if not committed:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._runner.remove(container_id))
        # The committed container goes in the background: its removal (0.1-0.5 s) is no
        # part of the job's start. Should the controller stop first, the reconciler removes
        # it as an orphan at the next start.
        self._removing(container_id)
        return image

    def _removing(self, container_id: str) -> None:
        task = asyncio.ensure_future(self._remove_quietly(container_id))
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)

    async def _remove_quietly(self, container_id: str) -> None:
        try:
            await self._runner.remove(container_id)
        except RuntimeFault as exc:
            logger.warning("could not remove the build container %s: %s", container_id[:12], exc)

    async def installed(self, image: str) -> dict[str, str]:
        """What `image` has installed, listed by a short-lived container without network."""
        container_id = await asyncio.to_thread(self._create_probe, image)
        status, output = await run_to_end(self._runner, container_id)
        if status.exit_code != 0:
            logger.warning("cannot list the distributions in %s (exit %d)", image, status.exit_code)
            return {}
        installed: dict[str, str] = {}
        for line in output.decode(errors="replace").splitlines():
            name, _, version = line.strip().partition(" ")
            if name and version:
                installed[canonical_name(name)] = version
        return installed

    def _put_source(self, container_id: str, project_tar: Path) -> None:
        """The project's tar under `SOURCE` (its `workspace/` and the job's files, all
        removed by the script), streamed from its file."""
        with project_tar.open("rb") as tar:
            self._api.put_archive(container_id, SOURCE, tar)

    def _create_probe(self, image: str) -> str:
        try:
            created = self._api.create_container(
                image,
                command=["python", "-c", _LIST_DISTRIBUTIONS],
                user="",
                labels=self._owner.for_role(ROLE_PROBE),
                host_config=self._api.create_host_config(network_mode="none"),
            )
        except ENGINE_ERRORS as exc:
            raise RuntimeFault(f"cannot inspect the job image {image}: {explain(exc)}") from exc
        return str(created["Id"])

    def _create_build_container(self, spec: DependencyBuildSpec, sandbox: Sandbox) -> str:
        labels = self._owner.for_role(ROLE_DEPENDENCY_BUILD)
        labels[LABEL_DEPENDENCY_KEY] = spec.key
        try:
            return self._sandboxes.create(
                spec.base_image,
                command=["sh", "-c", install_script(spec.steps)],
                sandbox=sandbox,
                labels=labels,
            )
        except ENGINE_ERRORS as exc:
            raise RuntimeFault(
                f"could not create the dependency build container: {explain(exc)}"
            ) from exc

    def _commit(self, container_id: str, base_image: str, key: str) -> str:
        config = cast(Json, self._api.inspect_image(base_image)["Config"])
        changes = [
            f"USER {config.get('User') or 'root'}",
            f"LABEL {LABEL_ROLE}={ROLE_DEPENDENCIES}",
        ]
        if cmd := config.get("Cmd"):
            changes.append(f"CMD {json.dumps(cmd)}")
        self._api.commit(container_id, repository=self.repository, tag=key, changes=changes)
        return f"{self.repository}:{key}"

    def collect(self, keep: int) -> list[str]:
        """Remove the least recently used images beyond `keep`; returns their references."""
        filters = {
            "label": [
                self._owner.selector(),
                f"{LABEL_ROLE}={ROLE_DEPENDENCIES}",
            ]
        }
        try:
            images = self._api.images(filters=filters)
            dated: list[tuple[int, str]] = []
            for image in images:
                found = self._api.inspect_image(str(image["Id"]))
                used_at = _nanoseconds(cast(Json, found.get("Metadata") or {}).get("LastTagTime"))
                for tag in cast(list[str], image.get("RepoTags") or []):
                    if tag.startswith(self.repository + ":"):
                        dated.append((used_at, tag))
        except ENGINE_ERRORS as exc:
            logger.warning("cannot list dependency images: %s", exc)
            return []
        dated.sort(reverse=True)
        removed: list[str] = []
        for _, tag in dated[keep:]:
            try:
                self._api.remove_image(tag)
            except APIError as exc:
                logger.info("keeping dependency image %s: %s", tag, explain(exc))
                continue
            removed.append(tag)
            logger.info("removed dependency image %s (least recently used)", tag)
        return removed


def _nanoseconds(timestamp: object) -> int:
    """Docker's RFC 3339 time as a number (fraction lengths vary, so text does not sort)."""
    try:
        return parse_timestamp(str(timestamp))
    except ValueError:
        return 0


def install_failure(
    status: ExitStatus, *, spec: DependencyBuildSpec, sandbox: Sandbox
) -> RuntimeFault | None:
    """What an install that ended with `status` failed of, or None when it succeeded."""
    if status.exit_code == NOT_WRITABLE_EXIT:
        return RuntimeFault(
            f"the job image {spec.base_image} does not let the job user (uid "
            f"{JOB_UID}) install into its Python environment, and dependency builds "
            "run as that user; build the job image with scripts/build-job-image (its "
            "venv belongs to that user) and set CI_JOB_IMAGE=ci-python:3.11"
        )
    if status.exit_code != 0:
        return DependencyInstallError(
            f"installing the project's dependencies failed (exit code "
            f"{status.exit_code}{_oom_note(status, sandbox)}); the installer's "
            "output is in the job log: fix the dependency files it names "
            "(requirements.txt, pyproject.toml, uv.lock, setup.py) and submit again",
            exit_code=status.exit_code,
        )
    return None


def _oom_note(status: ExitStatus, sandbox: Sandbox) -> str:
    if not status.oom_killed:
        return ""
    return f", killed for using more than the job's memory, {sandbox.memory} (CI_JOB_MEMORY)"


def staging_tar(files: Mapping[str, bytes]) -> bytes:
    """`STAGING` with the plan's files, and an empty `SOURCE`, in `BUILD_ROOT`, all owned by
    the job user so the build can remove them (their directories made as needed)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directories: set[str] = set()

        def add_directory(name: str) -> None:
            if name in directories:
                return
            directories.add(name)
            entry = tarfile.TarInfo(name)
            entry.type = tarfile.DIRTYPE
            entry.mode = 0o755
            entry.uid, entry.gid = JOB_UID, JOB_GID
            tar.addfile(entry)

        add_directory(BUILD_ROOT.lstrip("/"))
        add_directory(SOURCE.lstrip("/"))
        add_directory(STAGING.lstrip("/"))
        for path, data in sorted(files.items()):
            name = f"{STAGING.lstrip('/')}/{path}"
            parts = name.split("/")
            for depth in range(2, len(parts)):
                add_directory("/".join(parts[:depth]))
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.uid, info.gid = JOB_UID, JOB_GID
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()

"""Cached dependency images: one per (base image, requirements) hash, built once, LRU-collected.

A build runs a container from the base image as root with the bridge network (the only
container of a job that gets a network by default), pip's cache on a named volume shared by
every build (`ci-pip-cache`, so a rebuild downloads nothing it has seen), and
`pip install -r requirements.txt`; the result is committed as `ci-deps-<installation>:<key>`.
Installed files belong to root but are world-readable, which is all the tests (uid 1000)
need. The build's output goes to the job's log as it comes, so a failing `pip install` is
explained there.

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
from typing import cast

from docker.errors import APIError, ImageNotFound, NotFound
from docker.types import Mount

from ci_controller.docker_containers import DockerContainers, explain
from ci_controller.engine_api import ENGINE_ERRORS, EngineApi, Json
from ci_controller.log_cursor import parse_timestamp
from ci_controller.project import canonical_name
from ci_controller.runtime import (
    LABEL_DEPENDENCY_KEY,
    LABEL_INSTALLATION,
    LABEL_ROLE,
    ROLE_DEPENDENCIES,
    ROLE_DEPENDENCY_BUILD,
    ROLE_PROBE,
    DependencyInstallError,
    OutputSink,
    RuntimeFault,
)

logger = logging.getLogger(__name__)

PIP_CACHE_VOLUME = "ci-pip-cache"
PIP_CACHE_DIR = "/var/cache/ci-pip"
BUILD_NETWORK = "bridge"
_STAGING = "ci-deps"
_LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m\n"
    "for d in m.distributions():\n"
    "    print(d.metadata['Name'], d.version)\n"
)
_INSTALL_SCRIPT = f"""
export PIP_CACHE_DIR={PIP_CACHE_DIR} PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1 \\
    PIP_PROGRESS_BAR=off PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
python -m pip install --no-warn-script-location -r /tmp/{_STAGING}/requirements.txt 2>&1
status=$?
rm -rf /tmp/{_STAGING}
exit $status
"""


class DependencyImages:
    """Finds, builds and collects one installation's dependency images."""

    def __init__(
        self, *, installation_id: str, calls: EngineApi, containers: DockerContainers
    ) -> None:
        self._installation_id = installation_id
        self._api = calls
        self._containers = containers
        self.repository = f"ci-deps-{installation_id}"

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

    async def build(
        self, *, base_image: str, key: str, requirements: bytes, output: OutputSink
    ) -> str:
        container_id = await asyncio.to_thread(self._create_build_container, base_image, key)
        try:
            await asyncio.to_thread(
                self._api.put_archive, container_id, "/tmp", _requirements_tar(requirements)
            )
            await self._containers.start(container_id)
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            async for frame in self._containers.follow_logs(container_id, after=None):
                await output(decoder.decode(frame.data))
            status = await self._containers.wait(container_id)
            if status.exit_code != 0:
                raise DependencyInstallError(
                    f"pip install of the project's requirements failed (exit code "
                    f"{status.exit_code}); pip's output is in the job log: fix requirements.txt "
                    "(or [project].dependencies in pyproject.toml) and submit again",
                    exit_code=status.exit_code,
                )
            return await asyncio.to_thread(self._commit, container_id, base_image, key)
        except ENGINE_ERRORS as exc:
            raise RuntimeFault(f"installing dependencies failed: {explain(exc)}") from exc
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._containers.remove(container_id))

    async def installed(self, image: str) -> dict[str, str]:
        """What `image` has installed, listed by a short-lived container without network."""
        container_id = await asyncio.to_thread(self._create_probe, image)
        output: list[bytes] = []
        try:
            await self._containers.start(container_id)
            async for frame in self._containers.follow_logs(container_id, after=None):
                output.append(frame.data)
            status = await self._containers.wait(container_id)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._containers.remove(container_id))
        if status.exit_code != 0:
            logger.warning("cannot list the distributions in %s (exit %d)", image, status.exit_code)
            return {}
        installed: dict[str, str] = {}
        for line in b"".join(output).decode(errors="replace").splitlines():
            name, _, version = line.strip().partition(" ")
            if name and version:
                installed[canonical_name(name)] = version
        return installed

    def _create_probe(self, image: str) -> str:
        try:
            created = self._api.create_container(
                image,
                command=["python", "-c", _LIST_DISTRIBUTIONS],
                user="",
                labels=self._containers.labels(role=ROLE_PROBE),
                host_config=self._api.create_host_config(network_mode="none"),
            )
        except ENGINE_ERRORS as exc:
            raise RuntimeFault(f"cannot inspect the job image {image}: {explain(exc)}") from exc
        return str(created["Id"])

    def _create_build_container(self, base_image: str, key: str) -> str:
        try:
            self._api.create_volume(PIP_CACHE_VOLUME)
            host_config = self._api.create_host_config(
                network_mode=BUILD_NETWORK,
                mounts=[Mount(target=PIP_CACHE_DIR, source=PIP_CACHE_VOLUME, type="volume")],  # pyright: ignore[reportUnknownArgumentType] -- untyped SDK class
            )
            labels = self._containers.labels(role=ROLE_DEPENDENCY_BUILD)
            labels[LABEL_DEPENDENCY_KEY] = key
            created = self._api.create_container(
                base_image,
                command=["sh", "-c", _INSTALL_SCRIPT],
                user="0",
                labels=labels,
                host_config=host_config,
            )
        except ENGINE_ERRORS as exc:
            raise RuntimeFault(
                f"could not create the dependency build container: {explain(exc)}"
            ) from exc
        return str(created["Id"])

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
                f"{LABEL_INSTALLATION}={self._installation_id}",
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


def _requirements_tar(requirements: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(f"{_STAGING}/requirements.txt")
        info.size = len(requirements)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(requirements))
    return buffer.getvalue()

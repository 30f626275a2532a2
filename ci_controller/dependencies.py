"""Which image a job runs on: the job image itself, or its cached dependency image.

A project without requirements runs on the job image directly (no build, no extra latency;
one with no dependency file at all gets a `[ci]` note saying nothing was installed),
and so does one whose requirements the job image already satisfies: every line a bare name
(or `name==version`) of a distribution installed there, as `pytest` is in the job image. The
job image's distributions are listed once per image id by a short probe container. Anything
else (ranges, extras, markers, URLs, pip options) goes through a real `pip install`.
Otherwise the image for its dependency key is reused when it exists and built once when it
does not: jobs with the same key wait for one build instead of racing each other. Build output
and progress go to the waiting job's log, so users see what is happening; after each build the
least recently used images beyond `max_dependency_images` are collected in the background.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import defaultdict

from ci_common.models import JobId
from ci_common.settings import Settings
from ci_controller.background import Background
from ci_controller.job_log import JobLog
from ci_controller.project import Project, canonical_name
from ci_controller.runtime import ContainerRuntime, DependencyBuildSpec, RuntimeFault, Sandbox

logger = logging.getLogger(__name__)


class DependencyImageCache:
    """Resolves a project's image, building each dependency image at most once at a time."""

    def __init__(
        self, *, runtime: ContainerRuntime, settings: Settings, background: Background
    ) -> None:
        self._runtime = runtime
        self._settings = settings
        self._background = background
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._installed: dict[str, dict[str, str]] = {}
        self.busy = 0
        """Probes and builds in progress: their containers are not orphans."""

    async def image_for(self, *, job_id: JobId, project: Project, base_id: str, log: JobLog) -> str:
        """The image to run `project` on; `DependencyInstallError` if pip fails."""
        if not project.declared:
            await log.note(
                "no dependency file (requirements.txt, pyproject.toml, setup.py): nothing "
                "installed, the tests run on the job image as is"
            )
        key = project.dependency_key(base_id)
        if key is None or project.requirements is None:
            return self._settings.job_image
        if await self._satisfied_by_job_image(project.requirements, base_id):
            logger.info("job %s: the job image satisfies the requirements", job_id)
            return self._settings.job_image
        if (found := await self._runtime.find_dependency_image(key)) is not None:
            return found
        lock = self._locks[key]
        if lock.locked():
            await log.note("waiting for another job that installs the same dependencies")
        async with lock:
            if (found := await self._runtime.find_dependency_image(key)) is not None:
                return found
            return await self._build(job_id=job_id, key=key, project=project, log=log)

    async def _satisfied_by_job_image(self, requirements: bytes, base_id: str) -> bool:
        wanted = _simple_requirements(requirements)
        if wanted is None:
            return False
        async with self._locks[f"installed:{base_id}"]:
            if (installed := self._installed.get(base_id)) is None:
                self.busy += 1
                try:
                    installed = await self._runtime.installed_distributions(
                        self._settings.job_image
                    )
                except RuntimeFault as exc:
                    logger.warning("cannot list the job image's distributions: %s", exc)
                    return False  # install them instead; try listing again next time
                finally:
                    self.busy -= 1
                self._installed[base_id] = installed
        return all(
            name in installed and (version is None or installed[name] == version)
            for name, version in wanted
        )

    async def _build(self, *, job_id: JobId, key: str, project: Project, log: JobLog) -> str:
        assert project.requirements is not None
        count = project.requirements.count(b"\n")
        await log.note(
            f"installing {count} requirement(s) into a new dependency image ({key[:12]}); "
            "later jobs with the same requirements reuse it"
        )
        logger.info("job %s: building dependency image %s", job_id, key[:12])
        started = time.monotonic()
        self.busy += 1
        try:
            image = await self._runtime.build_dependency_image(
                DependencyBuildSpec(
                    base_image=self._settings.job_image,
                    key=key,
                    requirements=project.requirements,
                    sandbox=Sandbox.for_jobs(self._settings, network=self._settings.build_network),
                ),
                output=log.add_text,
            )
        finally:
            self.busy -= 1
        elapsed = time.monotonic() - started
        await log.note(f"dependencies installed in {elapsed:.1f} s")
        logger.info("job %s: dependency image %s built in %.1f s", job_id, image, elapsed)
        self._background.spawn(self._collect(), what="collect dependency images")
        return image

    async def _collect(self) -> None:
        await self._runtime.collect_dependency_images(keep=self._settings.max_dependency_images)


_SIMPLE_REQUIREMENT = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*([A-Za-z0-9.+!_-]+))?")


def _simple_requirements(requirements: bytes) -> list[tuple[str, str | None]] | None:
    """(canonical name, pinned version or None) per line, or None if any line is more than
    a bare name or an exact pin."""
    simple: list[tuple[str, str | None]] = []
    for line in requirements.decode(errors="replace").splitlines():
        match = _SIMPLE_REQUIREMENT.fullmatch(line.strip())
        if match is None:
            return None
        simple.append((canonical_name(match.group(1)), match.group(2)))
    return simple

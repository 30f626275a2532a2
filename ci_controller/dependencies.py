"""Which image a job runs on: the job image itself, or its cached dependency image.

A project without requirements runs on the job image directly (no build, no extra latency).
Otherwise the image for its dependency key is reused when it exists and built once when it
does not: jobs with the same key wait for one build instead of racing each other. Build output
and progress go to the waiting job's log, so users see what is happening; after each build the
least recently used images beyond `max_dependency_images` are collected in the background.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

from ci_common.models import JobId
from ci_common.settings import Settings
from ci_controller.background import Background
from ci_controller.job_log import JobLog
from ci_controller.project import Project
from ci_controller.runtime import ContainerRuntime

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
        self.building: set[str] = set()

    async def image_for(self, *, job_id: JobId, project: Project, base_id: str, log: JobLog) -> str:
        """The image to run `project` on; `DependencyInstallError` if pip fails."""
        key = project.dependency_key(base_id)
        if key is None or project.requirements is None:
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

    async def _build(self, *, job_id: JobId, key: str, project: Project, log: JobLog) -> str:
        assert project.requirements is not None
        count = project.requirements.count(b"\n")
        await log.note(
            f"installing {count} requirement(s) into a new dependency image ({key[:12]}); "
            "later jobs with the same requirements reuse it"
        )
        logger.info("job %s: building dependency image %s", job_id, key[:12])
        started = time.monotonic()
        self.building.add(key)
        try:
            image = await self._runtime.build_dependency_image(
                base_image=self._settings.job_image,
                key=key,
                requirements=project.requirements,
                output=log.add_text,
            )
        finally:
            self.building.discard(key)
        elapsed = time.monotonic() - started
        await log.note(f"dependencies installed in {elapsed:.1f} s")
        logger.info("job %s: dependency image %s built in %.1f s", job_id, image, elapsed)
        self._background.spawn(self._collect(), what="collect dependency images")
        return image

    async def _collect(self) -> None:
        await self._runtime.collect_dependency_images(keep=self._settings.max_dependency_images)

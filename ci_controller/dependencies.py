"""Which image a job runs on: the job image itself, or its cached dependency image.

The job's dependency plan (`dependency_plan`) says what the project declares; this module
decides how it is provided and says so at the start of the job's log (`[ci]` lines: where the
dependencies come from, then that the cache was used, or the install and how long it took).

pytest must be there: when the job image has none (a plain `python:3.12-slim`) and the
project does not name it, it is added to the plan (so it is cached like any dependency) and
the log says so. The job image's distributions are listed once per image id by a short probe
container. A plan with nothing to install runs on the job image directly (no build, no extra
latency), and so does one the job image already satisfies: requirement files only, every line
a bare name (or `name==version`) of a distribution installed there. Anything else (ranges,
extras, markers, URLs, options, locks, a build backend) goes through a real install.
Otherwise the image for the plan's key is reused when it exists. When it does not, and the
runtime can (`installs_in_job_containers`), the tests have no network (`CI_JOB_NETWORK=none`)
and the plan does not build the project from its source, the job installs its dependencies in
its own container right before its tests (`FreshInstall`, see `docker.job_install`): a cold job
then costs what `uv pip install && pytest` in one `docker run` does. The image later jobs reuse
is built after that job ends (`cache_after`), apart from it: the job's container is never
committed, since its tests could have written into what would become everyone's image. A job
that comes while that build runs waits for it. Otherwise the image is built once, before the
job: jobs with the same key wait for one build instead of racing each other. Build output and
progress go to the waiting job's log, so users see what is happening; after each build (once its
job has the image, `collect_if_due`) the least recently used images beyond
`max_dependency_images` are collected in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass

from ci_common.models import JobId
from ci_controller.background import Background
from ci_controller.dependency_plan import DependencyPlan, canonical_name
from ci_controller.job_log import JobLog
from ci_controller.project import Project
from ci_controller.runtime import ContainerRuntime, DependencyBuildSpec, RuntimeFault, Sandbox
from ci_controller.settings import ControllerSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FreshInstall:
    """No image has the job's dependencies yet: its own container installs them (`build`)."""

    build: DependencyBuildSpec


class DependencyImageCache:
    """Resolves a project's image, building each dependency image at most once at a time."""

    def __init__(
        self, *, runtime: ContainerRuntime, settings: ControllerSettings, background: Background
    ) -> None:
        self._runtime = runtime
        self._settings = settings
        self._background = background
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._installed_by_image: dict[str, dict[str, str]] = {}
        self._collect_due = False
        self._cache_builds: dict[str, asyncio.Future[None]] = {}
        """Builds of images whose jobs installed their dependencies themselves, by key."""
        self.busy = 0
        """Probes, builds and installs in progress: their check containers are not orphans."""

    @contextlib.contextmanager
    def at_work(self) -> Generator[None]:
        """Counts in `busy` while it lasts (a job's own install uses it too: its network
        check runs a probe container)."""
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1

    async def image_for(
        self, *, job_id: JobId, project: Project, base_id: str, log: JobLog
    ) -> str | FreshInstall:
        """The image to run `project` on, or the install its own container is to do, saying
        in the job's log where its dependencies come from and how they are provided;
        `DependencyInstallError` if a build fails."""
        plan = project.plan
        if not plan.declared:
            await log.note(
                "dependencies: no dependency file (requirements.txt, pyproject.toml, uv.lock, "
                "setup.py, setup.cfg): nothing installed, the tests run on the job image as is"
            )
        elif plan.sources:
            await log.note(f"dependencies from {'; '.join(plan.sources)}")
        else:
            files = " and ".join(plan.declared)
            await log.note(f"dependencies: {files} declare{'s' * (len(plan.declared) == 1)} none")
        installed = await self._installed(base_id)
        if installed is not None and "pytest" not in installed and not plan.declares("pytest"):
            plan = plan.with_pytest()
            await log.note(
                "pytest: neither the project's dependencies nor the job image have it; it is "
                "added to the install"
            )
        key = plan.key(base_id)
        if key is None:
            return self._settings.job_image
        if _satisfied(plan.requirement_lines(), installed or {}):
            logger.info("job %s: the job image satisfies the requirements", job_id)
            await log.note("dependencies: the job image has them all; nothing installed")
            return self._settings.job_image
        if (found := await self._cached(key, log)) is not None:
            return found
        if (pending := self._cache_builds.get(key)) is not None:
            await log.note("waiting for the dependency image an earlier job's install started")
            await asyncio.shield(pending)
            if (found := await self._cached(key, log)) is not None:
                return found
        lock = self._locks[key]
        if not lock.locked() and self._installs_in_job(plan):
            await log.note(
                f"installing the dependencies in this job's container ({key[:12]}), which "
                "loses its network before the tests; the image later jobs reuse is made "
                "after this job"
            )
            return FreshInstall(self._build_spec(key=key, project=project, plan=plan))
        if lock.locked():
            await log.note("waiting for another job that installs the same dependencies")
        async with lock:
            if (found := await self._cached(key, log)) is not None:
                return found
            return await self._build(job_id=job_id, key=key, project=project, plan=plan, log=log)

    async def prime(self) -> None:
        """List the job image's distributions ahead of the first job (a probe container,
        about half a second), so that job does not wait for it."""
        try:
            base_id = await self._runtime.ensure_image(self._settings.job_image)
        except RuntimeFault:
            return  # the first job says what is wrong with the image
        await self._installed(base_id)

    async def _cached(self, key: str, log: JobLog) -> str | None:
        found = await self._runtime.find_dependency_image(key)
        if found is not None:
            await log.note(f"dependencies: cached image {found} used, nothing installed")
        return found

    async def _installed(self, base_id: str) -> dict[str, str] | None:
        """The job image's distributions, listed once per image id (None if they cannot
        be listed: then nothing is assumed about them)."""
        async with self._locks[f"installed:{base_id}"]:
            if (installed := self._installed_by_image.get(base_id)) is None:
                try:
                    with self.at_work():
                        installed = await self._runtime.installed_distributions(
                            self._settings.job_image
                        )
                except RuntimeFault as exc:
                    logger.warning("cannot list the job image's distributions: %s", exc)
                    return None  # try listing again next time
                self._installed_by_image[base_id] = installed
        return installed

    async def _build(
        self, *, job_id: JobId, key: str, project: Project, plan: DependencyPlan, log: JobLog
    ) -> str:
        await log.note(
            f"installing the dependencies into a new dependency image ({key[:12]}); later "
            "jobs with the same dependencies reuse it"
        )
        logger.info("job %s: building dependency image %s", job_id, key[:12])
        started = time.monotonic()
        with self.at_work():
            image = await self._runtime.build_dependency_image(
                self._build_spec(key=key, project=project, plan=plan), output=log.add_text
            )
        elapsed = time.monotonic() - started
        await log.note(f"dependencies installed in {elapsed:.1f} s")
        logger.info("job %s: dependency image %s built in %.1f s", job_id, image, elapsed)
        self._collect_due = True
        return image

    def _installs_in_job(self, plan: DependencyPlan) -> bool:
        return (
            self._runtime.installs_in_job_containers
            and self._settings.job_network == "none"
            and not plan.needs_source
        )

    def _build_spec(
        self, *, key: str, project: Project, plan: DependencyPlan
    ) -> DependencyBuildSpec:
        return DependencyBuildSpec(
            base_image=self._settings.job_image,
            key=key,
            steps=plan.steps,
            files=plan.files,
            project_tar=project.tar if plan.needs_source else None,
            sandbox=Sandbox.for_jobs(self._settings, network=self._settings.build_network),
        )

    def cache_after(
        self, *, job_id: JobId, fresh: FreshInstall, then: Callable[[str], Awaitable[None]]
    ) -> None:
        """Build the image for a job that installed its dependencies itself, in the
        background; `then(image)` once it exists. Jobs with its key that come meanwhile
        wait for this build (registered before this returns) instead of installing again."""
        key = fresh.build.key
        if key in self._cache_builds:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._cache_builds[key] = done

        async def build() -> None:
            try:
                async with self._locks[key]:
                    if await self._runtime.find_dependency_image(key) is not None:
                        return
                    image = await self._build_quietly(job_id=job_id, spec=fresh.build)
                self._collect_due = True
                await then(image)
            finally:
                self._cache_builds.pop(key, None)
                if not done.done():
                    done.set_result(None)

        self._background.spawn(build(), what=f"build dependency image {key[:12]}")

    async def _build_quietly(self, *, job_id: JobId, spec: DependencyBuildSpec) -> str:
        """The build for `cache_after`: its output goes to the controller's debug log (the
        job's log is complete)."""

        async def output(text: str) -> None:
            logger.debug("dependency image %s: %s", spec.key[:12], text.rstrip())

        started = time.monotonic()
        with self.at_work():
            image = await self._runtime.build_dependency_image(spec, output=output)
        logger.info(
            "job %s: dependency image %s built in %.1f s, after the job",
            job_id,
            image,
            time.monotonic() - started,
        )
        return image

    def collect_if_due(self) -> None:
        """After a build, once its job has its image (and the warm pool has let go of the
        one before), collect the least recently used images in the background."""
        if self._collect_due:
            self._collect_due = False
            self._background.spawn(self._collect(), what="collect dependency images")

    async def _collect(self) -> None:
        await self._runtime.collect_dependency_images(keep=self._settings.max_dependency_images)


_SIMPLE_REQUIREMENT = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*([A-Za-z0-9.+!_-]+))?")


def _satisfied(lines: list[str] | None, installed: dict[str, str]) -> bool:
    """Whether every line is a bare name or an exact pin of a distribution `installed` has
    (False when any line is more than that, or there are no lines to judge)."""
    if not lines:
        return False
    for line in lines:
        match = _SIMPLE_REQUIREMENT.fullmatch(line.strip())
        if match is None:
            return False
        name, version = canonical_name(match.group(1)), match.group(2)
        if name not in installed or (version is not None and installed[name] != version):
            return False
    return True

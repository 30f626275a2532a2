"""A dispatched job's way into a container: its project out of the database, its image, and
a container with the project in it, the pool's warm one when it fits.

`JobWorker` owns a job from dispatch to clean-up; this is the part before the container runs
the tests, kept apart so the worker reads as supervise, watch, finish. The order matters for
recovery: a container is made known to the worker (`use_container`, which the reconciler
reads) before anything can run in it, so a controller that dies meanwhile leaves either no
container (the job is dispatched again) or one the next controller adopts. Independent waits
(the engine's image id, whether the warm container still runs, the upload out of the database
and unpacked) overlap instead of adding up.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ci_common.models import Job
from ci_common.repository import ControllerRepository
from ci_controller.background import Background, side_task
from ci_controller.bootstrap import JOB_COMMAND, JOB_ENVIRONMENT, job_file
from ci_controller.dependencies import FreshInstall
from ci_controller.dependency_plan import DependencyPlan, Selection
from ci_controller.job_images import JobImages
from ci_controller.job_log import JobLog
from ci_controller.job_plugins import plugin_files
from ci_controller.job_results import JobResults, files_hash
from ci_controller.log_cursor import LogPosition
from ci_controller.metrics import ControllerMetrics
from ci_controller.project import Project, ProjectArchiveError, Staging, build_project
from ci_controller.runtime import (
    ContainerGoneError,
    ContainerInfo,
    ContainerRuntime,
    ContainerState,
    InstallingJobSpec,
    JobContainerSpec,
    RuntimeFault,
    Sandbox,
)
from ci_controller.settings import ControllerSettings
from ci_controller.warm_pool import WarmPool

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerEnvironment:
    """What every worker shares, wired once by the controller."""

    repo: ControllerRepository
    runtime: ContainerRuntime
    settings: ControllerSettings
    images: JobImages
    background: Background
    warm: WarmPool
    metrics: ControllerMetrics


class JobDispatch:
    """Puts one job's project into a container and starts it (or claims a warm one)."""

    def __init__(
        self,
        *,
        job: Job,
        env: WorkerEnvironment,
        results: JobResults,
        use_container: Callable[[str | None], None],
    ) -> None:
        self.job = job
        self._env = env
        self._results = results
        self._use_container = use_container
        self.installed_at: LogPosition | None = None
        """Where the output of the job's own dependency install ended (its tests' output
        follows it), when its container installed them."""
        self.installed: FreshInstall | None = None
        """What the job's container installed itself, for the image built after the job."""

    async def project(self, staging: Staging) -> Project:
        """The stored upload, copied to `staging` in blocks and unpacked into its tar there
        (in a thread: it may take seconds for a large project)."""
        with staging.upload.open("r+b") as upload:  # it exists: see `Staging`
            found = await self._env.repo.copy_archive(self.job.id, upload)
        if not found:
            raise RuntimeFault("the uploaded project is no longer stored; submit the job again")
        try:
            await self._results.know_files(await asyncio.to_thread(files_hash, staging.upload))
        except (OSError, zipfile.BadZipFile) as exc:
            raise ProjectArchiveError(f"the uploaded project cannot be read: {exc}") from exc
        job = self.job

        artifact_bytes = self._env.settings.max_artifacts_bytes

        def with_plan(plan: DependencyPlan) -> bytes:
            return job_file(job, plan=plan, artifact_bytes=artifact_bytes)

        return await asyncio.to_thread(
            build_project,
            staging.upload,
            staging.tar,
            job_file=with_plan,
            selection=Selection(extras=job.extras, groups=job.groups),
            support_files=plugin_files(job.rerun_node_ids),
            stop=staging.stop,
        )

    async def announce(self, log: JobLog) -> None:
        """Say at the log's start which Python runs the tests, and what the submit asked for
        beyond pytest's defaults (the environment's names only: its values may be secrets,
        and the job JSON has them)."""
        job = self.job
        chosen = self._env.images.for_job(job)
        if chosen.python is not None:
            await log.note(f"Python {chosen.python} (image {chosen.image})")
        if job.pytest_args:
            await log.note(f"pytest arguments: {shlex.join(job.pytest_args)}")
        if job.env:
            await log.note(f"environment: {', '.join(sorted(job.env))} (values not shown)")

    async def prepare(self, staging: Staging, log: JobLog) -> tuple[str, bool]:
        """The job's container and whether it runs already (a claimed warm container)."""
        env, job = self._env, self.job
        chosen = env.images.for_job(job)
        # Independent waits overlap rather than add up: the engine's image id, whether the
        # warm container this job will likely claim still runs, and the upload out of the
        # database and unpacked.
        image_id = side_task(env.runtime.ensure_image(chosen.image))
        looked = self._look_at_warm(chosen.image)
        try:
            project = await self.project(staging)
        except BaseException:
            image_id.cancel()
            if looked is not None:
                looked.result.cancel()
            raise
        base_id = await image_id
        image = await chosen.dependencies.image_for(
            job_id=job.id, project=project, base_id=base_id, log=log
        )
        if isinstance(image, FreshInstall):
            if looked is not None:
                looked.result.cancel()
            return await self._install_then_test(project, image, log), True
        on_job_image = image == env.settings.job_image
        if not on_job_image:
            await env.warm.use(image)  # the project's next job likely needs the same image
        chosen.dependencies.collect_if_due()
        warm = await self._claim_warm(
            project, image, base_id if on_job_image else None, looked=looked
        )
        if warm is not None:
            return warm, True
        container_id = await env.runtime.create_job_container(
            JobContainerSpec(
                job_id=job.id,
                image=image,
                project_tar=project.tar,
                command=JOB_COMMAND,
                sandbox=Sandbox.for_jobs(env.settings),
                environment=JOB_ENVIRONMENT,
            )
        )
        self._use_container(container_id)
        await env.repo.set_container(job.id, container_id)
        return container_id, False

    async def _install_then_test(self, project: Project, fresh: FreshInstall, log: JobLog) -> str:
        """The job's container that installs its dependencies, started, its install done and
        its network gone, with the project in: its tests are starting."""
        env, job = self._env, self.job
        spec = InstallingJobSpec(
            job_id=job.id,
            image=fresh.build.base_image,
            command=JOB_COMMAND,
            sandbox=Sandbox.for_jobs(env.settings),
            environment=JOB_ENVIRONMENT,
            build=fresh.build,
        )
        with env.images.for_job(job).dependencies.at_work():
            container_id = await env.runtime.create_installing_job_container(spec)
            self._use_container(container_id)
            await env.repo.set_container(job.id, container_id)
            started = time.monotonic()
            self.installed_at = await env.runtime.install_in_job_container(
                container_id, spec, output=log.add_frame
            )
        self.installed = fresh
        # The note stores the install's output first, with its cursor: a controller that
        # adopts the container from here on resumes after the install.
        await log.note(f"dependencies installed in {time.monotonic() - started:.1f} s")
        await env.runtime.put_project(container_id, project.tar)
        return container_id

    def _look_at_warm(self, image: str) -> _Looked | None:
        """Start inspecting the warm container a job on `image` would claim (if any), so the
        claim need not wait for the answer; it is asked before the project goes in, so a
        container that died while idle is told from one whose tests already ran."""
        warm = self._env.warm.peek(image)
        if warm is None:
            return None
        return _Looked(id=warm, result=side_task(self._env.runtime.inspect(warm)))

    async def _claim_warm(
        self, project: Project, image: str, image_id: str | None, *, looked: _Looked | None
    ) -> str | None:
        """The pool's warm container with the project in it, or None for the ordinary path.

        The project goes in before the container is recorded as the job's: a stored warm
        container therefore (almost) always has its project, and if the controller dies in
        between, the job has no container yet and is dispatched again while the unreferenced
        warm container is removed as an orphan."""
        env, job = self._env, self.job
        warm = env.warm.take(image=image, image_id=image_id)
        if looked is not None and looked.id != warm:
            looked.result.cancel()  # another job took that one meanwhile
        if warm is None:
            return None
        self._use_container(warm)  # the reconciler now counts it as this job's
        try:
            inspected = looked.result if looked and looked.id == warm else env.runtime.inspect(warm)
            info = await inspected
            if info is None or info.state is not ContainerState.RUNNING:
                raise ContainerGoneError(f"it is {info.state.value if info else 'gone'}")
            await env.runtime.put_project(warm, project.tar)
        except RuntimeFault as exc:
            logger.warning("job %s: warm container unusable (%s); starting its own", job.id, exc)
            self._use_container(None)
            env.background.spawn(env.runtime.remove(warm), what=f"remove warm {warm[:12]}")
            return None
        await env.repo.set_container(job.id, warm)
        waited = (datetime.now(UTC) - job.created_at).total_seconds() * 1000
        logger.info(
            "job %s: warm container %s claimed (%.0f ms after submission)",
            job.id,
            warm[:12],
            waited,
        )
        return warm

    async def start(self, container_id: str) -> None:
        await self._env.runtime.start(container_id)
        waited = (datetime.now(UTC) - self.job.created_at).total_seconds() * 1000
        logger.info(
            "job %s: container %s started (%.0f ms after submission)",
            self.job.id,
            container_id[:12],
            waited,
        )


@dataclass(frozen=True)
class _Looked:
    """An inspection of warm container `id`, under way."""

    id: str
    result: asyncio.Future[ContainerInfo | None]

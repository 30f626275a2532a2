"""One job from `running` to `completed`: prepare, start, follow, stop if asked, finalize.

Each running job has one worker (one asyncio task), so everything about a job happens in
order. A worker either dispatches a job the controller has just marked running (`job_dispatch`:
stage the project's tar on disk (`project.Staging`, removed once the container has it), find
or build its dependency image, create the container with the project in it, record the
container id, start it; or, when no image has its dependencies yet, create its container to
install them first (`dependencies.FreshInstall`: the install's output goes to the log with its
positions, the project goes in once the runtime has taken the install's network away, and the
image later jobs reuse is built after this one); or claim the warm container of its image
(`warm_pool`: the job image's, or the dependency image's the last job with dependencies used),
which is running already, and copy the project in) or adopts one whose container already
exists (after a controller restart; a container that installs its dependencies and has no
project yet is removed and the job started again, since it may still have the install's
network), and from then on both paths are the same: follow the output into the job log from
the stored cursor while waiting for the container to exit, a cancel request, or the wall-time
deadline (counted from `started_at`, so a restart does not extend it).

The end is always the same sequence: stop the container if it must stop, wait for its end,
drain its output completely, store the kept files (`container_watch` does these for each
container) and the closing note, and only then `complete_job`. Removing the
container and deleting the stored upload happen afterwards in the background, never delaying
the moment a user sees the result.

Failures are values: anything the runtime or the upload gets wrong ends the job as `error`
with a message saying what to do (in the job's `error` and as the log's last line), so no job
stays running because of one bad step. Only cancellation of the worker itself (the
controller shutting down) leaves the job running, for the next controller to adopt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import TypeVar

from ci_common.errors import StorageError
from ci_common.models import MAX_START_ATTEMPTS, Job, JobConclusion
from ci_controller.container_watch import ContainerWatch, race
from ci_controller.dependencies import FreshInstall
from ci_controller.job_dispatch import JobDispatch, WorkerEnvironment
from ci_controller.job_log import JobLog
from ci_controller.job_outcome import (
    Outcome,
    ProjectNeverArrivedError,
    StopReason,
    stopped_outcome,
)
from ci_controller.job_results import JobResults
from ci_controller.log_cursor import LogPosition
from ci_controller.project import ProjectArchiveError, Staging
from ci_controller.runtime import ContainerInfo, ContainerState, RuntimeFault

logger = logging.getLogger(__name__)

T = TypeVar("T")


class JobWorker:
    """Runs one job to completion; `request_cancel()` may be called at any time."""

    def __init__(self, *, job: Job, env: WorkerEnvironment) -> None:
        self.job = job
        self._env = env
        self._cancel = asyncio.Event()
        self.container_id: str | None = job.container_id
        self._results = JobResults(repo=env.repo, job=job)
        self._installed_at: LogPosition | None = None
        """Where the output of this job's own dependency install ended (its tests' output
        follows it), when its container installed them."""
        self._installed: FreshInstall | None = None

    def request_cancel(self) -> None:
        if not self._cancel.is_set():
            logger.info("job %s: cancel requested", self.job.id)
        self._cancel.set()

    async def run(self, *, container: ContainerInfo | None = None) -> Outcome:
        """Dispatch the job (no container yet) or adopt `container`, and see it to its end."""
        env = self._env
        log = await JobLog.resume(
            repo=env.repo, job=self.job, max_bytes=int(env.settings.max_log_mb * 1024 * 1024)
        )
        try:
            outcome = await self._attempts(container, log)
        except asyncio.CancelledError:
            # The controller is stopping: store what was read (with its cursor, so the next
            # controller resumes right after it) and leave the job to be adopted.
            with contextlib.suppress(Exception):
                await log.close()
            with contextlib.suppress(Exception):
                await self._results.close()
            raise
        except StorageError:
            # The database failed us, not the job: leave it running for the next reconcile,
            # which adopts its container or starts it again (an attempt counted).
            with contextlib.suppress(Exception):
                await log.close()
            with contextlib.suppress(Exception):
                await self._results.close()
            raise
        except (RuntimeFault, ProjectArchiveError) as exc:
            logger.warning("job %s: %s: %s", self.job.id, type(exc).__name__, exc)
            outcome = Outcome(JobConclusion.ERROR, error=str(exc))
        except Exception as exc:
            logger.exception("job %s: unexpected failure", self.job.id)
            outcome = Outcome(
                JobConclusion.ERROR,
                error=f"the controller failed while running this job ({exc}); "
                "see the controller's log and submit the job again",
            )
        await self._finish(outcome, log)
        return outcome

    async def _attempts(self, container: ContainerInfo | None, log: JobLog) -> Outcome:
        """Supervise the job, starting it over while its tests never began, at most
        `MAX_START_ATTEMPTS` times in all (a controller that died mid-start is our fault, not
        the user's; a job that keeps cutting its starts short must not loop forever)."""
        while self.job.attempts <= MAX_START_ATTEMPTS:
            try:
                return await self._supervise(container, log)
            except ProjectNeverArrivedError:
                pass
            if self.container_id is not None:
                old, self.container_id = self.container_id, None
                self._env.background.spawn(self._env.runtime.remove(old), what=f"remove {old[:12]}")
            self._installed_at = None  # a new container: positions of the old one mean nothing
            restarted = await self._env.repo.restart_job(self.job.id)
            if restarted is None:
                return Outcome(JobConclusion.ERROR, error="the job stopped running meanwhile")
            self.job, container = restarted, None
            if restarted.attempts <= MAX_START_ATTEMPTS:
                await log.note(
                    "the project never reached the job's container (the controller stopped "
                    f"while starting it); starting the job again (attempt {restarted.attempts} "
                    f"of {MAX_START_ATTEMPTS})"
                )
        return Outcome(
            JobConclusion.ERROR,
            error=f"the job could not be started in {MAX_START_ATTEMPTS} attempts (the "
            "controller stopped each time before its tests began); submit it again",
        )

    async def _supervise(self, container: ContainerInfo | None, log: JobLog) -> Outcome:
        deadline = self._deadline()
        if container is None:
            dispatch = self._dispatch()
            await dispatch.announce(log)
            # The project's files live until the container has it, and go however this ends.
            with Staging() as staging:
                prepared = await self._until_stopped(dispatch.prepare(staging, log), deadline)
                if isinstance(prepared, StopReason):
                    return self._stopped(prepared)
                container_id, started = prepared
                self._installed_at, self._installed = dispatch.installed_at, dispatch.installed
                if not started:
                    await dispatch.start(container_id)
        else:
            container_id = self.container_id = container.id
            logger.info("job %s: adopting container %s", self.job.id, container_id[:12])
            if container.installs and not await self._env.runtime.has_project(container_id):
                # Its install may not be over, so its network may still be on: never give it
                # the project; the job starts again in a new container.
                logger.info("job %s: its container was still installing", self.job.id)
                raise ProjectNeverArrivedError
            if container.state is ContainerState.EXITED:
                deadline = math.inf  # it ended by itself: its exit code decides, not the clock
            elif not await self._env.runtime.has_project(container_id):
                # Started (or claimed warm), but the controller died before the project was
                # in: the bootstrap is still waiting for it, so give it.
                logger.info("job %s: handing its container the project", self.job.id)
                with Staging() as staging:
                    project = await self._dispatch().project(staging)
                    await self._env.runtime.put_project(container_id, project.tar)
        watch = ContainerWatch(
            job=self.job,
            env=self._env,
            results=self._results,
            log=log,
            cancel=self._cancel,
            installed_at=self._installed_at,
        )
        return await watch.until_end(container_id, deadline)

    def _dispatch(self) -> JobDispatch:
        return JobDispatch(
            job=self.job, env=self._env, results=self._results, use_container=self._use_container
        )

    def _use_container(self, container_id: str | None) -> None:
        self.container_id = container_id

    def _deadline(self) -> float:
        started = self.job.started_at or datetime.now(UTC)
        elapsed = (datetime.now(UTC) - started).total_seconds()
        return asyncio.get_running_loop().time() + self._env.settings.job_timeout - elapsed

    def _cache_dependencies(self) -> None:
        """After a job that installed its dependencies itself: the image for later jobs."""
        if self._installed is None:
            return
        chosen = self._env.images.for_job(self.job)
        warm = self._env.warm

        async def then(image: str) -> None:
            await warm.use(image)
            chosen.dependencies.collect_if_due()

        chosen.dependencies.cache_after(job_id=self.job.id, fresh=self._installed, then=then)

    async def _until_stopped(
        self, work: Coroutine[object, object, T], deadline: float
    ) -> T | StopReason:
        task = asyncio.create_task(work)
        try:
            stop = await race(task, cancel=self._cancel, deadline=deadline)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return task.result() if stop is None else stop

    def _stopped(self, reason: StopReason) -> Outcome:
        return stopped_outcome(reason, settings=self._env.settings)

    async def _finish(self, outcome: Outcome, log: JobLog) -> None:
        env, job = self._env, self.job
        note = outcome.note or (f"error: {outcome.error}" if outcome.error else None)
        try:
            stopped = outcome.note if outcome.exit_code is None and outcome.error is None else None
            results_note = await self._results.finish(exit_code=outcome.exit_code, stopped=stopped)
            if results_note:
                await log.note(f"test results: {results_note}")
        except Exception:
            logger.exception("job %s: could not store the end of its test results", job.id)
        try:
            if note:
                await log.note(note)
            await log.close()
        except Exception:
            logger.exception("job %s: could not store the end of its log", job.id)
        self._cache_dependencies()  # before the job ends: its next job waits for the image
        completed = await env.repo.complete_job(
            job.id, conclusion=outcome.conclusion, exit_code=outcome.exit_code, error=outcome.error
        )
        if completed:
            env.metrics.job_finished(job, conclusion=outcome.conclusion, at=datetime.now(UTC))
        logger.info(
            "job %s: %s (exit code %s)%s%s",
            job.id,
            outcome.conclusion.value,
            outcome.exit_code,
            f": {outcome.error}" if outcome.error else "",
            "" if completed else "; it was completed already",
        )
        env.background.spawn(self._clean_up(), what=f"clean up job {job.id}")

    async def _clean_up(self) -> None:
        if self.container_id is not None:
            await self._env.runtime.remove(self.container_id)
        await self._env.repo.delete_archive(self.job.id)

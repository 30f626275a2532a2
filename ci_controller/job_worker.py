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

The end is always the same sequence: stop the container if it must stop, wait for it, drain
its output completely, store the kept files (copied out while the container went down:
`artifact_store`) and the closing note, and only then `complete_job`. Removing the
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from ci_common.errors import StorageError
from ci_common.models import MAX_START_ATTEMPTS, Job, JobConclusion
from ci_controller.artifact_store import Collected, collect_artifacts
from ci_controller.background import side_task
from ci_controller.container_output import (
    END_CHANNEL,
    FILES_CHANNEL,
    LOG_CHANNEL,
    RESULTS_CHANNEL,
    decode_frame,
)
from ci_controller.dependencies import FreshInstall
from ci_controller.job_dispatch import JobDispatch, WorkerEnvironment
from ci_controller.job_log import JobLog
from ci_controller.job_outcome import (
    Outcome,
    ProjectNeverArrivedError,
    StopReason,
    exit_outcome,
    stopped_outcome,
)
from ci_controller.job_results import JobResults
from ci_controller.log_cursor import LogPosition
from ci_controller.project import ProjectArchiveError, Staging
from ci_controller.runtime import (
    ContainerGoneError,
    ContainerInfo,
    ContainerState,
    ExitStatus,
    LogFrame,
    RuntimeFault,
)

logger = logging.getLogger(__name__)

CANCEL_GRACE_SECONDS = 2.0
TIMEOUT_GRACE_SECONDS = 5.0
DRAIN_TIMEOUT_SECONDS = 30.0

T = TypeVar("T")


@dataclass
class _Pid1End:
    """What a job container's PID 1 said as it ended (`END_CHANNEL`, `FILES_CHANNEL`)."""

    gathered: asyncio.Event = field(default_factory=asyncio.Event)
    """The kept files are gathered (its last word came)."""
    succeeded: asyncio.Event = field(default_factory=asyncio.Event)
    """It exits with 0: the job is over, whenever the engine sees the exit."""
    files: list[bytes] = field(default_factory=lambda: list[bytes]())
    """`OUTPUT_DIR` as it sent it, in pieces (none when it is too large)."""


class JobWorker:
    """Runs one job to completion; `request_cancel()` may be called at any time."""

    def __init__(self, *, job: Job, env: WorkerEnvironment) -> None:
        self.job = job
        self._env = env
        self._cancel = asyncio.Event()
        self.container_id: str | None = job.container_id
        self._results = JobResults(repo=env.repo, job=job)
        self._end = _Pid1End()
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
        return await self._watch(container_id, log, deadline)

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

    async def _watch(self, container_id: str, log: JobLog, deadline: float) -> Outcome:
        runtime = self._env.runtime
        self._end = _Pid1End()  # this container's (a job started again has a new one)
        follower = asyncio.create_task(self._follow(container_id, log))
        waiter = asyncio.create_task(runtime.wait(container_id))
        succeeded = asyncio.create_task(self._end.succeeded.wait())
        ended = asyncio.create_task(
            asyncio.wait({waiter, succeeded}, return_when=asyncio.FIRST_COMPLETED)
        )
        early = side_task(self._artifacts_when_ready(container_id))
        try:
            stop = await self._race(ended, deadline)
            if stop is not None:
                grace = (
                    CANCEL_GRACE_SECONDS
                    if stop is StopReason.CANCELLED
                    else (TIMEOUT_GRACE_SECONDS)
                )
                await runtime.stop(container_id, grace=grace)
            # PID 1's word of a clean exit is as good as the engine's, and ~0.1 s earlier (it
            # comes last in its output, so the follower has seen everything before it). Any
            # other exit waits for the engine, which also says whether memory ran out.
            status = await waiter if stop is not None or waiter.done() else ExitStatus(0)
            await self._drain(follower, log)
            collected = await self._artifacts(early, container_id)
            for line in collected.notes:
                await log.note(line)
        except ContainerGoneError as exc:
            raise RuntimeFault(
                "the job's container vanished while it ran (removed outside the CI service?); "
                "submit the job again"
            ) from exc
        finally:
            for task in (follower, waiter, succeeded, ended, early):
                task.cancel()
        return self._stopped(stop) if stop is not None else self._exited(status)

    async def _artifacts_when_ready(self, container_id: str) -> Collected:
        """The kept files as soon as PID 1 says they are gathered: those it sent, or a copy
        made while the container is still exiting, so the copy and the exit overlap."""
        await self._end.gathered.wait()
        return await self._collect(container_id, sent=b"".join(self._end.files))

    async def _artifacts(self, early: asyncio.Future[Collected], container_id: str) -> Collected:
        """The kept files, once the container has exited and its output is drained: the early
        copy's result, or a copy now when PID 1 never said they were ready (it was killed)
        or the early copy failed (it raced the container's exit)."""
        if self._end.gathered.is_set():
            collected = await early
            if not collected.failed:
                return collected
        else:
            early.cancel()
        return await self._collect(container_id)

    async def _collect(self, container_id: str, *, sent: bytes | None = None) -> Collected:
        return await collect_artifacts(
            repo=self._env.repo,
            runtime=self._env.runtime,
            job=self.job,
            container_id=container_id,
            max_bytes=self._env.settings.max_artifacts_bytes,
            sent=sent,
        )

    async def _follow(self, container_id: str, log: JobLog) -> None:
        """Store the container's output and test results, each from its stored cursor on.

        Every message of the container passes here, decoded (`container_output`): the one
        place where records are routed by channel. The log and the results keep a cursor
        each (they are stored in batches of their own), so the stream is read from the
        earlier of the two and a record at or before its own channel's cursor is skipped:
        a restarted controller repeats and loses nothing of either."""
        log_after = LogPosition.decode(self.job.log_cursor) or self._installed_at
        results_after = LogPosition.decode(self.job.results_cursor) or self._installed_at
        after = (
            None if log_after is None or results_after is None else min(log_after, results_after)
        )
        async for frame in self._env.runtime.follow_logs(container_id, after=after):
            record = decode_frame(frame.data)
            if record.channel == LOG_CHANNEL:
                if log_after is None or frame.position > log_after:
                    await log.add_frame(LogFrame(position=frame.position, data=record.data))
            elif record.channel == RESULTS_CHANNEL:
                if results_after is None or frame.position > results_after:
                    await self._results.add_frame(
                        LogFrame(position=frame.position, data=record.data)
                    )
            elif record.channel == FILES_CHANNEL:
                self._end.files.append(record.data)
            elif record.channel == END_CHANNEL:
                self._end.gathered.set()
                if record.data == b"0":
                    self._end.succeeded.set()
                    return  # PID 1's last word: nothing follows it
            else:
                logger.warning("job %s: output on unknown channel %r", self.job.id, record.channel)

    async def _drain(self, follower: asyncio.Task[None], log: JobLog) -> None:
        """Let the follower store everything the container wrote before it stopped."""
        try:
            await asyncio.wait_for(asyncio.shield(follower), DRAIN_TIMEOUT_SECONDS)
        except TimeoutError:
            logger.warning("job %s: output still streaming after exit; giving up", self.job.id)
            await log.note("the end of the output could not be read from the container")
        except RuntimeFault as exc:
            logger.warning("job %s: %s", self.job.id, exc)
            await log.note(f"part of the output could not be read: {exc}")

    async def _until_stopped(
        self, work: Coroutine[object, object, T], deadline: float
    ) -> T | StopReason:
        task = asyncio.create_task(work)
        try:
            stop = await self._race(task, deadline)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return task.result() if stop is None else stop

    async def _race(self, task: asyncio.Future[T], deadline: float) -> StopReason | None:
        """Wait for `task`, a cancel request or the deadline; None when `task` finished."""
        cancelled = asyncio.create_task(self._cancel.wait())
        remaining = (
            None if math.isinf(deadline) else max(0.0, deadline - asyncio.get_running_loop().time())
        )
        try:
            done, _ = await asyncio.wait(
                {task, cancelled}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            cancelled.cancel()
        if task in done:
            return None
        return StopReason.CANCELLED if cancelled in done else StopReason.TIMED_OUT

    def _stopped(self, reason: StopReason) -> Outcome:
        return stopped_outcome(reason, settings=self._env.settings)

    def _exited(self, status: ExitStatus) -> Outcome:
        return exit_outcome(status, settings=self._env.settings)

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

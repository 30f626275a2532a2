"""The reconciler: the database says what should happen, the engine says what is, and the
controller closes the gap.

Two triggers drive it. A change wakes a quick pass that starts queued jobs and forwards cancel
requests, so a submitted job reaches its container within milliseconds rather than at the next
tick: on PostgreSQL the database pushes the change (`ChangeFeed`, LISTEN/NOTIFY on the queue
topic); on SQLite, and on PostgreSQL while the feed is down, a watcher polls
`repo.change_counter()` (SQLite's `data_version`, which moves whenever another process commits)
every 20 ms. A full reconcile every
`CI_RECONCILE_INTERVAL` seconds (and once at start-up) also compares the jobs with the
containers of this installation:

- a running job without a worker here is adopted: its container (found by label) is followed
  from the stored log cursor, or finalized from its exit code if it ended while no controller
  was watching; a job whose container was never created or never started is dispatched
  again; a job whose container vanished ends as `error`;
- a container of this installation that belongs to no job being worked on is removed,
  except the warm container waiting for the next job (`warm_pool`); a claimed warm container
  carries no job label, so a running job's container is also looked up by its stored id;
- queued jobs are started up to `CI_MAX_PARALLEL_JOBS`, in `scheduling.dispatch_order`;
- at most once a minute, jobs completed more than `CI_RETENTION_DAYS` ago are deleted with
  everything stored for them (a bounded number per pass, each in small transactions, see
  `ci_persistence.retention`), then the database gives freed pages back and truncates its
  WAL.

Dispatch marks the job running first (compare-and-set, so a job cancelled meanwhile is never
started) and only then creates its container, labelled with the job id: whatever instant the
controller dies at, the next one finds either a queued job, or a running job with or without
a labelled container, and each of those has one obvious way forward.

After each pass the warm pool is topped up (in the background), so the next job finds a
started container and only needs its project copied in.

Several engines share one queue, one controller each (`CI_ENGINE_NAME`): a controller claims
queued jobs itself (compare-and-set: each job is claimed once), records its engine on the
job, and adopts only its own engine's running jobs and containers. A full pass in which the
engine answered records its heartbeat; while it does not answer, the controller claims
nothing, and after `CI_ENGINE_LOST_AFTER` the other controllers end its jobs
(`lost_engines`).

Stopping (`stop` set, on SIGTERM) stops dispatching, removes the unclaimed warm container and
lets go of the workers without touching their containers: the next controller adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from ci_common.change_feed import ChangeFeed
from ci_common.errors import StorageError
from ci_common.models import DEFAULT_ENGINE, Job, JobConclusion, JobId, JobStatus
from ci_common.python_versions import PythonRuntime
from ci_common.repository import ControllerRepository
from ci_controller.background import Background
from ci_controller.job_dispatch import WorkerEnvironment
from ci_controller.job_images import JobImages
from ci_controller.job_log import JobLog
from ci_controller.job_worker import JobWorker
from ci_controller.lost_engines import sweep_lost_engines
from ci_controller.metrics import ControllerMetrics
from ci_controller.runtime import (
    ROLE_DEPENDENCY_BUILD,
    ROLE_JOB,
    ROLE_PROBE,
    ROLE_WARM,
    ContainerInfo,
    ContainerRuntime,
    ContainerState,
)
from ci_controller.scheduling import dispatch_order
from ci_controller.settings import ControllerSettings
from ci_controller.wake_ups import WakeUps
from ci_controller.warm_pool import WarmPool

logger = logging.getLogger(__name__)

_DEPENDENCY_ROLES = (ROLE_DEPENDENCY_BUILD, ROLE_PROBE)
SHUTDOWN_GRACE_SECONDS = 5.0
RECLAIM_SPACE_SECONDS = 60.0
RETENTION_JOBS_PER_PASS = 200
"""Expired jobs deleted per pass at most, so a backlog never stalls the reconcile loop long."""
RETENTION_JOBS_PER_CALL = 10
VANISHED = (
    "the job's container vanished while no controller was watching it (removed outside the "
    "CI service?); submit the job again"
)


class Controller:
    """Runs the jobs of one database on one container runtime. Wire once per process."""

    def __init__(
        self,
        settings: ControllerSettings,
        runtime: ContainerRuntime,
        repo: ControllerRepository,
        *,
        runtimes: Sequence[PythonRuntime] = (),
        metrics: ControllerMetrics | None = None,
        changes: ChangeFeed | None = None,
    ) -> None:
        """`runtimes`: the Python versions offered (`python_runtimes.discover_runtimes`);
        `settings.job_image` is the default version's image. `metrics`: where to count what it
        does (a registry of its own when not given). `changes`: the database's pushed notices
        of new jobs and cancel requests, if it has them (else it is polled)."""
        self._settings = settings
        self._metrics = metrics or ControllerMetrics()
        self._engine = settings.engine_name
        self._engine_answers = True
        """False from a full pass whose listing failed until one succeeds: claim nothing."""
        self._runtime = runtime
        self._repo = repo
        self._background = Background()
        self._images = JobImages(
            settings=settings, runtimes=runtimes, runtime=runtime, background=self._background
        )
        self._warm = WarmPool(runtime=runtime, settings=settings, background=self._background)
        self._env = WorkerEnvironment(
            repo=repo,
            runtime=runtime,
            settings=settings,
            images=self._images,
            background=self._background,
            warm=self._warm,
            metrics=self._metrics,
        )
        self._workers: dict[JobId, JobWorker] = {}
        self._tasks: dict[JobId, asyncio.Task[object]] = {}
        self._wake_ups = WakeUps(repo, changes)
        self._stopping = False
        self._next_reclaim = 0.0

    @property
    def running_jobs(self) -> set[JobId]:
        """The jobs this controller is working on right now."""
        return set(self._workers)

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile until `stop` is set, then let go of the workers (containers stay)."""
        loop = asyncio.get_running_loop()
        woken = self._wake_ups.event
        self._background.spawn(self._images.default.dependencies.prime(), what="list the job image")
        try:
            async with self._wake_ups.watching(stop):
                await self._safely(self.reconcile)
                next_full = loop.time() + self._settings.reconcile_interval
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(woken.wait(), max(0.0, next_full - loop.time()))
                    if stop.is_set():
                        break
                    woken.clear()
                    if loop.time() >= next_full:
                        await self._safely(self.reconcile)
                        next_full = loop.time() + self._settings.reconcile_interval
                    else:
                        await self._safely(self.react)
        finally:
            await self.shutdown()

    async def react(self) -> None:
        """The quick pass after a change: forward cancel requests, start queued jobs."""
        jobs = await self._repo.list_active_jobs()
        self._forward_cancels(jobs)
        await self._dispatch(jobs)
        self._fill_warm()

    async def reconcile(self) -> None:
        """The full pass: adopt, finalize, clean up, then dispatch."""
        jobs = await self._repo.list_active_jobs()
        await sweep_lost_engines(
            repo=self._repo,
            jobs=jobs,
            ours=self._engine,
            grace=self._settings.engine_lost_after,
            max_log_bytes=int(self._settings.max_log_mb * 1024 * 1024),
        )
        try:
            containers = await self._runtime.list_containers()
        except Exception:
            self._engine_answers = False
            raise
        self._engine_answers = True
        await self._repo.record_engine(self._engine, capacity=self._settings.max_parallel_jobs)
        await self._recover(
            [job for job in jobs if (job.engine or DEFAULT_ENGINE) == self._engine], containers
        )
        self._forward_cancels(jobs)
        await self._remove_orphans(containers)
        await self._dispatch(jobs)
        self._fill_warm()
        await self._reclaim_space()

    async def shutdown(self) -> None:
        """Stop dispatching, remove the unclaimed warm container and let go of every worker
        without touching its container."""
        self._stopping = True
        await self._warm.close()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self._background.drain(grace=SHUTDOWN_GRACE_SECONDS)

    async def wait_idle(self) -> None:
        """Wait until no job is being worked on (tests and benchmarks)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks.values()))
        await self._background.drain(grace=SHUTDOWN_GRACE_SECONDS)

    def _fill_warm(self) -> None:
        if not self._stopping:
            self._warm.fill()

    async def _recover(self, jobs: list[Job], containers: list[ContainerInfo]) -> None:
        by_job = {c.job_id: c for c in containers if c.role == ROLE_JOB and c.job_id}
        by_id = {c.id: c for c in containers}
        for listed in jobs:
            if listed.status is not JobStatus.RUNNING or listed.id in self._workers:
                continue
            # The list may predate a worker of ours finishing this job: look again.
            job = await self._repo.get_job(listed.id)
            if job.status is not JobStatus.RUNNING or job.id in self._workers:
                continue
            container = by_job.get(job.id)
            if container is None and job.container_id is not None:
                container = by_id.get(job.container_id)  # a claimed warm one has no job label
            if container is not None and container.state is ContainerState.CREATED:
                # Never started, so it never got its project: replace it.
                logger.info("job %s: replacing its unstarted container", job.id)
                self._background.spawn(
                    self._runtime.remove(container.id), what=f"remove {container.id[:12]}"
                )
                await self._start_again(job)
            elif container is not None:
                if job.container_id != container.id:
                    await self._repo.set_container(job.id, container.id)
                self._start_worker(job, container)
            elif job.container_id is None:
                logger.info("job %s: has no container yet; dispatching it again", job.id)
                await self._start_again(job)
            else:
                await self._fail_vanished(job)

    async def _start_again(self, job: Job) -> None:
        """Dispatch a running job whose start was cut short, counting the attempt (the
        worker refuses a job past `MAX_START_ATTEMPTS`)."""
        restarted = await self._repo.restart_job(job.id)
        if restarted is not None:
            self._start_worker(restarted, None)

    async def _reclaim_space(self) -> None:
        """Now and then, delete expired jobs and give the database's freed pages back
        (deleted uploads, logs and jobs)."""
        now = asyncio.get_running_loop().time()
        if now < self._next_reclaim:
            return
        self._next_reclaim = now + RECLAIM_SPACE_SECONDS
        await self.expire_jobs()
        await self._repo.reclaim_space()

    async def expire_jobs(self) -> int:
        """Delete (some of) the jobs completed more than `CI_RETENTION_DAYS` ago; returns how
        many. The rest, if any, go at the next pass."""
        cutoff = datetime.now(UTC) - timedelta(days=self._settings.retention_days)
        expired = 0
        while expired < RETENTION_JOBS_PER_PASS:
            deleted = await self._repo.delete_expired_jobs(
                finished_before=cutoff, max_jobs=RETENTION_JOBS_PER_CALL
            )
            expired += len(deleted)
            if len(deleted) < RETENTION_JOBS_PER_CALL:
                break
        if expired:
            logger.info(
                "deleted %d job(s) completed before %s (CI_RETENTION_DAYS=%g)",
                expired,
                cutoff.isoformat(timespec="seconds"),
                self._settings.retention_days,
            )
        return expired

    async def _fail_vanished(self, job: Job) -> None:
        logger.warning("job %s: container %s vanished", job.id, (job.container_id or "")[:12])
        log = await JobLog.resume(
            repo=self._repo,
            job=job,
            max_bytes=int(self._settings.max_log_mb * 1024 * 1024),
            fenced=False,
        )
        await log.note(f"error: {VANISHED}")
        if await self._repo.complete_job(job.id, conclusion=JobConclusion.ERROR, error=VANISHED):
            self._metrics.job_finished(job, conclusion=JobConclusion.ERROR, at=datetime.now(UTC))
        await self._repo.delete_archive(job.id)

    def _forward_cancels(self, jobs: Iterable[Job]) -> None:
        for job in jobs:
            worker = self._workers.get(job.id)
            if worker is not None and job.cancel_requested:
                worker.request_cancel()

    async def _remove_orphans(self, containers: list[ContainerInfo]) -> None:
        in_use = {w.container_id for w in self._workers.values() if w.container_id}
        for container in containers:
            if container.id in in_use:
                continue
            if container.role == ROLE_JOB and container.job_id in self._workers:
                continue
            if container.role in _DEPENDENCY_ROLES and self._images.busy:
                continue
            if container.role == ROLE_WARM and (
                container.id in self._warm.holds or self._warm.busy
            ):
                continue
            logger.info(
                "removing container %s (job %s): no job of this installation needs it",
                container.id[:12],
                container.job_id,
            )
            self._background.spawn(
                self._runtime.remove(container.id), what=f"remove orphan {container.id[:12]}"
            )

    async def _dispatch(self, jobs: list[Job]) -> None:
        waiting = [job for job in dispatch_order(jobs) if job.id not in self._workers]
        free = self._settings.max_parallel_jobs - len(self._workers)
        # Decided before the first await: a worker started below may claim the warm
        # container (and ask for a replacement) while later jobs are still being marked.
        self._warm.backlogged = len(waiting) > free  # queued jobs wait for a slot
        for job in waiting:
            if not self._engine_answers:
                return  # another engine's controller takes them
            if self._stopping or len(self._workers) >= self._settings.max_parallel_jobs:
                return
            if not await self._repo.mark_running(job.id, container_id=None, engine=self._engine):
                continue  # cancelled, or claimed by another engine, since we listed it
            self._metrics.job_started(job, at=datetime.now(UTC))
            started = job.model_copy(
                update={
                    "status": JobStatus.RUNNING,
                    "started_at": datetime.now(UTC),
                    "attempts": 1,
                    "engine": self._engine,
                }
            )
            logger.info("job %s: dispatching", job.id)
            self._start_worker(started, None)

    def _start_worker(self, job: Job, container: ContainerInfo | None) -> None:
        worker = JobWorker(job=job, env=self._env)
        task: asyncio.Task[object] = asyncio.create_task(
            worker.run(container=container), name=f"job {job.id}"
        )
        self._workers[job.id] = worker
        self._tasks[job.id] = task
        task.add_done_callback(lambda done: self._worker_done(job.id, done))
        if job.cancel_requested:
            worker.request_cancel()

    def _worker_done(self, job_id: JobId, task: asyncio.Task[object]) -> None:
        self._workers.pop(job_id, None)
        self._tasks.pop(job_id, None)
        if not task.cancelled() and (error := task.exception()) is not None:
            if isinstance(error, StorageError):
                self._metrics.queue.repository_errors.inc()
            logger.error(
                "job %s: worker failed (%s); the next reconcile picks it up again",
                job_id,
                error,
                exc_info=error,
            )
        self._wake_ups.wake()  # a slot is free

    async def _safely(self, action: Callable[[], Awaitable[None]]) -> None:
        try:
            await action()
        except Exception as exc:
            if isinstance(exc, StorageError):
                self._metrics.queue.repository_errors.inc()
            logger.exception(
                "reconcile pass failed; retrying within %g s", self._settings.reconcile_interval
            )

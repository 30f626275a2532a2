"""Jobs of an engine that disappeared: ended, or given back to the queue.

Every controller records its engine's heartbeat on each full pass in which the engine
answered. An engine not seen for `CI_ENGINE_LOST_AFTER` seconds is lost: within that grace its
controller (or a standby) may come back and adopt its jobs; after it, any other controller
ends that engine's running jobs as `error` naming the engine, and gives the jobs it had
claimed but not started (no container yet) back to the queue, so nothing it had not started
stays claimed. Each step is compare-and-set, so two controllers sweeping at once do it once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from ci_common.models import DEFAULT_ENGINE, Job, JobConclusion, JobStatus
from ci_common.repository import ControllerRepository
from ci_controller.job_log import JobLog

logger = logging.getLogger(__name__)


def lost_message(engine: str, *, grace: float) -> str:
    return (
        f"the Docker engine {engine!r} was lost: its controller has not been seen for more "
        f"than {grace:g} s (CI_ENGINE_LOST_AFTER); submit the job again"
    )


async def sweep_lost_engines(
    *, repo: ControllerRepository, jobs: list[Job], ours: str, grace: float, max_log_bytes: int
) -> None:
    """End or requeue the running `jobs` of engines other than `ours` that are lost."""
    cutoff = datetime.now(UTC) - timedelta(seconds=grace)
    lost = {e.name for e in await repo.list_engines() if e.last_seen < cutoff} - {ours}
    for job in jobs:
        engine = job.engine or DEFAULT_ENGINE
        if job.status is not JobStatus.RUNNING or engine not in lost:
            continue
        if job.container_id is None and await repo.requeue_job(job.id, engine=engine):
            logger.info("job %s: back to the queue (engine %s was lost)", job.id, engine)
            continue
        message = lost_message(engine, grace=grace)
        log = await JobLog.resume(repo=repo, job=job, max_bytes=max_log_bytes, fenced=False)
        await log.note(f"error: {message}")
        await repo.complete_job(job.id, conclusion=JobConclusion.ERROR, error=message)
        await repo.delete_archive(job.id)
        logger.warning("job %s: %s", job.id, message)

"""Where a queued job stands and why it waits, from the jobs the controller will work on.

The controller starts queued jobs oldest first while fewer than `CI_MAX_PARALLEL_JOBS` run, so
a job's position is one plus the queued jobs submitted before it, and it waits because every
slot is busy. The server reads `CI_MAX_PARALLEL_JOBS` from its own environment: set it the same
for the server as for the controller (with several controllers, their sum) to show true slots.
"""

from __future__ import annotations

from dataclasses import dataclass

from ci_common.models import Job, JobStatus


@dataclass(frozen=True)
class QueuePosition:
    position: int
    """1 for the next job to start."""
    ahead: int
    queued: int
    running: int
    slots: int


def queue_position(job: Job, active: list[Job], *, slots: int) -> QueuePosition | None:
    """`job`'s place among `active` (queued and running jobs, oldest first); None unless it
    is queued."""
    if job.status is not JobStatus.QUEUED:
        return None
    queued = [other for other in active if other.status is JobStatus.QUEUED]
    running = sum(1 for other in active if other.status is JobStatus.RUNNING)
    ids = [other.id for other in queued]
    ahead = ids.index(job.id) if job.id in ids else len(ids)
    return QueuePosition(
        position=ahead + 1,
        ahead=ahead,
        queued=max(len(queued), ahead + 1),
        running=running,
        slots=slots,
    )

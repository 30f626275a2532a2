"""Where a queued job stands: oldest first, behind every queued job submitted before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ci_common.models import Job, JobId, JobStatus, UserId
from ci_server.ui.queue import queue_position

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def job(n: int, status: JobStatus) -> Job:
    return Job(
        id=JobId(f"job-{n}"), user_id=UserId("user-1"), status=status, conclusion=None,
        exit_code=None, error=None, created_at=T0 + timedelta(seconds=n), started_at=None,
        finished_at=None, cancel_requested=False, container_id=None, log_cursor=None,
        log_bytes=0, last_log_seq=0, archive_bytes=0,
    )  # fmt: skip


def test_a_queued_job_counts_the_queued_jobs_before_it_and_the_busy_slots() -> None:
    active = [
        job(1, JobStatus.RUNNING),
        job(2, JobStatus.RUNNING),
        job(3, JobStatus.QUEUED),
        job(4, JobStatus.QUEUED),
        job(5, JobStatus.QUEUED),
    ]
    place = queue_position(active[3], active, slots=2)
    assert place is not None
    assert (place.position, place.ahead, place.queued, place.running, place.slots) == (
        2, 1, 3, 2, 2,
    )  # fmt: skip
    assert queue_position(active[0], active, slots=2) is None

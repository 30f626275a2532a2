"""Which queued jobs run next: oldest first, but fair across users.

Each queued job gets a turn number: how many jobs its owner has running plus how many of the
owner's queued jobs are older. Jobs run in order of turn, then age. So a user with ten jobs
queued takes one slot per round while another user's single job waits at most one round, and
with one user it is plain first-in, first-out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ci_common.models import Job, JobStatus, UserId


def dispatch_order(active: Iterable[Job]) -> list[Job]:
    """The queued jobs among `active` (oldest first), in the order they should start."""
    jobs = sorted(active, key=lambda job: (job.created_at, job.id))
    turns: Counter[UserId] = Counter(job.user_id for job in jobs if job.status is JobStatus.RUNNING)
    ranked: list[tuple[int, int, Job]] = []
    for age, job in enumerate(jobs):
        if job.status is not JobStatus.QUEUED or job.cancel_requested:
            continue
        ranked.append((turns[job.user_id], age, job))
        turns[job.user_id] += 1
    ranked.sort(key=lambda entry: (entry[0], entry[1]))
    return [job for _, _, job in ranked]

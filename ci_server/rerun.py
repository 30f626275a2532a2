"""A submit that reruns the failures of an earlier job (form field `rerun_failed_of`).

The server resolves the earlier job (the caller's own, else 404 like any foreign job) to the
node ids that failed or errored in it and stores them with the new job; the controller hands
them to our pytest plugin, which deselects every other test of the new upload. Nothing to
rerun (no failures recorded) is refused with 422 before a job exists.
"""

from __future__ import annotations

import dataclasses
import uuid

from ci_common.errors import InvalidJobOptionsError, JobNotFoundError
from ci_common.job_options import JobOptions
from ci_common.models import JobId, User
from ci_common.repository import Repository


async def with_rerun(
    options: JobOptions, *, rerun_failed_of: str | None, user: User, repo: Repository
) -> JobOptions:
    """`options` with the failed node ids of `rerun_failed_of`, or unchanged without it."""
    if rerun_failed_of is None or not rerun_failed_of.strip():
        return options
    try:
        earlier_id = JobId(str(uuid.UUID(rerun_failed_of.strip())))
    except ValueError:
        raise InvalidJobOptionsError(
            f"rerun_failed_of: {rerun_failed_of!r} is not a job id; give the UUID of one of "
            "your jobs that had failures"
        ) from None
    earlier = await repo.get_job(earlier_id)
    if earlier.user_id != user.id:
        raise JobNotFoundError(earlier_id)
    failed = await repo.failed_node_ids(earlier_id)
    if not failed:
        raise InvalidJobOptionsError(
            f"rerun_failed_of: job {earlier_id} has no failed tests recorded, so there is "
            "nothing to rerun; submit without it to run all tests"
        )
    return dataclasses.replace(options, rerun_of=earlier_id, rerun_node_ids=tuple(failed))

"""Jobs as the dashboard shows them: the API's `JobView`, with the test counts the API gives.

A job's counts are derived from its stored results (`test_counts`), not kept on the job row, so
a page that lists jobs reads them for all its jobs in one query, as `GET /jobs` does.
"""

from __future__ import annotations

from collections.abc import Sequence

from ci_common.api import JobView
from ci_common.models import Job
from ci_common.test_results import TestResultRepository


async def job_views(repo: TestResultRepository, jobs: Sequence[Job]) -> list[JobView]:
    """`jobs` as views with their current test counts, in one query."""
    counts = await repo.test_counts([job.id for job in jobs])
    return [JobView.from_job(job, counts.get(job.id)) for job in jobs]

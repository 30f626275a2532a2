"""The job page's test results: the section for an outcome filter and the rows after an index,
both server-rendered fragments that the page's script (`tests.js`) fetches.

The section is what the page includes when it is first rendered (`tests_context`); the script
fetches it again when the user changes the filter, so the log keeps streaming. The rows route
answers "the results of these outcomes after index N", rendered, and says in
`X-More-Results` whether more follow beyond its `limit`. Ownership is `find_job`'s, as on
every dashboard page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ci_common.models import Job, JobStatus
from ci_common.test_results import TestOutcome, TestResultRepository
from ci_server.dependencies import RepoDep, find_job
from ci_server.ui.access import PageSessionDep
from ci_server.ui.rendering import render, render_with
from ci_server.ui.results import (
    MAX_PAGE_ROWS,
    OUTCOME_SYMBOLS,
    OutcomeFilter,
    result_groups,
    result_page,
)

router = APIRouter(prefix="/ui/jobs/{job_id}/tests", include_in_schema=False)


async def tests_context(
    repo: TestResultRepository, job: Job, chosen: OutcomeFilter
) -> dict[str, object]:
    """What `_job_tests.html` renders: the filter and the first page of each group."""
    return {
        "job_id": job.id,
        "filters": list(OutcomeFilter),
        "chosen": chosen,
        "groups": await result_groups(repo, job.id, chosen),
        "reported": job.tests_reported,
        "running": job.status is not JobStatus.COMPLETED,
        "symbols": OUTCOME_SYMBOLS,
    }


@router.get("")
async def results_section(
    request: Request,
    job_id: str,
    session: PageSessionDep,
    repo: RepoDep,
    outcome: Annotated[str | None, Query()] = None,
) -> Response:
    job = await find_job(repo, job_id, user=session.user)
    context = await tests_context(repo, job, OutcomeFilter.parse(outcome))
    return render_with(request, "_job_tests.html", context)


@router.get("/rows")
async def result_rows(
    request: Request,
    job_id: str,
    session: PageSessionDep,
    repo: RepoDep,
    outcome: Annotated[list[TestOutcome], Query(min_length=1)],
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=0, le=MAX_PAGE_ROWS)] = 100,
) -> Response:
    job = await find_job(repo, job_id, user=session.user)
    results, more = await result_page(repo, job.id, outcomes=outcome, after=after, limit=limit)
    response = render(request, "_test_rows.html", results=results, symbols=OUTCOME_SYMBOLS)
    response.headers["X-More-Results"] = "true" if more else "false"
    return response

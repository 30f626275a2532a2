"""`/jobs/{id}/tests` (one job's per-test results) and `/tests/flaky` (the caller's flaky tests)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ci_common.api import FlakyTestView, TestResultsPage, TestResultView
from ci_common.test_results import TestOutcome
from ci_server.dependencies import CurrentUser, OwnedJob, RepoDep
from ci_server.errors import ERROR_RESPONSES

router = APIRouter(tags=["tests"], responses=ERROR_RESPONSES)

MAX_PAGE = 1000


@router.get("/jobs/{job_id}/tests", summary="A job's per-test results, in the order reported")
async def list_tests(
    job: OwnedJob,
    repo: RepoDep,
    outcome: Annotated[
        list[TestOutcome] | None,
        Query(description="only these outcomes (repeat for several, e.g. failed and error)"),
    ] = None,
    after: Annotated[
        int, Query(ge=0, le=2**62, description="results numbered above this (`next_after`)")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="at most this many")] = 100,
) -> TestResultsPage:
    """Current while the job runs; page with `after=next_after` until `next_after` is null."""
    results = await repo.list_test_results(
        job.id, outcomes=tuple(outcome or ()), after_index=after, limit=limit + 1
    )
    more = len(results) > limit
    page = results[:limit]
    return TestResultsPage(
        results=[TestResultView.from_result(result) for result in page],
        next_after=page[-1].index if more else None,
    )


@router.get("/tests/flaky", summary="Your tests that passed and failed on the same content")
async def list_flaky(
    user: CurrentUser,
    repo: RepoDep,
    project: Annotated[
        str | None, Query(max_length=255, description="only this project's tests")
    ] = None,
) -> list[FlakyTestView]:
    """A test is flaky when jobs with the same content hash (uploaded files, pytest arguments,
    Python version) saw it both pass and fail; most recently seen first."""
    flaky = await repo.flaky_tests(user.id, project=project)
    return [FlakyTestView.from_flaky(test) for test in flaky]

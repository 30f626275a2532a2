"""The user's pages: the jobs list (`/ui/`) and one job (`/ui/jobs/{id}`), each with the
fragments their scripts re-fetch to stay live, and the cancel button's post.

Jobs are found through `find_job`, the API's own ownership check: another user's job is 404
here exactly as it is on `GET /jobs/{id}`.
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from ci_common.api import JobView
from ci_common.models import JobConclusion, JobStatus
from ci_common.repository import Repository
from ci_server.dependencies import HubDep, RepoDep, SettingsDep, find_job
from ci_server.settings import ServerSettings
from ci_server.ui.access import PageSession, PageSessionDep, PostedSessionDep
from ci_server.ui.queue import queue_position
from ci_server.ui.rendering import render, render_with

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/ui", include_in_schema=False)

PAGE_SIZE = 100

StatusFilter = Annotated[JobStatus | None, Query()]
ConclusionFilter = Annotated[JobConclusion | None, Query()]


@router.get("/")
async def jobs_page(
    request: Request,
    session: PageSessionDep,
    repo: RepoDep,
    status: Annotated[str | None, Query()] = None,
    conclusion: Annotated[str | None, Query()] = None,
) -> Response:
    chosen_status = JobStatus(status) if status in set(JobStatus) else None
    chosen_conclusion = JobConclusion(conclusion) if conclusion in set(JobConclusion) else None
    jobs = await repo.list_jobs(
        user_id=session.user.id, status=chosen_status, conclusion=chosen_conclusion, limit=PAGE_SIZE
    )
    query = {
        name: value.value
        for name, value in (("status", chosen_status), ("conclusion", chosen_conclusion))
        if value is not None
    }
    return render(
        request,
        "jobs.html",
        user=session.user,
        csrf=session.csrf,
        nav="jobs",
        jobs=[JobView.from_job(job) for job in jobs],
        statuses=list(JobStatus),
        conclusions=list(JobConclusion),
        status=chosen_status,
        conclusion=chosen_conclusion,
        rows_url="/ui/jobs-rows" + (f"?{urlencode(query)}" if query else ""),
    )


@router.get("/jobs-rows")
async def jobs_rows(
    request: Request,
    session: PageSessionDep,
    repo: RepoDep,
    status: StatusFilter = None,
    conclusion: ConclusionFilter = None,
) -> Response:
    jobs = await repo.list_jobs(
        user_id=session.user.id, status=status, conclusion=conclusion, limit=PAGE_SIZE
    )
    return render(
        request,
        "_jobs_rows.html",
        jobs=[JobView.from_job(job) for job in jobs],
        status=status,
        conclusion=conclusion,
    )


@router.get("/jobs/{job_id}")
async def job_page(
    request: Request, job_id: str, session: PageSessionDep, repo: RepoDep, settings: SettingsDep
) -> Response:
    summary = await _summary_context(job_id, session=session, repo=repo, settings=settings)
    return render_with(
        request,
        "job.html",
        {
            **summary,
            "user": session.user,
            "nav": "jobs",
            "has_artifacts": _has_route(request, "/jobs/{job_id}/artifacts"),
        },
    )


@router.get("/jobs/{job_id}/summary")
async def job_summary(
    request: Request, job_id: str, session: PageSessionDep, repo: RepoDep, settings: SettingsDep
) -> Response:
    summary = await _summary_context(job_id, session=session, repo=repo, settings=settings)
    return render_with(request, "_job_summary.html", summary)


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(
    job_id: str, session: PostedSessionDep, repo: RepoDep, hub: HubDep
) -> Response:
    job = await find_job(repo, job_id, user=session.user)
    await repo.request_cancel(job.id)
    hub.poke()
    if not job.is_terminal:
        logger.info("job %s: cancel requested by user %s in the dashboard", job.id, session.user.id)
    return RedirectResponse(f"/ui/jobs/{job.id}", status_code=303)


async def _summary_context(
    job_id: str, *, session: PageSession, repo: Repository, settings: ServerSettings
) -> dict[str, object]:
    job = await find_job(repo, job_id, user=session.user)
    queue = None
    if job.status is JobStatus.QUEUED:
        active = await repo.list_active_jobs()
        queue = queue_position(job, active, slots=settings.max_parallel_jobs)
    return {
        "job": JobView.from_job(job),
        "queue": queue,
        "csrf": session.csrf,
        "cancel_action": f"/ui/jobs/{job.id}/cancel",
    }


def _has_route(request: Request, path: str) -> bool:
    """Whether this server has an endpoint: the page shows a job's artifacts only where the
    API serves them."""
    return any(getattr(route, "path", None) == path for route in request.app.routes)

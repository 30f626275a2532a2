"""The user's pages: the jobs list (`/ui/`) and one job (`/ui/jobs/{id}`), each with the
fragments their scripts re-fetch to stay live (the job's test results: `result_routes`), and
the cancel button's post.

Jobs are found through `find_job`, the API's own ownership check: another user's job is 404
here exactly as it is on `GET /jobs/{id}`.
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from ci_common.api import ArtifactView
from ci_common.models import Job, JobConclusion, JobStatus
from ci_common.repository import Repository
from ci_server.dependencies import HubDep, RepoDep, SettingsDep, find_job
from ci_server.settings import ServerSettings
from ci_server.ui.access import PageSession, PageSessionDep, PostedSessionDep
from ci_server.ui.job_views import job_views
from ci_server.ui.queue import queue_position
from ci_server.ui.rendering import render, render_with
from ci_server.ui.result_routes import tests_context
from ci_server.ui.results import OutcomeFilter

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
        jobs=await job_views(repo, jobs),
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
        jobs=await job_views(repo, jobs),
        status=status,
        conclusion=conclusion,
    )


@router.get("/jobs/{job_id}")
async def job_page(
    request: Request,
    job_id: str,
    session: PageSessionDep,
    repo: RepoDep,
    settings: SettingsDep,
    outcome: Annotated[str | None, Query()] = None,
) -> Response:
    job = await find_job(repo, job_id, user=session.user)
    summary = await _summary_context(job, session=session, repo=repo, settings=settings)
    return render_with(
        request,
        "job.html",
        {
            **summary,
            **await _artifacts_context(repo, job),
            **await tests_context(repo, job, OutcomeFilter.parse(outcome)),
            "user": session.user,
            "nav": "jobs",
        },
    )


@router.get("/jobs/{job_id}/summary")
async def job_summary(
    request: Request, job_id: str, session: PageSessionDep, repo: RepoDep, settings: SettingsDep
) -> Response:
    job = await find_job(repo, job_id, user=session.user)
    summary = await _summary_context(job, session=session, repo=repo, settings=settings)
    return render_with(request, "_job_summary.html", summary)


@router.get("/jobs/{job_id}/artifacts")
async def job_artifacts(
    request: Request, job_id: str, session: PageSessionDep, repo: RepoDep
) -> Response:
    job = await find_job(repo, job_id, user=session.user)
    return render_with(request, "_job_artifacts.html", await _artifacts_context(repo, job))


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
    job: Job, *, session: PageSession, repo: Repository, settings: ServerSettings
) -> dict[str, object]:
    queue = None
    if job.status is JobStatus.QUEUED:
        active = await repo.list_active_jobs()
        queue = queue_position(job, active, slots=settings.max_parallel_jobs)
    [view] = await job_views(repo, [job])
    return {
        "job": view,
        "queue": queue,
        "csrf": session.csrf,
        "cancel_action": f"/ui/jobs/{job.id}/cancel",
    }


async def _artifacts_context(repo: Repository, job: Job) -> dict[str, object]:
    """The files the job kept (stored once pytest has exited, before the job completes)."""
    artifacts = await repo.list_artifacts(job.id)
    return {
        "artifacts_job": job.id,
        "artifacts": [ArtifactView(path=item.path, size=item.size) for item in artifacts],
        "artifact_patterns": list(job.artifacts),
        "artifacts_final": job.status is JobStatus.COMPLETED,
    }

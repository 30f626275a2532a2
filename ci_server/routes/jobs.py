"""`/jobs`: the caller's jobs, one job, its log (as text or a live stream), cancelling it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import PlainTextResponse, StreamingResponse
from sse_starlette import EventSourceResponse

from ci_common.api import JobView
from ci_common.errors import InvalidInputError
from ci_common.models import Job, JobConclusion, JobStatus
from ci_common.repository import JobRepository
from ci_server.dependencies import (
    CurrentUser,
    HubDep,
    OwnedJob,
    RepoDep,
    RuntimeDep,
    SettingsDep,
)
from ci_server.errors import ERROR_RESPONSES, error_response
from ci_server.log_pages import log_pages, log_text
from ci_server.routes.sse import SSE_RESPONSE, job_event_response

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=ERROR_RESPONSES)

MAX_SEQ = 2**62  # SQLite integers are 64-bit; anything larger is no seq we issued


@router.get("", summary="List your jobs, newest first")
async def list_jobs(
    user: CurrentUser,
    repo: RepoDep,
    status: Annotated[JobStatus | None, Query(description="only jobs in this status")] = None,
    project: Annotated[
        str | None, Query(max_length=255, description="only jobs of this project (its name)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="at most this many jobs")] = 50,
    conclusion: Annotated[
        JobConclusion | None, Query(description="only completed jobs that ended this way")
    ] = None,
) -> list[JobView]:
    jobs = await repo.list_jobs(
        user_id=user.id, status=status, project=project, limit=limit, conclusion=conclusion
    )
    counts = await repo.test_counts([job.id for job in jobs])
    return [JobView.from_job(job, counts.get(job.id)) for job in jobs]


@router.get("/{job_id}", summary="One of your jobs")
async def get_job(job: OwnedJob, repo: RepoDep) -> JobView:
    counts = await repo.test_counts([job.id])
    return JobView.from_job(job, counts.get(job.id))


@router.get(
    "/{job_id}/stream",
    summary="Follow a job's log and status as Server-Sent Events",
    response_class=EventSourceResponse,
    responses={
        **SSE_RESPONSE,
        400: error_response("`Last-Event-ID` is not a sequence number"),
    },
)
async def stream_job(
    job: OwnedJob,
    repo: RepoDep,
    hub: HubDep,
    settings: SettingsDep,
    from_beginning: Annotated[
        bool, Query(description="replay the whole log first (default: only new output)")
    ] = False,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description=(
                "resume exactly after this log `seq`: the last SSE `id:` received, from a log "
                "message or the stream's opening status event (wins over from_beginning)"
            ),
        ),
    ] = None,
) -> EventSourceResponse:
    if last_event_id is not None and last_event_id.strip():
        after_seq = _parse_last_event_id(last_event_id)
    elif from_beginning:
        after_seq = 0
    else:
        after_seq = job.last_log_seq
    return job_event_response(repo=repo, hub=hub, settings=settings, job=job, after_seq=after_seq)


@router.get(
    "/{job_id}/logs",
    summary="The job's log so far, as plain text",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def get_logs(job: OwnedJob, repo: RepoDep) -> StreamingResponse:
    return StreamingResponse(_log_text(repo, job), media_type="text/plain; charset=utf-8")


@router.post("/{job_id}/cancel", summary="Request cancellation (idempotent)")
async def cancel_job(
    job: OwnedJob, user: CurrentUser, repo: RepoDep, hub: HubDep, runtime: RuntimeDep
) -> JobView:
    """A queued job is cancelled at once; a running one is stopped by the controller; a
    completed one is returned unchanged."""
    cancelled = await repo.request_cancel(job.id)
    runtime.metrics.cancel_answered(before=job, after=cancelled)
    hub.poke()
    if not job.is_terminal:
        logger.info("job %s: cancel requested by user %s", job.id, user.id)
    counts = await repo.test_counts([job.id])
    return JobView.from_job(cancelled, counts.get(job.id))


def _parse_last_event_id(value: str) -> int:
    try:
        seq = int(value.strip())
    except ValueError:
        seq = -1
    if not 0 <= seq <= MAX_SEQ:
        raise InvalidInputError(
            f"Last-Event-ID {value!r} is not a log sequence number; send the `id:` of the "
            "last log message you received, or leave the header out"
        )
    return seq


async def _log_text(repo: JobRepository, job: Job) -> AsyncIterator[bytes]:
    """The log as stored when the request came, a page at a time, each read once the client
    has taken the one before."""
    pages = log_pages(repo, job.id, after_seq=0, up_to=job.last_log_seq, encode=log_text)
    async for _, page in pages:
        yield page

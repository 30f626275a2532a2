"""`/submit*`: accept a project zip, validate it, store the job, and answer three ways.

`/submit` streams the whole job, `/submit-stream` does the same after a `job_id` event, and
`/submit-async` returns 202 at once. Nothing is stored unless the archive passed every check.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, File, UploadFile
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from ci_common.api import SubmitAccepted
from ci_common.models import Job, User
from ci_common.repository import JobRepository
from ci_server.dependencies import CurrentUser, HubDep, RepoDep, SettingsDep
from ci_server.errors import ERROR_RESPONSES, UPLOAD_ERROR_RESPONSES
from ci_server.routes.sse import SSE_RESPONSE, job_event_response
from ci_server.settings import ServerSettings
from ci_server.upload_validation import UploadLimits, validate_archive

logger = logging.getLogger(__name__)

router = APIRouter(tags=["submit"], responses={**ERROR_RESPONSES, **UPLOAD_ERROR_RESPONSES})

ArchiveFile = Annotated[
    UploadFile,
    File(
        description="a zip of the project root, holding requirements.txt or pyproject.toml "
        "at its top level"
    ),
]


def upload_limits(settings: ServerSettings) -> UploadLimits:
    return UploadLimits(
        max_archive_bytes=settings.max_upload_bytes,
        max_unpacked_bytes=settings.max_unpacked_bytes,
        max_entries=settings.max_upload_entries,
    )


async def accept_upload(
    *, file: UploadFile, user: User, repo: JobRepository, settings: ServerSettings
) -> Job:
    """Validate the spooled upload and store it as a new queued job."""
    limits = upload_limits(settings)
    size = file.size if file.size is not None else _spooled_size(file)
    await run_in_threadpool(validate_archive, file.file, size=size, limits=limits)
    # The spooled file itself, read in blocks: the upload is never whole in memory.
    job = await repo.create_job(user_id=user.id, archive=file.file)
    logger.info("job %s: submitted by user %s (%d bytes)", job.id, user.id, size)
    return job


def _spooled_size(file: UploadFile) -> int:
    file.file.seek(0, 2)
    size = file.file.tell()
    file.file.seek(0)
    return size


@router.post(
    "/submit",
    summary="Submit a project and stream the whole job",
    response_class=EventSourceResponse,
    responses=SSE_RESPONSE,
)
async def submit(
    file: ArchiveFile, user: CurrentUser, repo: RepoDep, hub: HubDep, settings: SettingsDep
) -> EventSourceResponse:
    job = await accept_upload(file=file, user=user, repo=repo, settings=settings)
    return job_event_response(repo=repo, hub=hub, settings=settings, job=job, after_seq=0)


@router.post(
    "/submit-stream",
    summary="Submit a project and stream the job, announcing its id first",
    response_class=EventSourceResponse,
    responses=SSE_RESPONSE,
)
async def submit_stream(
    file: ArchiveFile, user: CurrentUser, repo: RepoDep, hub: HubDep, settings: SettingsDep
) -> EventSourceResponse:
    job = await accept_upload(file=file, user=user, repo=repo, settings=settings)
    return job_event_response(
        repo=repo, hub=hub, settings=settings, job=job, after_seq=0, announce=True
    )


@router.post("/submit-async", status_code=202, summary="Submit a project; returns at once")
async def submit_async(
    file: ArchiveFile, user: CurrentUser, repo: RepoDep, settings: SettingsDep
) -> SubmitAccepted:
    job = await accept_upload(file=file, user=user, repo=repo, settings=settings)
    return SubmitAccepted(job_id=job.id, status=job.status)

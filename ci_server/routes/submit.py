"""`/submit*`: accept a project zip, validate it, store the job, and answer three ways.

`/submit` streams the whole job, `/submit-stream` does the same after a `job_id` event, and
`/submit-async` returns 202 at once. Beside `file`, each takes the same optional form fields:
pytest arguments, environment, where the files came from and the Python version, checked by
`ci_common.job_options` (422); the version is then chosen (`ci_server.python_choice`), and
one that nobody offers is a 422 listing those there are. Nothing is stored unless the fields
and the archive passed every check.
The caller is authenticated before a byte of the body is read (`AcceptedJob` depends on
`CurrentUser`; see `ci_server.upload_intake`).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ci_common.api import SubmitAccepted
from ci_common.job_options import parse_job_options
from ci_common.models import Job
from ci_server.dependencies import CurrentUser, HubDep, RepoDep, SettingsDep, UploadSlotsDep
from ci_server.errors import ERROR_RESPONSES, UPLOAD_ERROR_RESPONSES
from ci_server.python_choice import with_python
from ci_server.rerun import with_rerun
from ci_server.routes.sse import SSE_RESPONSE, job_event_response
from ci_server.settings import ServerSettings
from ci_server.upload_intake import ARCHIVE_REQUEST_BODY, received_upload
from ci_server.upload_validation import UploadLimits, validate_archive

logger = logging.getLogger(__name__)

router = APIRouter(tags=["submit"], responses={**ERROR_RESPONSES, **UPLOAD_ERROR_RESPONSES})


def upload_limits(settings: ServerSettings) -> UploadLimits:
    return UploadLimits(
        max_archive_bytes=settings.max_upload_bytes,
        max_unpacked_bytes=settings.max_unpacked_bytes,
        max_entries=settings.max_upload_entries,
    )


async def accepted_job(
    request: Request,
    user: CurrentUser,
    repo: RepoDep,
    settings: SettingsDep,
    uploads: UploadSlotsDep,
) -> Job:
    """The caller's upload, received, validated and stored as a new queued job.

    Dependencies resolve before this runs, so the caller is known (from the headers alone)
    before the body is read; then an upload slot is taken, or the answer is 503 at once."""
    with uploads.take():
        async with received_upload(request, time_limit=settings.upload_timeout) as upload:
            fields = upload.fields
            options = parse_job_options(
                pytest_args=fields.get("pytest_args"),
                env=fields.get("env"),
                project=fields.get("project"),
                git=fields.get("git"),
                python=fields.get("python"),
                extras=fields.get("extras"),
                groups=fields.get("groups"),
                artifacts=fields.get("artifacts"),
            )
            options = await with_rerun(
                options, rerun_failed_of=fields.get("rerun_failed_of"), user=user, repo=repo
            )
            file = upload.file
            size = file.size if file.size is not None else _spooled_size(file)
            limits = upload_limits(settings)
            await run_in_threadpool(validate_archive, file.file, size=size, limits=limits)
            options = await with_python(options, archive=file.file, repo=repo)
            async with uploads.storing:  # one archive written at a time
                # The spooled file itself, read in blocks: never whole in memory.
                job = await repo.create_job(user_id=user.id, archive=file.file, options=options)
    logger.info("job %s: submitted by user %s (%d bytes)", job.id, user.id, size)
    return job


AcceptedJob = Annotated[Job, Depends(accepted_job)]


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
    openapi_extra=ARCHIVE_REQUEST_BODY,
)
async def submit(
    job: AcceptedJob, repo: RepoDep, hub: HubDep, settings: SettingsDep
) -> EventSourceResponse:
    return job_event_response(repo=repo, hub=hub, settings=settings, job=job, after_seq=0)


@router.post(
    "/submit-stream",
    summary="Submit a project and stream the job, announcing its id first",
    response_class=EventSourceResponse,
    responses=SSE_RESPONSE,
    openapi_extra=ARCHIVE_REQUEST_BODY,
)
async def submit_stream(
    job: AcceptedJob, repo: RepoDep, hub: HubDep, settings: SettingsDep
) -> EventSourceResponse:
    return job_event_response(
        repo=repo, hub=hub, settings=settings, job=job, after_seq=0, announce=True
    )


@router.post(
    "/submit-async",
    status_code=202,
    summary="Submit a project; returns at once",
    openapi_extra=ARCHIVE_REQUEST_BODY,
)
async def submit_async(job: AcceptedJob) -> SubmitAccepted:
    return SubmitAccepted(job_id=job.id, status=job.status)

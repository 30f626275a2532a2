"""What endpoints ask for, as `Annotated` aliases: the repository, the caller, their job.

Authentication and ownership live here once, so no endpoint can forget them: an endpoint that
takes `OwnedJob` gets the caller's job or the request ends in 404, whether the id is malformed,
unknown or another user's (the three are indistinguishable on purpose).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ci_common.auth import authenticate
from ci_common.errors import AuthenticationError, ConflictError, JobNotFoundError, StorageError
from ci_common.models import Job, JobId, User
from ci_common.repository import Repository
from ci_server.log_hub import LogHub
from ci_server.settings import ServerSettings
from ci_server.upload_intake import UploadSlots


@dataclass
class ServerRuntime:
    """What the lifespan opens and every request uses; one per process, on `app.state`."""

    settings: ServerSettings
    uploads: UploadSlots
    repo: Repository | None = None
    hub: LogHub | None = None


def get_runtime(request: Request) -> ServerRuntime:
    runtime = request.app.state.runtime
    assert isinstance(runtime, ServerRuntime)
    return runtime


RuntimeDep = Annotated[ServerRuntime, Depends(get_runtime)]


def get_settings(runtime: RuntimeDep) -> ServerSettings:
    return runtime.settings


def get_repo(runtime: RuntimeDep) -> Repository:
    if runtime.repo is None:
        raise StorageError("the server has not opened its database yet; retry in a moment")
    return runtime.repo


def get_hub(runtime: RuntimeDep) -> LogHub:
    if runtime.hub is None:
        raise StorageError("the server is not streaming logs yet; retry in a moment")
    return runtime.hub


def get_upload_slots(runtime: RuntimeDep) -> UploadSlots:
    return runtime.uploads


SettingsDep = Annotated[ServerSettings, Depends(get_settings)]
RepoDep = Annotated[Repository, Depends(get_repo)]
HubDep = Annotated[LogHub, Depends(get_hub)]
UploadSlotsDep = Annotated[UploadSlots, Depends(get_upload_slots)]

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `ci-admin key create`, sent as `Authorization: Bearer ci_…`.",
)


async def get_current_user(
    request: Request,
    repo: RepoDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> User:
    """The active user owning the request's API key, or 401 saying what is wrong with it."""
    header = request.headers.get("authorization")
    if header is None or not header.strip():
        raise AuthenticationError(
            "missing API key: send `Authorization: Bearer <key>` (the `ci` command reads "
            "CI_API_KEY); ask an admin for a key"
        )
    scheme, _, secret = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise AuthenticationError(
            "malformed Authorization header: expected `Authorization: Bearer <api key>`"
        )
    return await authenticate(repo, secret.strip())


CurrentUser = Annotated[User, Depends(get_current_user)]


MIN_JOB_ID_PREFIX = 8
_JOB_ID_PREFIX = re.compile(r"^[0-9a-f][0-9a-f-]*$")


async def get_owned_job(
    job_id: Annotated[
        str,
        Path(
            description="the job's UUID, as `ci submit` printed it, or a prefix of it of at "
            f"least {MIN_JOB_ID_PREFIX} characters that only one of your jobs has (409 if more)"
        ),
    ],
    user: CurrentUser,
    repo: RepoDep,
) -> Job:
    """The caller's job; 404 for a malformed, unknown or foreign id alike. A unique prefix is
    resolved over all of the caller's jobs (never another user's, so it reveals nothing)."""
    try:
        normalised = JobId(str(uuid.UUID(job_id)))
    except ValueError:
        normalised = await _job_id_from_prefix(repo, user, job_id.strip().lower())
    job = await repo.get_job(normalised)
    if job.user_id != user.id:
        raise JobNotFoundError(job_id)
    return job


async def _job_id_from_prefix(repo: Repository, user: User, prefix: str) -> JobId:
    if len(prefix) < MIN_JOB_ID_PREFIX or not _JOB_ID_PREFIX.match(prefix):
        raise JobNotFoundError(prefix)
    found = await repo.find_job_ids(user_id=user.id, prefix=prefix, limit=2)
    if not found:
        raise JobNotFoundError(prefix)
    if len(found) > 1:
        raise ConflictError(
            f"job id prefix {prefix} is ambiguous: more than one of your jobs starts with it; "
            "give more characters or the full id"
        )
    return found[0]


OwnedJob = Annotated[Job, Depends(get_owned_job)]

"""What endpoints ask for, as `Annotated` aliases: the repository, the caller, their job.

Authentication and ownership live here once, so no endpoint can forget them: an endpoint that
takes `OwnedJob` gets the caller's job or the request ends in 404, whether the id is malformed,
unknown or another user's (the three are indistinguishable on purpose).

The caller is the owner of the request's `Authorization: Bearer` key or, without that header,
of the dashboard's session cookie (`ci_server.sessions`): the dashboard's scripts call the same
API as `ci` does, under the same isolation. A cookie-authenticated request that could change
something (any method but GET/HEAD) must also carry the session's `X-CSRF-Token`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ci_common.auth import authenticate
from ci_common.errors import AuthenticationError, ConflictError, JobNotFoundError, StorageError
from ci_common.models import Job, JobId, User
from ci_common.repository import Repository
from ci_server.log_hub import LogHub
from ci_server.metrics import ServerMetrics
from ci_server.sessions import CSRF_HEADER, SESSION_COOKIE, SessionClaims, SessionSigner
from ci_server.settings import ServerSettings
from ci_server.signin_throttle import SignInThrottle
from ci_server.upload_intake import UploadSlots


@dataclass
class ServerRuntime:
    """What the lifespan opens and every request uses; one per process, on `app.state`."""

    settings: ServerSettings
    uploads: UploadSlots
    repo: Repository | None = None
    hub: LogHub | None = None
    sessions: SessionSigner | None = None
    signin_throttle: SignInThrottle = field(default_factory=SignInThrottle)
    metrics: ServerMetrics = field(default_factory=ServerMetrics)


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


def get_sessions(runtime: RuntimeDep) -> SessionSigner:
    if runtime.sessions is None:
        raise StorageError("the server has not opened its database yet; retry in a moment")
    return runtime.sessions


def get_upload_slots(runtime: RuntimeDep) -> UploadSlots:
    return runtime.uploads


SettingsDep = Annotated[ServerSettings, Depends(get_settings)]
RepoDep = Annotated[Repository, Depends(get_repo)]
HubDep = Annotated[LogHub, Depends(get_hub)]
UploadSlotsDep = Annotated[UploadSlots, Depends(get_upload_slots)]
SessionsDep = Annotated[SessionSigner, Depends(get_sessions)]

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
    if (header is None or not header.strip()) and SESSION_COOKIE in request.cookies:
        return await _cookie_user(request, repo)
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

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _cookie_user(request: Request, repo: Repository) -> User:
    """The dashboard session's user, for a request without an Authorization header; one that
    could change something must carry the session's CSRF token as a header."""
    sessions = get_sessions(get_runtime(request))
    session = await session_user(request, repo, sessions)
    if session is None:
        raise AuthenticationError("your dashboard session has ended; sign in again at /ui/")
    user, claims = session
    if request.method not in SAFE_METHODS and not sessions.csrf_ok(
        claims, request.headers.get(CSRF_HEADER)
    ):
        raise AuthenticationError(
            f"a request with the session cookie that changes something needs the "
            f"{CSRF_HEADER} header of its page; reload the page"
        )
    return user


async def session_user(
    request: Request, repo: Repository, sessions: SessionSigner
) -> tuple[User, SessionClaims] | None:
    """The user of the request's session cookie while its key is usable and the user active;
    None for no cookie, a forged or expired one, a revoked key or a deactivated user."""
    cookie = request.cookies.get(SESSION_COOKIE)
    claims = sessions.verify(cookie) if cookie else None
    if claims is None:
        return None
    keys = await repo.list_api_keys(user_id=claims.user_id)
    key = next((key for key in keys if key.id == claims.key_id), None)
    if key is None or not key.is_usable(datetime.now(UTC)):
        return None
    user = await repo.get_user(claims.user_id)
    return (user, claims) if user.active else None


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
    return await find_job(repo, job_id, user=user)


async def find_job(repo: Repository, job_id: str, *, user: User) -> Job:
    """`user`'s job `job_id` (a UUID or a unique prefix of one of theirs); 404 for a malformed,
    unknown or foreign id alike."""
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


async def find_any_job(repo: Repository, job_id: str) -> Job:
    """Any user's job by id (for admins); 404 for a malformed or unknown id."""
    try:
        normalised = JobId(str(uuid.UUID(job_id)))
    except ValueError:
        raise JobNotFoundError(job_id) from None
    return await repo.get_job(normalised)


OwnedJob = Annotated[Job, Depends(get_owned_job)]

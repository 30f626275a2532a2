"""The admin pages: every user's jobs with the queue and the running slots, cancelling any
job, and users with their API keys (create, revoke, deactivate).

Only users with the admin flag (`ci-admin user set-admin ID`) reach them; everyone else gets
404, as for a page that does not exist. Every action is a form post with the session's CSRF
token that redirects back (post/redirect/get), so a reload never repeats it; a new key is the
one exception: it is shown once, on the answer to its post, and never again.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from ci_common.auth import generate_api_key
from ci_common.errors import ConflictError, InvalidInputError, UserNotFoundError
from ci_common.models import ApiKeyId, Job, JobStatus, User, UserId
from ci_common.repository import Repository
from ci_server.dependencies import HubDep, RepoDep, SettingsDep, find_any_job
from ci_server.ui.access import AdminSessionDep, PageNotFoundError, PageSession, PostedAdminDep
from ci_server.ui.job_views import job_views
from ci_server.ui.rendering import render, render_with

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/ui/admin", include_in_schema=False)

RECENT_JOBS = 100


def parse_user_id(text: str) -> UserId:
    """A user id from a URL (the full UUID, as the pages link it); 404 for one that cannot be.
    Ids are parsed here only, so a change of their form touches one place."""
    canonical = _canonical_uuid(text)
    if canonical is None:
        raise UserNotFoundError(text)
    return UserId(canonical)


def parse_key_id(text: str) -> ApiKeyId:
    """An API key id from a URL (the full UUID); 404 for one that cannot be."""
    canonical = _canonical_uuid(text)
    if canonical is None:
        raise PageNotFoundError(f"API key {text} not found")
    return ApiKeyId(canonical)


def _canonical_uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


async def _queue_context(
    repo: Repository, *, slots: int, session: PageSession
) -> dict[str, object]:
    active = await repo.list_active_jobs()
    recent = await repo.list_jobs(limit=RECENT_JOBS)
    active_ids = {job.id for job in active}
    # Queued and running first (newest first), then the rest of the recent ones.
    jobs: list[Job] = [
        *sorted(active, key=lambda job: job.created_at, reverse=True),
        *(job for job in recent if job.id not in active_ids),
    ]
    users = {user.id: user for user in await repo.list_users()}
    return {
        "jobs": await job_views(repo, jobs),
        "owners": {job.id: _owner(users.get(job.user_id)) for job in jobs},
        "running": [job for job in active if job.status is JobStatus.RUNNING],
        "queued": [job for job in active if job.status is JobStatus.QUEUED],
        "slots": slots,
        "csrf": session.csrf,
    }


def _owner(user: User | None) -> str:
    return "?" if user is None else user.email


@router.get("")
async def admin_page(
    request: Request,
    session: AdminSessionDep,
    repo: RepoDep,
    settings: SettingsDep,
    notice: str | None = None,
) -> Response:
    now = datetime.now(UTC)
    keys_by_user: dict[UserId, list[dict[str, object]]] = {}
    for key in await repo.list_api_keys():
        keys_by_user.setdefault(key.user_id, []).append(
            {**key.model_dump(), "state": key.state(now)}
        )
    queue = await _queue_context(repo, slots=settings.max_parallel_jobs, session=session)
    return render_with(
        request,
        "admin.html",
        {
            **queue,
            "user": session.user,
            "nav": "admin",
            "users": await repo.list_users(),
            "keys_by_user": keys_by_user,
            "notice": notice,
        },
    )


@router.get("/queue")
async def admin_queue(
    request: Request, session: AdminSessionDep, repo: RepoDep, settings: SettingsDep
) -> Response:
    queue = await _queue_context(repo, slots=settings.max_parallel_jobs, session=session)
    return render_with(request, "_admin_queue.html", queue)


@router.post("/jobs/{job_id}/cancel")
async def cancel_any_job(
    job_id: str, session: PostedAdminDep, repo: RepoDep, hub: HubDep
) -> Response:
    job = await find_any_job(repo, job_id)
    await repo.request_cancel(job.id)
    hub.poke()
    logger.info("job %s: cancel requested by admin %s", job.id, session.user.id)
    return _back(f"Cancel requested for job {job.id[:8]}.")


@router.post("/users")
async def create_user(
    session: PostedAdminDep,
    repo: RepoDep,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    email: Annotated[str, Form(min_length=3, max_length=320)],
    is_admin: Annotated[bool, Form()] = False,
) -> Response:
    if "@" not in email or not name.strip():
        raise InvalidInputError("give a name and an email like ada@example.org")
    try:
        user = await repo.create_user(name=name.strip(), email=email.strip(), is_admin=is_admin)
    except ConflictError as exc:
        return _back(str(exc))
    logger.info("admin %s created user %s", session.user.id, user.id)
    return _back(f"Created user {user.name} <{user.email}>.")


@router.post("/users/{user_id}/keys")
async def create_key(
    request: Request,
    user_id: str,
    session: PostedAdminDep,
    repo: RepoDep,
    name: Annotated[str, Form(min_length=1, max_length=100)],
) -> Response:
    owner = await repo.get_user(parse_user_id(user_id))
    new = generate_api_key()
    key = await repo.create_api_key(
        user_id=owner.id,
        name=name.strip(),
        key_hash=new.key_hash,
        prefix=new.prefix,
        expires_at=None,
    )
    logger.info("admin %s created API key %s for user %s", session.user.id, key.id, owner.id)
    return render(
        request,
        "new_key.html",
        user=session.user,
        csrf=session.csrf,
        owner=owner,
        secret=new.secret,
        nav="admin",
    )


@router.post("/keys/{key_id}/revoke")
async def revoke_key(key_id: str, session: PostedAdminDep, repo: RepoDep) -> Response:
    try:
        key = await repo.revoke_api_key(parse_key_id(key_id))
    except ConflictError as exc:
        return _back(str(exc))
    logger.info("admin %s revoked API key %s", session.user.id, key.id)
    return _back(f"Revoked key {key.prefix}….")


@router.post("/users/{user_id}/{action}")
async def set_active(user_id: str, action: str, session: PostedAdminDep, repo: RepoDep) -> Response:
    if action not in {"activate", "deactivate"}:
        return Response(status_code=404)
    user = await repo.set_user_active(parse_user_id(user_id), active=action == "activate")
    logger.info("admin %s: user %s is now active=%s", session.user.id, user.id, user.active)
    return _back(f"{user.name} is now {'active' if user.active else 'deactivated'}.")


def _back(notice: str) -> Response:
    return RedirectResponse(f"/ui/admin?{urlencode({'notice': notice})}", status_code=303)

"""Signing in to the dashboard with an API key, and signing out.

The form posts the key in the body (never a URL), with a one-time token from a SameSite=Strict
cookie set when the form was shown (double submit: a cross-site page can neither read that
cookie nor send it). A right key is exchanged for the session cookie and the browser is sent to
its jobs; a wrong one shows the form again with why, after counting the failure against the
client's address (`SignInThrottle`). Neither the key nor its hash is logged.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from ci_common.auth import authenticate, hash_api_key
from ci_common.errors import AuthenticationError
from ci_server.dependencies import RepoDep, RuntimeDep, SessionsDep
from ci_server.sessions import SESSION_COOKIE
from ci_server.ui.access import PostedSessionDep, check_origin
from ci_server.ui.rendering import render

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/ui", include_in_schema=False)

SIGNIN_COOKIE = "ci_signin"


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _signin_form(
    request: Request, *, error: str | None = None, status_code: int = 200, hours: float
) -> Response:
    token = secrets.token_urlsafe(16)
    response = render(
        request,
        "login.html",
        status_code=status_code,
        signin_token=token,
        error=error,
        session_hours=hours,
        user=None,
        csrf=None,
    )
    response.set_cookie(
        SIGNIN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/ui/login",
        max_age=3600,
    )
    return response


@router.get("/login")
async def signin_page(request: Request, runtime: RuntimeDep) -> Response:
    return _signin_form(request, hours=runtime.settings.session_hours)


@router.post("/login")
async def sign_in(
    request: Request,
    runtime: RuntimeDep,
    repo: RepoDep,
    sessions: SessionsDep,
    api_key: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    hours = runtime.settings.session_hours
    client = _client(request)
    check_origin(request)
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        return _signin_form(
            request, error="The form expired; sign in again.", status_code=400, hours=hours
        )
    wait = runtime.signin_throttle.retry_after(client)
    if wait is not None:
        logger.warning("dashboard sign-in from %s refused: too many failures", client)
        response = _signin_form(
            request,
            error=f"Too many failed sign-ins from your address; try again in {wait} s.",
            status_code=429,
            hours=hours,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    try:
        user = await authenticate(repo, api_key.strip())
    except AuthenticationError as exc:
        runtime.signin_throttle.record_failure(client)
        logger.info("dashboard sign-in from %s failed: %s", client, exc)
        return _signin_form(request, error=str(exc), status_code=401, hours=hours)
    found = await repo.find_api_key(hash_api_key(api_key.strip()))
    assert found is not None, "authenticate found this key a moment ago"
    key, _ = found
    logger.info("user %s signed in to the dashboard (key %s)", user.id, key.id)
    response = RedirectResponse("/ui/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        sessions.issue(user_id=user.id, key_id=key.id),
        max_age=sessions.lifetime_seconds,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    response.delete_cookie(SIGNIN_COOKIE, path="/ui/login")
    return response


@router.post("/logout")
async def sign_out(session: PostedSessionDep) -> Response:
    logger.info("user %s signed out of the dashboard", session.user.id)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response

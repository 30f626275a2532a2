"""Who is looking at a dashboard page, as dependencies: the signed-in user, an admin, and a
form post that proved it came from one of our pages.

A page without a valid session redirects to the sign-in form (`SignInRequired`); the admin
pages answer 404 to everyone else, as if they did not exist. A form post must carry the
session's CSRF token and, when the browser says where it came from (`Origin`), come from this
server: a forged cross-site form fails both, on top of the SameSite=Strict cookie.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Request

from ci_common.errors import CIError, NotFoundError
from ci_common.models import User
from ci_server.dependencies import RepoDep, SessionsDep, session_user


class SignInRequired(CIError):
    """No usable session: the page redirects to the sign-in form."""


class ForgedRequestError(CIError):
    """A form post without this session's CSRF token or from another origin (403)."""


class PageNotFoundError(NotFoundError):
    """A dashboard page that does not exist for this user (admin pages for non-admins)."""


@dataclass(frozen=True)
class PageSession:
    """The signed-in user and the CSRF token their page's forms carry."""

    user: User
    csrf: str


async def get_page_session(request: Request, repo: RepoDep, sessions: SessionsDep) -> PageSession:
    found = await session_user(request, repo, sessions)
    if found is None:
        raise SignInRequired("sign in with your API key")
    user, claims = found
    return PageSession(user=user, csrf=sessions.csrf_token(claims))


PageSessionDep = Annotated[PageSession, Depends(get_page_session)]


async def get_admin_session(session: PageSessionDep) -> PageSession:
    if not session.user.is_admin:
        raise PageNotFoundError("no such page")
    return session


AdminSessionDep = Annotated[PageSession, Depends(get_admin_session)]


def check_origin(request: Request) -> None:
    """Refuse a post whose `Origin` names another site (browsers send it on every post)."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin != expected:
        raise ForgedRequestError(
            "this form was posted from another site; open the dashboard and try again"
        )


async def get_posted_session(
    request: Request,
    session: PageSessionDep,
    csrf_token: Annotated[str | None, Form()] = None,
) -> PageSession:
    """The session of a form post that came from one of its own pages."""
    check_origin(request)
    if csrf_token is None or not hmac.compare_digest(csrf_token, session.csrf):
        raise ForgedRequestError("the form has expired or was not ours; reload the page")
    return session


async def get_posted_admin_session(
    session: Annotated[PageSession, Depends(get_posted_session)],
) -> PageSession:
    if not session.user.is_admin:
        raise PageNotFoundError("no such page")
    return session


PostedSessionDep = Annotated[PageSession, Depends(get_posted_session)]
PostedAdminDep = Annotated[PageSession, Depends(get_posted_admin_session)]

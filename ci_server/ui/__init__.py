"""The web dashboard under `/ui/`: server-rendered pages over the same data and the same
ownership rules as the HTTP API, plus three small scripts (live fragments, the live log, the
live test results).

`install_dashboard(app)` mounts the pages, their static files and the handlers that turn a
missing session into a redirect to the sign-in form and a dashboard 404 or 403 into a page.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ci_common.errors import NotFoundError
from ci_server.errors import handle_ci_error
from ci_server.ui import admin_routes, job_routes, result_routes, signin_routes
from ci_server.ui.access import ForgedRequestError, SignInRequired
from ci_server.ui.rendering import STATIC_DIR, STATIC_PREFIX, render

__all__ = ["install_dashboard"]


async def _sign_in_first(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/ui/login", status_code=303)


async def _forged(request: Request, exc: Exception) -> Response:
    return render(
        request,
        "error.html",
        status_code=403,
        status=403,
        heading="Refused",
        message=str(exc),
        user=None,
        csrf=None,
    )


async def _not_found(request: Request, exc: Exception) -> Response:
    """The dashboard's 404 is a page; the API's stays JSON."""
    if not request.url.path.startswith("/ui/"):
        return await handle_ci_error(request, exc)
    return render(
        request,
        "error.html",
        status_code=404,
        status=404,
        heading="Not found",
        message="There is no such job or page here, or it is not yours.",
        user=None,
        csrf=None,
    )


def install_dashboard(app: FastAPI) -> None:
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="ui-static")
    app.include_router(signin_routes.router)
    app.include_router(job_routes.router)
    app.include_router(result_routes.router)
    app.include_router(admin_routes.router)
    app.add_exception_handler(SignInRequired, _sign_in_first)
    app.add_exception_handler(ForgedRequestError, _forged)
    app.add_exception_handler(NotFoundError, _not_found)

    @app.get("/ui", include_in_schema=False)
    async def ui_root() -> Response:  # pyright: ignore[reportUnusedFunction]
        return RedirectResponse("/ui/", status_code=307)

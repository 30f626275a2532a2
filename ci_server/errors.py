"""How errors become HTTP responses: one table, one handler, always `{"detail": "..."}`.

Every layer below raises the `ci_common.errors` family; this module is the only place that
knows their status codes. Request validation errors get the same body shape (a sentence, not
pydantic's list) so `curl` users and the `ci` client read every error the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ci_common.api import ErrorBody
from ci_common.errors import (
    AuthenticationError,
    CIError,
    ConflictError,
    InvalidInputError,
    InvalidJobOptionsError,
    NotFoundError,
    StorageError,
)

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2
"""What a 503 asks a client to wait: the database is busy or not open yet, which passes."""


class UploadTooLargeError(InvalidInputError):
    """The upload, or what it unpacks to, is over a configured limit (413)."""


class UnusableUploadError(InvalidInputError):
    """A well-formed zip that cannot be run as a project (unsafe paths, no requirements; 422)."""


class UploadTimeoutError(InvalidInputError):
    """The upload's body did not arrive within the time allowed (408)."""


class ServerBusyError(CIError):
    """The server is at a configured limit right now; the request may be retried after
    `retry_after` seconds (503 with `Retry-After`)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


_STATUS_BY_ERROR: tuple[tuple[type[CIError], int], ...] = (
    (AuthenticationError, 401),
    (NotFoundError, 404),
    (UploadTooLargeError, 413),
    (UnusableUploadError, 422),
    (UploadTimeoutError, 408),
    (InvalidJobOptionsError, 422),
    (InvalidInputError, 400),
    (ConflictError, 409),
    (StorageError, 503),
    (ServerBusyError, 503),
)


def error_response(description: str) -> dict[str, object]:
    """An OpenAPI response documenting an `ErrorBody`, always as JSON.

    The schema is inlined rather than given as `model`, because FastAPI documents a `model`
    under the route's own media type, which for the text and SSE endpoints is not JSON.
    """
    return {
        "description": description,
        "content": {"application/json": {"schema": ErrorBody.model_json_schema()}},
    }


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    401: error_response(
        "missing, malformed, unknown, revoked or expired API key, or an inactive user"
    ),
    404: error_response("no such job, or not the caller's"),
    422: error_response("a parameter is invalid; `detail` names it"),
}
"""The error responses every authenticated endpoint documents."""

UPLOAD_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    400: error_response("not a zip, empty or corrupt"),
    408: error_response("the upload did not arrive within CI_UPLOAD_TIMEOUT seconds"),
    413: error_response("archive, unpacked size or entry count over the limit"),
    422: error_response(
        "unsafe entries (absolute path, `..`, symlink, device), no files, a project wrapped "
        "in a folder, or no `file` field"
    ),
    503: {
        **error_response(
            "the server is receiving as many uploads as it takes at once (CI_MAX_UPLOADS); "
            "retry after `Retry-After` seconds"
        ),
        "headers": {
            "Retry-After": {
                "description": "seconds to wait before retrying",
                "schema": {"type": "integer"},
            }
        },
    },
}


def status_for(error: CIError) -> int:
    for error_type, status in _STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return 500


async def handle_ci_error(request: Request, exc: Exception) -> JSONResponse:
    """Map any `CIError` to its status with the error's message as `detail`."""
    assert isinstance(exc, CIError)
    status = status_for(exc)
    if isinstance(exc, ServerBusyError):
        logger.warning("%s %s refused: %s", request.method, request.url.path, exc)
    elif status >= 500:
        logger.error("%s %s failed: %s", request.method, request.url.path, exc)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, ServerBusyError):
        headers["Retry-After"] = str(exc.retry_after)
    elif status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


async def handle_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug of ours still answers JSON, with the details in the server's log only."""
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"detail": "internal server error; the server's log has the details"}, status_code=500
    )


async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 with one readable sentence per problem, e.g. `query limit: must be ≤ 500`."""
    assert isinstance(exc, RequestValidationError)
    problems = [_describe(error) for error in cast(Sequence[Mapping[str, object]], exc.errors())]
    return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, status_code=422)


def _describe(error: Mapping[str, object]) -> str:
    raw_loc = error.get("loc", ())
    loc = [str(part) for part in cast(Sequence[object], raw_loc)] if raw_loc else []
    message = str(error.get("msg", "invalid"))
    where = " ".join(loc) if loc else "request"
    if loc[-1:] == ["file"] and loc[:1] == ["body"]:
        return (
            f"{where}: {message}; send the zip as the multipart form field `file` "
            "(curl -F file=@project.zip)"
        )
    return f"{where}: {message}"


def install_error_handlers(app: FastAPI, *, on_storage_error: Callable[[], object]) -> None:
    """Map our errors to responses on `app`; `on_storage_error` is called for each database
    error answered (the metrics count them)."""

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, StorageError):
            on_storage_error()
        return await handle_ci_error(request, exc)

    app.add_exception_handler(CIError, handle)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(Exception, handle_unexpected_error)

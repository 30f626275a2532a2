"""What an HTTP response from the server means to the client.

An error status becomes the `ci_client.errors` exception it stands for, with the server's
`detail` in words a user can act on; a 503 with `Retry-After` is a "soon", not a "no"; a body
is the JSON object (or wire model) the client expected, or a `ServerError` saying it is not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

from ci_client.errors import (
    AuthRejected,
    JobNotFound,
    RequestRejected,
    ServerError,
    ServerUnreachable,
    UploadRejected,
)
from ci_client.httpx_lean import httpx

_T = TypeVar("_T")

BUSY_MAX_WAIT_SECONDS = 10.0
BUSY_RETRIES = 5


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait before sending again, for a 503 that says when; else None."""
    if response.status_code != 503:
        return None
    try:
        return min(max(0.0, float(response.headers["Retry-After"])), BUSY_MAX_WAIT_SECONDS)
    except (KeyError, ValueError):
        return None


def while_busy(
    send: Callable[[], httpx.Response], *, sleep: Callable[[float], None]
) -> httpx.Response:
    """`send()`, sent again while the server answers 503 with `Retry-After` (all upload
    slots taken, the database busy): such an answer means "soon", not "no"."""
    response = send()
    for _ in range(BUSY_RETRIES):
        wait = retry_after(response)
        if wait is None:
            break
        response.close()
        sleep(wait)
        response = send()
    return response


def unreachable(server_url: str, exc: httpx.TransportError) -> ServerUnreachable:
    """The error for a request that never reached the server, saying what to check."""
    return ServerUnreachable(
        f"cannot reach the CI server at {server_url} ({describe(exc)}); check the URL "
        "(--server, CI_SERVER_URL or `ci config set server_url URL`) and that the server "
        "is running"
    )


def describe(exc: httpx.TransportError) -> str:
    """A transport error in a few words, its type included."""
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def check_response(response: httpx.Response, *, job_id: str | None, upload: bool) -> None:
    """Raise the client error that an HTTP error response stands for."""
    if not response.is_error:
        return
    status = response.status_code
    detail = error_detail(response)
    if status == 401:
        raise AuthRejected(
            f"the server rejected the API key: {detail}. Check the key you gave (--api-key, "
            "CI_API_KEY or `ci config show`), or ask an admin for a new one"
        )
    if status == 404 and job_id is not None:
        raise JobNotFound(
            f"job {job_id} not found (it is not one of your jobs); `ci list` shows your jobs",
            job_id=job_id,
        )
    if 400 <= status < 500:
        if upload:
            raise UploadRejected(
                f"the server rejected the upload (HTTP {status}): {detail}", status_code=status
            )
        raise RequestRejected(
            f"the server rejected the request (HTTP {status}): {detail}", status_code=status
        )
    raise ServerError(
        f"the server failed (HTTP {status}): {detail}; try again, and if it persists ask the "
        "admin to look at the server's log",
        status_code=status,
    )


def error_detail(response: httpx.Response) -> str:
    """The `detail` of an error body (FastAPI's validation lists joined), else the text."""
    try:
        body: object = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict):
        detail = cast("dict[str, object]", body).get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list):
            return "; ".join(_validation_message(item) for item in cast("list[object]", detail))
    return response.text.strip()[:500]


def _validation_message(item: object) -> str:
    if isinstance(item, dict):
        fields = cast("dict[str, object]", item)
        location = fields.get("loc")
        where = (
            ".".join(str(part) for part in cast("list[object]", location))
            if isinstance(location, list)
            else ""
        )
        message = str(fields.get("msg", ""))
        return f"{where}: {message}" if where else message
    return str(item)


def json_object(response: httpx.Response) -> dict[str, object]:
    try:
        body: object = response.json()
    except ValueError as exc:
        raise ServerError("the server sent a response that is not JSON") from exc
    if not isinstance(body, dict):
        raise ServerError("the server sent a JSON response that is not an object")
    return cast("dict[str, object]", body)


def validate_model(model: type[_T], response: httpx.Response) -> _T:
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(model).validate_json(response.content)
    except ValidationError as exc:
        raise ServerError(
            f"the server sent a response this client cannot read ({exc.error_count()} "
            "problems); client and server versions may differ"
        ) from exc

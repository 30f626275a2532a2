"""`CIClient`: the CI server's HTTP API as Python methods (what the `ci` command is built on).

    with CIClient(server_url="http://localhost:8000", api_key="ci_...") as client:
        job_id = client.submit_async(pack_project(Path(".")).data)
        for event in client.stream(job_id, from_beginning=True):
            ...

Synchronous on purpose: a command-line tool does one thing at a time, and a blocking client is
the easiest to use from scripts. The transport is injectable (`httpx.MockTransport` in unit
tests, any `httpx.BaseTransport` elsewhere). httpx errors and HTTP error responses become the
`ci_client.errors` family where they enter (`responses` says what each status means).
Streams reconnect on their own after a dropped connection (`ReconnectPolicy`), resuming
exactly after the last log chunk seen.

The wire models (`ci_common.api`) are pydantic; they are imported inside the methods that need
them, so submitting with `--async` does not pay for building them at start-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import quote

from ci_client.errors import (
    ClientError,
    RequestRejected,
    ServerError,
    ServerUnreachable,
    StreamLost,
)
from ci_client.httpx_lean import httpx
from ci_client.responses import check_response, json_object, retry_after, validate_model

if TYPE_CHECKING:
    from ci_client.events import Event
    from ci_client.job_request import JobRequest, ServerLimits
    from ci_client.stream import StreamCursor
    from ci_common.api import ArtifactView, FlakyTestView, JobView, TestResultView

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0, write=120.0)
BUSY_RETRIES = 5
STREAM_TIMEOUT = httpx.Timeout(60.0, connect=5.0, write=120.0)
"""Reads wait longer than the server's keep-alive period, so only a dead stream times out."""


@dataclass(frozen=True)
class ReconnectPolicy:
    """Exponential backoff for reconnecting a dropped stream: `initial_delay`, doubling up to
    `max_delay`, at most `max_attempts` failures in a row (the defaults ride out a server
    restart of about a minute). Any new event received resets the count."""

    initial_delay: float = 0.2
    max_delay: float = 5.0
    max_attempts: int = 15

    def delay(self, attempt: int) -> float:
        """The pause before reconnect number `attempt` (1-based)."""
        return min(self.max_delay, self.initial_delay * 2 ** max(0, attempt - 1))


@dataclass(frozen=True)
class Reconnecting:
    """A stream dropped and is about to be reconnected (for `on_reconnect` callbacks)."""

    job_id: str
    problem: str
    delay: float
    attempt: int
    max_attempts: int


class CIClient:
    """One server, one API key. Close it (or use `with`) to free the connection pool."""

    def __init__(
        self,
        *,
        server_url: str,
        api_key: str,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        reconnect: ReconnectPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_reconnect: Callable[[Reconnecting], None] | None = None,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.reconnect = reconnect or ReconnectPolicy()
        self._sleep = sleep
        self._on_reconnect = on_reconnect
        self._http = httpx.Client(
            base_url=self.server_url,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "ci-client"},
            transport=transport,
            timeout=timeout,
            # Loading the CA bundle costs ~90 ms of every command; a plain-http server has no
            # certificate to check (and redirects are not followed, so no https hop either).
            verify=self.server_url.startswith("https://"),
        )

    def __enter__(self) -> CIClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- plain requests -------------------------------------------------------------------

    def health(self) -> bool:
        """Whether the server answers `GET /health` with 200."""
        return self._request("GET", "/health").status_code == 200

    def limits(self) -> ServerLimits:
        """What the server accepts (`GET /limits`); the defaults from a server too old to
        say."""
        from ci_client.job_request import ServerLimits

        try:
            response = self._request("GET", "/limits")
        except RequestRejected as exc:
            if exc.status_code == 404:
                return ServerLimits()
            raise
        return ServerLimits.from_json(json_object(response))

    def whoami(self) -> dict[str, str]:
        """The user the API key belongs to (`GET /whoami`): `id`, `name`, `email`."""
        body = json_object(self._request("GET", "/whoami"))
        return {name: str(body.get(name, "")) for name in ("id", "name", "email")}

    def submit_async(self, archive: bytes, request: JobRequest | None = None) -> str:
        """Upload a project zip as a new job, with `request`'s pytest arguments, environment
        and provenance; return its id at once (`POST /submit-async`)."""
        response = self._request(
            "POST",
            "/submit-async",
            files=_upload(archive),
            data=request.form_fields() if request else None,
            upload=True,
        )
        body = json_object(response)
        job_id = body.get("job_id")
        if not isinstance(job_id, str):
            raise ServerError("the server accepted the upload but sent no job id")
        return job_id

    def get_job(self, job_id: str) -> JobView:
        """One of the caller's jobs (`GET /jobs/{id}`)."""
        from ci_common.api import JobView

        response = self._request("GET", f"/jobs/{job_id}", job_id=job_id)
        return validate_model(JobView, response)

    def list_jobs(
        self,
        *,
        status: str | None = None,
        project: str | None = None,
        limit: int | None = None,
        conclusion: str | None = None,
    ) -> list[JobView]:
        """The caller's jobs, newest first, optionally of one status, project or conclusion
        (`GET /jobs`)."""
        from ci_common.api import JobView

        params: dict[str, str | int] = {}
        if status is not None:
            params["status"] = status
        if project is not None:
            params["project"] = project
        if limit is not None:
            params["limit"] = limit
        if conclusion is not None:
            params["conclusion"] = conclusion
        response = self._request("GET", "/jobs", params=params)
        return validate_model(list[JobView], response)

    def list_tests(
        self, job_id: str, *, failed_only: bool = False, page_rows: int = 500
    ) -> list[TestResultView]:
        """The job's per-test results so far, every page of them (`GET /jobs/{id}/tests`);
        with `failed_only`, those that failed or errored."""
        from ci_common.api import TestResultsPage

        results: list[TestResultView] = []
        after: int | None = 0
        while after is not None:
            params: dict[str, str | int | list[str]] = {"after": after, "limit": page_rows}
            if failed_only:
                params["outcome"] = ["failed", "error"]
            response = self._request("GET", f"/jobs/{job_id}/tests", params=params, job_id=job_id)
            page = validate_model(TestResultsPage, response)
            results.extend(page.results)
            after = page.next_after
        return results

    def get_json(
        self, path: str, *, params: Mapping[str, str | int | list[str]] | None = None
    ) -> object:
        """A GET's JSON body as `json` decodes it, for callers that must not import the
        pydantic models (the failure summary after a submit); `path` names a job's resource
        (`/jobs/{id}...`) or any other."""
        job_id = path.split("/")[2] if path.startswith("/jobs/") else None
        response = self._request("GET", path, params=params, job_id=job_id)
        try:
            return response.json()
        except ValueError as exc:
            raise ServerError("the server sent a response that is not JSON") from exc

    def flaky_tests(self, *, project: str | None = None) -> list[FlakyTestView]:
        """The caller's tests that passed and failed on the same content (`GET /tests/flaky`)."""
        from ci_common.api import FlakyTestView

        params: dict[str, str | int | list[str]] = {}
        if project is not None:
            params["project"] = project
        response = self._request("GET", "/tests/flaky", params=params)
        return validate_model(list[FlakyTestView], response)

    def logs(self, job_id: str) -> str:
        """The job's whole log so far (`GET /jobs/{id}/logs`)."""
        return self._request("GET", f"/jobs/{job_id}/logs", job_id=job_id).text

    def cancel(self, job_id: str) -> JobView:
        """Ask for the job to be cancelled (idempotent); the job as it is now."""
        from ci_common.api import JobView

        response = self._request("POST", f"/jobs/{job_id}/cancel", job_id=job_id)
        return validate_model(JobView, response)

    def artifacts(self, job_id: str) -> list[ArtifactView]:
        """The files the job kept, by path (`GET /jobs/{id}/artifacts`)."""
        from ci_common.api import ArtifactView

        response = self._request("GET", f"/jobs/{job_id}/artifacts", job_id=job_id)
        return validate_model(list[ArtifactView], response)

    def download_artifact(self, job_id: str, path: str, into: BinaryIO) -> int:
        """Write one kept file into `into` as it arrives (never whole in memory); returns
        its size."""
        url = f"/jobs/{job_id}/artifacts/{quote(path)}"
        try:
            with self._http.stream("GET", url) as response:
                if response.status_code != 200:
                    response.read()
                    check_response(response, job_id=job_id, upload=False)
                written = 0
                for block in response.iter_bytes():
                    into.write(block)
                    written += len(block)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        return written

    # -- streams --------------------------------------------------------------------------

    def submit_stream(self, archive: bytes, request: JobRequest | None = None) -> Iterator[Event]:
        """Upload a project (with `request`'s options) and follow the new job from its start
        (`POST /submit-stream`). The first event is a `JobIdEvent`; the last a
        `CompleteEvent`."""
        from ci_client.stream import StreamCursor

        http_request = self._http.build_request(
            "POST",
            "/submit-stream",
            files=_upload(archive),
            data=request.form_fields() if request else None,
            timeout=STREAM_TIMEOUT,
        )
        return self._follow(http_request, StreamCursor(job_id=None, replay=True), upload=True)

    def stream(self, job_id: str, *, from_beginning: bool = False) -> Iterator[Event]:
        """Follow a job (`GET /jobs/{id}/stream`) until its `CompleteEvent`: from now on, or
        replaying its whole log first."""
        from ci_client.stream import StreamCursor

        cursor = StreamCursor(job_id=job_id, replay=from_beginning)
        request = self._stream_request(cursor, job_id)
        return self._follow(request, cursor, upload=False)

    def _stream_request(self, cursor: StreamCursor, job_id: str) -> httpx.Request:
        return self._http.build_request(
            "GET",
            f"/jobs/{job_id}/stream",
            params=cursor.resume_params(),
            headers=cursor.resume_headers(),
            timeout=STREAM_TIMEOUT,
        )

    def _follow(
        self, request: httpx.Request, cursor: StreamCursor, *, upload: bool
    ) -> Iterator[Event]:
        """Yield the stream's events, reconnecting after drops until `complete` arrives."""
        import httpx_sse

        from ci_client.stream import iter_events

        failures = 0
        while True:
            try:
                with self._open_stream(request, job_id=cursor.job_id, upload=upload) as response:
                    for event, event_id in iter_events(httpx_sse.EventSource(response)):
                        if cursor.accept(event, event_id=event_id):
                            failures = 0  # progress, not a mere reconnect, resets the budget
                            yield event
                        if event.type == "complete":
                            return
                problem = "the stream ended before the job completed"
            except httpx.ConnectError as exc:
                if cursor.job_id is None:
                    raise self._unreachable(exc) from exc
                problem = _describe(exc)
            except httpx.TransportError as exc:
                problem = _describe(exc)
            except ServerError as exc:
                if exc.status_code is None or cursor.job_id is None:
                    raise
                problem = exc.message
            if cursor.job_id is None:
                raise ServerUnreachable(
                    f"lost the connection to {self.server_url} while submitting ({problem}); the "
                    "job may or may not have been created: `ci list` shows your jobs"
                )
            failures += 1
            if failures > self.reconnect.max_attempts:
                raise StreamLost(
                    f"lost the stream of job {cursor.job_id} ({problem}) and could not reconnect "
                    f"to {self.server_url} after {self.reconnect.max_attempts} attempts; the job "
                    f"goes on: `ci wait {cursor.job_id}` reattaches",
                    job_id=cursor.job_id,
                )
            delay = self.reconnect.delay(failures)
            if self._on_reconnect is not None:
                self._on_reconnect(
                    Reconnecting(
                        job_id=cursor.job_id,
                        problem=problem,
                        delay=delay,
                        attempt=failures,
                        max_attempts=self.reconnect.max_attempts,
                    )
                )
            self._sleep(delay)
            request = self._stream_request(cursor, cursor.job_id)
            upload = False

    @contextmanager
    def _open_stream(
        self, request: httpx.Request, *, job_id: str | None, upload: bool
    ) -> Generator[httpx.Response]:
        """Send a streamed request, turn an error status into a client error, always close."""
        response = self._while_busy(lambda: self._http.send(request, stream=True))
        try:
            if response.is_error:
                response.read()
                check_response(response, job_id=job_id, upload=upload)
            yield response
        finally:
            response.close()

    # -- plumbing -------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        job_id: str | None = None,
        upload: bool = False,
        params: Mapping[str, str | int | list[str]] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        data: dict[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = self._while_busy(
                lambda: self._http.request(method, path, params=params, files=files, data=data)
            )
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        check_response(response, job_id=job_id, upload=upload)
        return response

    def _while_busy(self, send: Callable[[], httpx.Response]) -> httpx.Response:
        """`send()`, sent again while the server answers 503 with `Retry-After` (all upload
        slots taken, the database busy): such an answer means "soon", not "no"."""
        response = send()
        for _ in range(BUSY_RETRIES):
            wait = retry_after(response)
            if wait is None:
                break
            response.close()
            self._sleep(wait)
            response = send()
        return response

    def _unreachable(self, exc: httpx.TransportError) -> ServerUnreachable:
        return ServerUnreachable(
            f"cannot reach the CI server at {self.server_url} ({_describe(exc)}); check the URL "
            "(--server, CI_SERVER_URL or `ci config set server_url URL`) and that the server "
            "is running"
        )


def _upload(archive: bytes) -> dict[str, tuple[str, bytes, str]]:
    return {"file": ("project.zip", archive, "application/zip")}


def _describe(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


__all__ = ["CIClient", "ClientError", "ReconnectPolicy", "Reconnecting", "check_response"]

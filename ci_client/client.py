"""`CIClient`: the CI server's HTTP API as Python methods (what the `ci` command is built on).

    with CIClient(server_url="http://localhost:8000", api_key="ci_...") as client:
        job_id = client.submit_async(pack_project(Path(".")).data)
        for event in client.stream(job_id, from_beginning=True):
            ...

Synchronous on purpose: a command-line tool does one thing at a time, and a blocking client is
the easiest to use from scripts. The transport is injectable (`httpx.MockTransport` in unit
tests, any `httpx.BaseTransport` elsewhere). httpx errors and HTTP error responses become the
`ci_client.errors` family where they enter (`responses` says what each status means).
Streams reconnect on their own after a dropped connection (`ReconnectPolicy`, in
`ci_client.reconnect`), resuming exactly after the last log chunk seen.

The wire models (`ci_common.api`) are pydantic; they are imported inside the methods that need
them, so submitting with `--async` does not pay for building them at start-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import quote

from ci_client.errors import (
    ClientError,
    RequestRejected,
    ServerError,
)
from ci_client.httpx_lean import httpx
from ci_client.reconnect import STREAM_TIMEOUT, Reconnecting, ReconnectPolicy, StreamFollower
from ci_client.responses import (
    check_response,
    json_object,
    unreachable,
    validate_model,
    while_busy,
)

if TYPE_CHECKING:
    from ci_client.events import Event
    from ci_client.job_request import JobRequest, ServerLimits
    from ci_common.api import ArtifactView, FlakyTestView, JobView, TestResultView

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0, write=120.0)


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
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.server_url,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "ci-client"},
            transport=transport,
            timeout=timeout,
            # Loading the CA bundle costs ~90 ms of every command; a plain-http server has no
            # certificate to check (and redirects are not followed, so no https hop either).
            verify=self.server_url.startswith("https://"),
        )
        self._streams = StreamFollower(
            http=self._http,
            server_url=self.server_url,
            policy=reconnect or ReconnectPolicy(),
            sleep=sleep,
            on_reconnect=on_reconnect,
        )

    @property
    def reconnect(self) -> ReconnectPolicy:
        """How this client's streams reconnect after a drop."""
        return self._streams.policy

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
            raise unreachable(self.server_url, exc) from exc
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
        return self._streams.follow(
            http_request, StreamCursor(job_id=None, replay=True), upload=True
        )

    def stream(self, job_id: str, *, from_beginning: bool = False) -> Iterator[Event]:
        """Follow a job (`GET /jobs/{id}/stream`) until its `CompleteEvent`: from now on, or
        replaying its whole log first."""
        from ci_client.stream import StreamCursor

        cursor = StreamCursor(job_id=job_id, replay=from_beginning)
        request = self._streams.request_for(cursor, job_id)
        return self._streams.follow(request, cursor, upload=False)

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
            response = while_busy(
                lambda: self._http.request(method, path, params=params, files=files, data=data),
                sleep=self._sleep,
            )
        except httpx.TransportError as exc:
            raise unreachable(self.server_url, exc) from exc
        check_response(response, job_id=job_id, upload=upload)
        return response


def _upload(archive: bytes) -> dict[str, tuple[str, bytes, str]]:
    return {"file": ("project.zip", archive, "application/zip")}


__all__ = ["CIClient", "ClientError", "ReconnectPolicy", "Reconnecting", "check_response"]

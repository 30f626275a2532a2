"""CIClient against a scripted fake server: requests, error conversion, streams, reconnects."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import BaseModel

from ci_client.client import CIClient, ReconnectPolicy
from ci_client.errors import (
    AuthRejected,
    JobNotFound,
    RequestRejected,
    ServerError,
    ServerUnreachable,
    StreamLost,
    UploadRejected,
)
from ci_client.events import Event
from ci_client.stream import parse_event
from ci_common.api import CompleteEvent, JobIdEvent, LogEvent, StatusEvent
from ci_common.models import JobConclusion, JobStatus

from .conftest import DroppedStream, FakeServer

JOB = "6f1c2a9e-8a7b-4c3d-9e0f-112233445566"
SseFactory = Callable[..., httpx.Response]


def job_json(**changes: object) -> dict[str, object]:
    job: dict[str, object] = {
        "id": JOB,
        "status": "completed",
        "conclusion": "success",
        "success": True,
        "exit_code": 0,
        "error": None,
        "cancel_requested": False,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
        "started_at": None,
        "finished_at": None,
    }
    job.update(changes)
    return job


def complete(
    conclusion: JobConclusion = JobConclusion.SUCCESS, code: int | None = 0
) -> CompleteEvent:
    return CompleteEvent(
        status=JobStatus.COMPLETED,
        conclusion=conclusion,
        success=conclusion is JobConclusion.SUCCESS,
        exit_code=code,
    )


def as_read(*sent: BaseModel) -> list[Event]:
    """The server's events as the client decodes them (`ci_client.events`)."""
    read = [parse_event(event.model_dump_json()) for event in sent]
    return [event for event in read if event is not None]


def log(seq: int) -> LogEvent:
    return LogEvent(seq=seq, data=f"line {seq}\n")


def test_requests_carry_the_bearer_key(server: FakeServer, client: CIClient) -> None:
    server.on("GET", f"/jobs/{JOB}", httpx.Response(200, json=job_json()))
    job = client.get_job(JOB)
    assert job.id == JOB
    assert server.requests[0].headers["authorization"].startswith("Bearer ci_")


def test_submit_async_uploads_the_zip_as_field_file(server: FakeServer, client: CIClient) -> None:
    server.on(
        "POST", "/submit-async", httpx.Response(202, json={"job_id": JOB, "status": "queued"})
    )
    assert client.submit_async(b"PK\x05\x06" + b"\0" * 18) == JOB
    body = server.requests[0].content
    assert b'name="file"; filename="project.zip"' in body
    assert b"application/zip" in body


def test_list_passes_filters_and_parses_jobs(server: FakeServer, client: CIClient) -> None:
    server.on(
        "GET",
        "/jobs",
        httpx.Response(
            200,
            json=[
                job_json(),
                job_json(status="queued", conclusion=None, success=None, exit_code=None),
            ],
        ),
    )
    jobs = client.list_jobs(status="queued", limit=5)
    assert [job.status for job in jobs] == [JobStatus.COMPLETED, JobStatus.QUEUED]
    assert server.requests[0].url.params == httpx.QueryParams({"status": "queued", "limit": "5"})


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (401, AuthRejected, "key revoked"),
        (404, JobNotFound, "not one of your jobs"),
        (422, RequestRejected, "bad limit"),
        (500, ServerError, "boom"),
    ],
)
def test_error_responses_become_client_errors(
    server, client: CIClient, status: int, error: type[Exception], words: str
) -> None:
    detail = {401: "key revoked", 404: "job not found", 422: "bad limit", 500: "boom"}[status]
    server.on("GET", f"/jobs/{JOB}", httpx.Response(status, json={"detail": detail}))
    with pytest.raises(error, match=words):
        client.get_job(JOB)


def test_fastapi_validation_details_are_readable(server: FakeServer, client: CIClient) -> None:
    detail = [{"loc": ["query", "limit"], "msg": "Input should be greater than 0", "type": "x"}]
    server.on("GET", "/jobs", httpx.Response(422, json={"detail": detail}))
    with pytest.raises(RequestRejected, match=r"query\.limit: Input should be greater than 0"):
        client.list_jobs(limit=0)


def test_rejected_upload_surfaces_the_servers_detail(server: FakeServer, client: CIClient) -> None:
    server.on(
        "POST",
        "/submit-async",
        httpx.Response(413, json={"detail": "archive is 60 MiB, over the 50 MiB limit"}),
    )
    with pytest.raises(UploadRejected, match=r"HTTP 413.*over the 50 MiB limit") as caught:
        client.submit_async(b"zip")
    assert caught.value.status_code == 413


def test_connection_refused_is_server_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with (
        CIClient(
            server_url="http://ci.test", api_key="k", transport=httpx.MockTransport(refuse)
        ) as client,
        pytest.raises(
            ServerUnreachable, match=r"cannot reach the CI server at http://ci.test.*--server"
        ),
    ):
        client.list_jobs()


def test_non_json_job_is_a_server_error(server: FakeServer, client: CIClient) -> None:
    server.on("GET", f"/jobs/{JOB}", httpx.Response(200, text="<html>proxy</html>"))
    with pytest.raises(ServerError, match="cannot read"):
        client.get_job(JOB)


def test_submit_stream_yields_every_event_in_order(
    server, client: CIClient, sse: SseFactory
) -> None:
    events = [
        JobIdEvent(job_id=JOB),
        StatusEvent(status=JobStatus.RUNNING),
        log(1),
        log(2),
        complete(),
    ]
    server.on("POST", "/submit-stream", sse(*events))
    assert list(client.submit_stream(b"zip")) == as_read(*events)


def test_unknown_event_types_are_skipped(server: FakeServer, client: CIClient) -> None:
    body = (
        b'data: {"type": "summary", "passed": 3}\n\n'
        + f"id: 1\ndata: {log(1).model_dump_json()}\n\n".encode()
        + f"data: {complete().model_dump_json()}\n\n".encode()
    )
    server.on(
        "GET",
        f"/jobs/{JOB}/stream",
        httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body),
    )
    assert list(client.stream(JOB)) == as_read(log(1), complete())


def test_a_dropped_stream_resumes_after_the_last_seq(
    server, client: CIClient, sse: SseFactory
) -> None:
    server.on(
        "POST", "/submit-stream", sse(JobIdEvent(job_id=JOB), log(1), log(2), drop=httpx.ReadError)
    )
    # The server replays seq 2 on resume (as a buggy one might): it must not show twice.
    server.on("GET", f"/jobs/{JOB}/stream", sse(log(2), log(3), complete()))
    seen = list(client.submit_stream(b"zip"))
    assert [e.seq for e in seen if e.type == "log"] == [1, 2, 3]
    resume = server.requests_to(f"/jobs/{JOB}/stream")[0]
    assert resume.headers["last-event-id"] == "2"
    assert "from_beginning" not in resume.url.params


def test_drop_before_any_log_replays_from_the_beginning(
    server, client: CIClient, sse: SseFactory
) -> None:
    server.on("POST", "/submit-stream", sse(JobIdEvent(job_id=JOB), drop=httpx.RemoteProtocolError))
    server.on(
        "GET", f"/jobs/{JOB}/stream", sse(StatusEvent(status=JobStatus.RUNNING), log(1), complete())
    )
    seen = list(client.submit_stream(b"zip"))
    assert seen[-2:] == as_read(log(1), complete())
    resume = server.requests_to(f"/jobs/{JOB}/stream")[0]
    assert resume.url.params["from_beginning"] == "true"
    assert "last-event-id" not in resume.headers


def test_reconnects_through_several_failures_with_backoff(
    server: FakeServer, sse: SseFactory
) -> None:
    sleeps: list[float] = []
    attempts = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        if attempts < 4:
            raise httpx.ConnectError("refused", request=request)
        return sse(log(6), complete())

    server.on("GET", f"/jobs/{JOB}/stream", sse(log(5), drop=httpx.ReadError), flaky)
    policy = ReconnectPolicy(initial_delay=0.1, max_delay=0.3, max_attempts=5)
    with CIClient(
        server_url="http://ci.test",
        api_key="k",
        transport=server.transport,
        reconnect=policy,
        sleep=sleeps.append,
    ) as client:
        seen = list(client.stream(JOB))
    assert [e.seq for e in seen if e.type == "log"] == [5, 6]
    assert sleeps == [0.1, 0.2, 0.3, 0.3]


def test_gives_up_after_the_retry_budget_and_says_how_to_reattach(
    server, client: CIClient, sse: SseFactory
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    server.on("GET", f"/jobs/{JOB}/stream", sse(log(1), drop=httpx.ReadError), refuse)
    with pytest.raises(StreamLost, match=f"ci wait {JOB}") as caught:
        list(client.stream(JOB))
    assert caught.value.job_id == JOB
    assert len(server.requests) == 1 + client.reconnect.max_attempts


def test_a_stream_that_ends_without_complete_is_resumed(
    server, client: CIClient, sse: SseFactory
) -> None:
    server.on("GET", f"/jobs/{JOB}/stream", sse(log(1)), sse(log(2), complete()))
    seen = list(client.stream(JOB, from_beginning=True))
    assert [e.seq for e in seen if e.type == "log"] == [1, 2]


def test_server_errors_while_reconnecting_are_retried_but_auth_errors_are_not(
    server, client: CIClient, sse: SseFactory
) -> None:
    server.on(
        "GET",
        f"/jobs/{JOB}/stream",
        sse(log(1), drop=httpx.ReadError),
        httpx.Response(503, json={"detail": "starting"}),
        httpx.Response(401, json={"detail": "key revoked"}),
    )
    with pytest.raises(AuthRejected, match="key revoked"):
        list(client.stream(JOB))


def test_unknown_job_stream_is_job_not_found(server: FakeServer, client: CIClient) -> None:
    server.on("GET", f"/jobs/{JOB}/stream", httpx.Response(404, json={"detail": "job not found"}))
    with pytest.raises(JobNotFound):
        list(client.stream(JOB))


def test_drop_before_the_job_id_cannot_resume(
    server: FakeServer, client: CIClient, sse: SseFactory
) -> None:
    server.on("POST", "/submit-stream", sse(drop=httpx.ReadError))
    with pytest.raises(ServerUnreachable, match="may or may not have been created"):
        list(client.submit_stream(b"zip"))
    assert len(server.requests) == 1


def test_cancel_returns_the_job_as_the_server_reports_it(
    server: FakeServer, client: CIClient
) -> None:
    cancelled = job_json(conclusion="cancelled", success=False, exit_code=None)
    server.on("POST", f"/jobs/{JOB}/cancel", httpx.Response(200, json=cancelled))
    assert client.cancel(JOB).conclusion is JobConclusion.CANCELLED
    assert [request.method for request in server.requests] == ["POST"]


def test_logs_returns_the_text(server: FakeServer, client: CIClient) -> None:
    server.on("GET", f"/jobs/{JOB}/logs", httpx.Response(200, text="a\nb\n"))
    assert client.logs(JOB) == "a\nb\n"


def test_a_forward_only_stream_resumes_from_an_id_the_server_gave(
    server: FakeServer, client: CIClient, sse: SseFactory
) -> None:
    status = StatusEvent(status=JobStatus.RUNNING).model_dump_json()
    body = f"id: 4\ndata: {status}\n\n".encode()
    server.on(
        "GET",
        f"/jobs/{JOB}/stream",
        httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            stream=DroppedStream(body, error=httpx.ReadError),
        ),
        sse(log(5), complete()),
    )
    seen = list(client.stream(JOB))
    assert seen[1:] == as_read(log(5), complete())
    resume = server.requests_to(f"/jobs/{JOB}/stream")[1]
    assert resume.headers["last-event-id"] == "4"


def test_https_servers_get_certificate_checks_and_plain_http_skips_loading_them() -> None:
    import ssl

    def tls_context(url: str) -> ssl.SSLContext:
        client = CIClient(server_url=url, api_key="ci_key")
        try:
            return client._http._transport._pool._ssl_context  # type: ignore[attr-defined]  # httpx internals: no public accessor
        finally:
            client.close()

    secure = tls_context("https://ci.example.org")
    assert secure.verify_mode is ssl.CERT_REQUIRED
    assert secure.check_hostname
    assert tls_context("http://127.0.0.1:8000").verify_mode is ssl.CERT_NONE


def test_a_busy_server_is_asked_again_after_its_retry_after() -> None:
    answers = [
        httpx.Response(
            503, json={"detail": "all upload slots are busy"}, headers={"Retry-After": "2"}
        ),
        httpx.Response(503, json={"detail": "the database is busy"}, headers={"Retry-After": "1"}),
        httpx.Response(202, json={"job_id": JOB, "status": "queued"}),
    ]
    uploads: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        uploads.append(request.read())
        return answers.pop(0)

    waits: list[float] = []
    with CIClient(
        server_url="http://ci.test",
        api_key="k",
        transport=httpx.MockTransport(answer),
        sleep=waits.append,
    ) as client:
        assert client.submit_async(b"zip") == JOB
    assert waits == [2.0, 1.0]
    assert len(uploads) == 3 and all(b"zip" in body for body in uploads)


def test_a_503_without_retry_after_is_an_error_at_once(
    server: FakeServer, client: CIClient
) -> None:
    server.on("GET", "/jobs", httpx.Response(503, json={"detail": "not open yet"}))
    with pytest.raises(ServerError, match="503"):
        client.list_jobs()

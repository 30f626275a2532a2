"""Following one job's SSE stream to its `complete` event, reconnecting after drops.

A dropped stream (a reset connection, a server restart, a proxy's timeout) is reconnected with
exponential backoff (`ReconnectPolicy`), resuming exactly after the last log chunk seen (the
`StreamCursor` of `ci_client.stream`); only progress, a new event, resets the count of
failures. A submit's own stream is never reconnected before the server named the job: the job
may or may not exist then, and the error says how to find out. `on_reconnect` lets the `ci`
command say what is happening while it waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ci_client.errors import ServerError, ServerUnreachable, StreamLost
from ci_client.httpx_lean import httpx
from ci_client.responses import check_response, describe, unreachable, while_busy

if TYPE_CHECKING:
    from ci_client.events import Event
    from ci_client.stream import StreamCursor

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


class StreamFollower:
    """The streams of one client: its connection pool and server, and how to reconnect."""

    def __init__(
        self,
        *,
        http: httpx.Client,
        server_url: str,
        policy: ReconnectPolicy,
        sleep: Callable[[float], None] = time.sleep,
        on_reconnect: Callable[[Reconnecting], None] | None = None,
    ) -> None:
        self._http = http
        self.server_url = server_url
        self.policy = policy
        self._sleep = sleep
        self._on_reconnect = on_reconnect

    def request_for(self, cursor: StreamCursor, job_id: str) -> httpx.Request:
        """`GET /jobs/{id}/stream`, resuming where `cursor` is."""
        return self._http.build_request(
            "GET",
            f"/jobs/{job_id}/stream",
            params=cursor.resume_params(),
            headers=cursor.resume_headers(),
            timeout=STREAM_TIMEOUT,
        )

    def follow(
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
                    raise unreachable(self.server_url, exc) from exc
                problem = describe(exc)
            except httpx.TransportError as exc:
                problem = describe(exc)
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
            if failures > self.policy.max_attempts:
                raise StreamLost(
                    f"lost the stream of job {cursor.job_id} ({problem}) and could not reconnect "
                    f"to {self.server_url} after {self.policy.max_attempts} attempts; the job "
                    f"goes on: `ci wait {cursor.job_id}` reattaches",
                    job_id=cursor.job_id,
                )
            delay = self.policy.delay(failures)
            if self._on_reconnect is not None:
                self._on_reconnect(
                    Reconnecting(
                        job_id=cursor.job_id,
                        problem=problem,
                        delay=delay,
                        attempt=failures,
                        max_attempts=self.policy.max_attempts,
                    )
                )
            self._sleep(delay)
            request = self.request_for(cursor, cursor.job_id)
            upload = False

    @contextmanager
    def _open_stream(
        self, request: httpx.Request, *, job_id: str | None, upload: bool
    ) -> Generator[httpx.Response]:
        """Send a streamed request, turn an error status into a client error, always close."""
        response = while_busy(lambda: self._http.send(request, stream=True), sleep=self._sleep)
        try:
            if response.is_error:
                response.read()
                check_response(response, job_id=job_id, upload=upload)
            yield response
        finally:
            response.close()

"""A scripted fake of the CI server behind `httpx.MockTransport`, for the client's unit tests.

Each route holds a queue of responses (the last one repeats), every request is recorded, and
SSE bodies can end with a dropped connection, so reconnection is tested without a network.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel

from ci_client.cli import CLIState
from ci_client.client import CIClient, ReconnectPolicy

Responder = Callable[[httpx.Request], httpx.Response]
FAST_RECONNECT = ReconnectPolicy(initial_delay=0.0, max_delay=0.0, max_attempts=3)
API_KEY = "ci_" + "k" * 43


class DroppedStream(httpx.SyncByteStream):
    """A body that sends some bytes, then fails like a reset connection."""

    def __init__(self, body: bytes, *, error: type[httpx.TransportError]) -> None:
        self._body = body
        self._error = error

    def __iter__(self) -> Iterator[bytes]:
        yield self._body
        raise self._error("connection reset by peer")


def sse_body(*events: BaseModel) -> bytes:
    """Server-sent events as the server frames them: `id: <seq>` on log messages."""
    parts: list[str] = [": keep-alive\n\n"]
    for event in events:
        seq = getattr(event, "seq", None)
        head = f"id: {seq}\n" if seq is not None else ""
        parts.append(f"{head}data: {event.model_dump_json()}\n\n")
    return "".join(parts).encode()


def sse_response(
    *events: BaseModel, drop: type[httpx.TransportError] | None = None
) -> httpx.Response:
    headers = {"content-type": "text/event-stream"}
    if drop is None:
        return httpx.Response(200, headers=headers, content=sse_body(*events))
    return httpx.Response(200, headers=headers, stream=DroppedStream(sse_body(*events), error=drop))


def json_response(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body)


class FakeServer:
    """Routes `(method, path)` to queued responses; records every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._routes: dict[tuple[str, str], list[httpx.Response | Responder]] = {}

    def on(self, method: str, path: str, *responses: httpx.Response | Responder) -> None:
        self._routes[(method, path)] = list(responses)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self._routes.get((request.method, request.url.path))
        if not queue:
            return json_response(404, {"detail": f"no route {request.method} {request.url.path}"})
        responder = queue.pop(0) if len(queue) > 1 else queue[0]
        return responder(request) if callable(responder) else responder

    def requests_to(self, path: str) -> list[httpx.Request]:
        return [request for request in self.requests if request.url.path == path]

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def client(server: FakeServer) -> Iterator[CIClient]:
    sleeps: list[float] = []
    with CIClient(
        server_url="http://ci.test",
        api_key=API_KEY,
        transport=server.transport,
        reconnect=FAST_RECONNECT,
        sleep=sleeps.append,
    ) as ci_client:
        yield ci_client


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh `$HOME` and no CI_* variables, so the user's real config never leaks in."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("CI_SERVER_URL", "CI_API_KEY", "NO_COLOR", "FORCE_COLOR", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def cli_state(server: FakeServer, home: Path) -> CLIState:
    """The CLI's context, wired to the fake server, in a clean HOME and environment."""
    return CLIState(api_key=API_KEY, transport=server.transport, reconnect=FAST_RECONNECT)


def json_body(request: httpx.Request) -> object:
    return json.loads(request.content)


SseFactory = Callable[..., httpx.Response]


@pytest.fixture
def sse() -> SseFactory:
    """`sse(*events, drop=httpx.ReadError)`: an SSE response, optionally cut off at the end."""
    return sse_response

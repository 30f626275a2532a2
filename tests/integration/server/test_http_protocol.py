"""`ci_server.http_protocol` under uvicorn, against slow clients: connections without a complete
request head are closed after the keep-alive timeout however the bytes trickle in, an upload
refused before its body was read gets its 401 while the client still holds the body back, and
the rest of that body gets a bounded time to arrive (and be thrown away) so the connection can
serve the next request.

The app is the real one, served in a thread by uvicorn with short timeouts."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from ci_server.http_protocol import H11Protocol

from .conftest import ThreadServer

KEEP_ALIVE = 1
LINGER = 1.5
UNDER_THE_LIMIT = 1_000_000  # the test settings take 1 MiB archives
UPLOAD_HEAD = (
    "POST /submit HTTP/1.1\r\nHost: test\r\n"
    "Content-Type: multipart/form-data; boundary=b0undary\r\n"
    "Content-Length: {length}\r\n{extra}\r\n"
)


class QuickH11Protocol(H11Protocol):
    linger_seconds = LINGER


Address = tuple[str, int]


@pytest.fixture
def server(app: FastAPI) -> Iterator[Address]:
    served = ThreadServer(app, http=QuickH11Protocol, timeout_keep_alive=KEEP_ALIVE)
    served.start()
    yield served.socket.getsockname()
    served.stop()


def connect(address: Address) -> socket.socket:
    conn = socket.create_connection(address)
    conn.settimeout(10)
    return conn


def closed_after(conn: socket.socket, *, trickle: bytes = b"") -> float:
    """Seconds until the server closes `conn`, while `trickle` goes out a byte every 0.2 s."""
    started = time.monotonic()
    conn.settimeout(0.2)
    for byte in trickle * 100:
        try:
            conn.sendall(bytes([byte]))
            if conn.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
    conn.settimeout(10)
    assert conn.recv(4096) == b""
    return time.monotonic() - started


def read_response(conn: socket.socket) -> tuple[bytes, bytes]:
    """(head, body) of one response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(4096)
        assert more, data
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        more = conn.recv(4096)
        assert more, body
        body += more
    return head, body


def test_a_connection_gets_keep_alive_seconds_for_a_request_head(server: Address) -> None:
    silent = closed_after(connect(server))
    trickling = closed_after(connect(server), trickle=b"GET /health HTTP/1.1\r\nX-Slow: ")

    second = connect(server)
    second.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
    head, _ = read_response(second)
    assert head.startswith(b"HTTP/1.1 200")
    slow_second = closed_after(second, trickle=b"GET /health HTTP/1.1\r\nX-Slow: ")

    for seconds in (silent, trickling, slow_second):
        assert KEEP_ALIVE - 0.1 < seconds < KEEP_ALIVE + 2, (silent, trickling, slow_second)


def test_a_request_being_served_is_not_cut_off(server: Address) -> None:
    """A stream that outlives the keep-alive timeout is not closed by it."""
    conn = connect(server)
    conn.sendall(b"GET /jobs HTTP/1.1\r\nHost: test\r\n\r\n")  # 401: any quick answer will do
    read_response(conn)
    conn.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
    time.sleep(KEEP_ALIVE / 2)
    assert read_response(conn)[0].startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("expect", ["", "Expect: 100-continue\r\n"])
@pytest.mark.parametrize(
    ("length", "status", "detail"),
    [(UNDER_THE_LIMIT, 401, "missing API key"), (49 * 1024 * 1024, 413, "over the 1 MiB limit")],
)
def test_an_upload_without_a_key_is_refused_before_its_body_is_sent(
    server: Address, expect: str, length: int, status: int, detail: str
) -> None:
    """The client sends the head of an upload and holds the body back (as curl does with
    `Expect: 100-continue`): the answer comes at once, without a `100 Continue` first."""
    conn = connect(server)
    conn.sendall(UPLOAD_HEAD.format(length=length, extra=expect).encode())
    head, body = read_response(conn)
    assert head.startswith(f"HTTP/1.1 {status}".encode()), head
    assert detail in json.loads(body)["detail"]
    if status == 401:
        assert b"www-authenticate: bearer" in head.lower()


def test_the_body_of_a_refused_upload_is_thrown_away_and_the_connection_goes_on(
    server: Address,
) -> None:
    body = b"x" * UNDER_THE_LIMIT
    conn = connect(server)
    conn.sendall(UPLOAD_HEAD.format(length=len(body), extra="").encode())
    assert read_response(conn)[0].startswith(b"HTTP/1.1 401")
    conn.sendall(body)
    conn.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
    assert read_response(conn)[0].startswith(b"HTTP/1.1 200")


def test_the_body_of_a_refused_upload_gets_a_bounded_time(server: Address) -> None:
    conn = connect(server)
    conn.sendall(UPLOAD_HEAD.format(length=10_000, extra="").encode())
    assert read_response(conn)[0].startswith(b"HTTP/1.1 401")
    seconds = closed_after(conn, trickle=b"slow body ")
    assert LINGER - 0.1 < seconds < LINGER + 2, seconds

"""`ci-server` configures uvicorn from `CI_KEEP_ALIVE_TIMEOUT` and `CI_MAX_CONNECTIONS`: an
idle connection is closed after the timeout, and connections past the limit get 503.
(`test_http_protocol` covers the timeouts themselves.)"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import STARTUP_TIMEOUT
from .test_cli import CI_SERVER, free_port

StartCIServer = Callable[..., str]


@pytest.fixture
def ci_server(db_path: Path, tmp_path: Path) -> Iterator[StartCIServer]:
    """Start `ci-server` with extra `CI_*` settings; returns its base URL."""
    started: list[subprocess.Popen[bytes]] = []

    def start(**settings: str) -> str:
        url = f"http://127.0.0.1:{free_port()}"
        log = tmp_path / f"ci-server{len(started)}.log"
        server = subprocess.Popen(
            [CI_SERVER, "--port", url.rsplit(":", 1)[1], "--log-level", "warning"],
            env={**os.environ, "CI_DB_PATH": str(db_path), **settings},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        started.append(server)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert server.poll() is None, log.read_text()
            try:
                httpx.get(f"{url}/health", timeout=1)
                return url
            except httpx.TransportError:
                assert time.monotonic() < deadline, "ci-server did not start"
                time.sleep(0.05)

    yield start
    for server in started:
        server.terminate()
        server.wait(timeout=10)


def test_limits_on_connections(ci_server: StartCIServer) -> None:
    url = ci_server(CI_KEEP_ALIVE_TIMEOUT="1", CI_MAX_CONNECTIONS="3")
    address = ("127.0.0.1", int(url.rsplit(":", 1)[1]))

    idle = [socket.create_connection(address, timeout=10) for _ in range(3)]
    time.sleep(0.2)  # accepted by now
    refused = httpx.get(f"{url}/health")
    assert refused.status_code == 503

    started = time.monotonic()
    for conn in idle:
        assert conn.recv(100) == b""  # closed by the server: no request head within 1 s
    assert time.monotonic() - started < 3
    assert httpx.get(f"{url}/health").status_code == 200

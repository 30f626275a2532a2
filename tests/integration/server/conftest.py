"""Fixtures for the server's integration tests: a real SQLite file per test, users with real
API keys, the real app through httpx's ASGI transport, and the same app served by a real
uvicorn (in a thread, or as separate processes) for streams that never end on their own.

The `repo` fixture is a second connection to the test's database: it plays the admin (users,
keys) and the controller (log chunks, status changes), exactly as those processes would.

A module runs on PostgreSQL too with
`pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)`.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from ci_common.auth import generate_api_key
from ci_common.models import User
from ci_common.repository import Repository
from ci_persistence import DatabaseLocation, open_repository_at
from ci_server import ServerSettings, create_app
from ci_server.dependencies import ServerRuntime
from ci_server.log_hub import LogHub

STARTUP_TIMEOUT = 20.0


@dataclass(frozen=True)
class Account:
    """A user and one working API key."""

    user: User
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


MakeAccount = Callable[..., Awaitable[Account]]


def project_zip(extra: dict[str, bytes] | None = None) -> bytes:
    """A small valid project: requirements.txt and one test at the root."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("requirements.txt", "pytest\n")
        archive.writestr("test_ok.py", "def test_ok():\n    assert True\n")
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_upload(data: bytes, name: str = "project.zip") -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, data, "application/zip")}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ci.db"


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None: SQLite at `db_path`; a fresh PostgreSQL database's URL when a module
    parametrizes this fixture with "postgres"."""
    if getattr(request, "param", "sqlite") == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return None


@pytest.fixture
def settings(db_path: Path, database_url: str | None) -> ServerSettings:
    """Small upload limits so the limit tests stay fast; a short keep-alive."""
    return ServerSettings(
        db_path=db_path,
        database_url=database_url,
        max_upload_mb=1,
        max_unpacked_mb=2,
        max_upload_entries=50,
        sse_ping_interval=0.5,
    )


@pytest.fixture
async def repo(db_path: Path, database_url: str | None) -> AsyncIterator[Repository]:
    """The admin's and the controller's connection to the test database."""
    repository = await open_repository_at(DatabaseLocation(path=db_path, url=database_url))
    yield repository
    await repository.close()


@pytest.fixture
def make_account(repo: Repository) -> MakeAccount:
    counter = iter(range(1, 1_000))

    async def make(*, expires_at: datetime | None = None) -> Account:
        n = next(counter)
        user = await repo.create_user(name=f"user{n}", email=f"user{n}@example.org")
        key = generate_api_key()
        await repo.create_api_key(
            user_id=user.id,
            name="test",
            key_hash=key.key_hash,
            prefix=key.prefix,
            expires_at=expires_at,
        )
        return Account(user=user, key=key.secret)

    return make


@pytest.fixture
async def alice(make_account: MakeAccount) -> Account:
    return await make_account()


@pytest.fixture
async def bob(make_account: MakeAccount) -> Account:
    return await make_account()


@pytest.fixture
def app(settings: ServerSettings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The real app in-process (lifespan included) behind httpx's ASGI transport.

    The transport buffers whole responses, so streams used through it must end (completed
    jobs); live streams go through `live_server`.
    """
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client,
    ):
        yield client


def hub_of(app: FastAPI) -> LogHub:
    runtime = app.state.runtime
    assert isinstance(runtime, ServerRuntime)
    assert runtime.hub is not None
    return runtime.hub


class ThreadServer:
    """uvicorn serving `app` on a free port, in a background thread of this process;
    `options` go to `uvicorn.Config` (a protocol class, timeouts)."""

    def __init__(self, app: FastAPI, **options: Any) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1, **options
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.socket.close()


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[str]:
    """Base URL of the test's app served by a real uvicorn (streams flow as they happen)."""
    server = ThreadServer(app)
    server.start()
    yield server.url
    server.stop()


class ServerProcess:
    """`python -m uvicorn ci_server.app:app` as its own process, on an inherited socket."""

    def __init__(self, *, db_path: Path, log_path: Path, database_url: str | None = None) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(128)
        port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "CI_DB_PATH": str(db_path), "CI_SSE_PING_INTERVAL": "0.5"}
        if database_url is not None:
            env["CI_DATABASE_URL"] = database_url
        self.log = log_path.open("wb")
        fd = self.socket.fileno()
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "ci_server.app:app", "--fd", str(fd)),
                *("--log-level", "warning", "--timeout-graceful-shutdown", "1"),
            ],
            env=env,
            pass_fds=(fd,),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.socket.close()
        self.log.close()


StartServerProcess = Callable[[], ServerProcess]


@pytest.fixture
def server_process(
    db_path: Path, database_url: str | None, tmp_path: Path
) -> Iterator[StartServerProcess]:
    """Start any number of real server processes on the test's database."""
    started: list[ServerProcess] = []

    def start() -> ServerProcess:
        server = ServerProcess(
            db_path=db_path,
            log_path=tmp_path / f"server{len(started)}.log",
            database_url=database_url,
        )
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()

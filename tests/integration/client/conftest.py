"""Fixtures for the `ci` command against the real server: a real SQLite file per test, the
real app served by uvicorn on a free port (in a thread, restartable on the same port), and the
real `ci` console script run as a subprocess with its own `$HOME`.

The `repo` fixture is a second connection to the test's database that plays the admin (a user
and a key) and the controller (marking jobs running, appending log chunks, completing them),
exactly as those processes would; no Docker is involved.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn

from ci_common.auth import generate_api_key
from ci_common.models import Job, JobConclusion, JobId, UserId
from ci_persistence import SqliteRepository, open_repository
from ci_server import ServerSettings, create_app

STARTUP_TIMEOUT = 20.0
TIMEOUT = 20.0
CI = str(Path(sys.executable).with_name("ci"))
SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sample-project"


class RestartableServer:
    """uvicorn serving a fresh app on one fixed free port; `stop()` and `start()` again to
    simulate a server restart while clients are connected."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port: int = probe.getsockname()[1]
        probe.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(
            create_app(self.settings),
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        self._server, self._thread, self._socket = server, thread, sock

    def stop(self) -> None:
        if self._server is None or self._thread is None or self._socket is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()
        self._server = self._thread = self._socket = None


@dataclass
class CiRun:
    """A finished `ci` invocation."""

    exit_code: int
    stdout: str
    stderr: str


@dataclass
class Cli:
    """Runs the real `ci` console script with a private HOME and the test's server and key."""

    home: Path
    env: dict[str, str] = field(default_factory=dict[str, str])

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("CI_") and key not in ("NO_COLOR", "FORCE_COLOR")
        }
        return {**base, "HOME": str(self.home), **self.env, **(extra or {})}

    async def start(
        self, *args: str, env: dict[str, str] | None = None
    ) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            CI,
            *args,
            env=self.environment(env),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def run(self, *args: str, env: dict[str, str] | None = None) -> CiRun:
        process = await self.start(*args, env=env)
        async with asyncio.timeout(TIMEOUT):
            stdout, stderr = await process.communicate()
        assert process.returncode is not None
        return CiRun(process.returncode, stdout.decode(), stderr.decode())


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ci.db"


@pytest.fixture
def settings(db_path: Path) -> ServerSettings:
    return ServerSettings(db_path=db_path, sse_ping_interval=0.5)


@pytest.fixture
async def repo(db_path: Path) -> AsyncIterator[SqliteRepository]:
    repository = await open_repository(db_path)
    yield repository
    await repository.close()


@pytest.fixture
def server(settings: ServerSettings) -> Iterator[RestartableServer]:
    running = RestartableServer(settings)
    running.start()
    yield running
    running.stop()


@dataclass(frozen=True)
class Account:
    user_id: UserId
    key: str


async def create_account(repo: SqliteRepository, name: str) -> Account:
    user = await repo.create_user(name=name, email=f"{name}@example.org")
    key = generate_api_key()
    await repo.create_api_key(
        user_id=user.id, name="test", key_hash=key.key_hash, prefix=key.prefix, expires_at=None
    )
    return Account(user_id=user.id, key=key.secret)


@pytest.fixture
async def alice(repo: SqliteRepository) -> Account:
    return await create_account(repo, "alice")


@pytest.fixture
def cli(tmp_path: Path, server: RestartableServer, alice: Account) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home=home, env={"CI_SERVER_URL": server.url, "CI_API_KEY": alice.key})


async def wait_for_job(repo: SqliteRepository, user_id: int) -> Job:
    """The user's newest job, once the server has stored it."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        jobs = await repo.list_jobs(limit=1)
        if jobs and jobs[0].user_id == user_id:
            return jobs[0]
        await asyncio.sleep(0.02)
    raise AssertionError("no job was submitted")


async def run_job(
    repo: SqliteRepository,
    job_id: JobId,
    *,
    lines: list[str],
    conclusion: JobConclusion,
    exit_code: int | None,
    error: str | None = None,
) -> None:
    """Play the controller: start the job, log `lines`, finish it."""
    await repo.mark_running(job_id, container_id=None)
    for line in lines:
        await repo.append_log(job_id, line, cursor=None)
    await repo.complete_job(job_id, conclusion=conclusion, exit_code=exit_code, error=error)

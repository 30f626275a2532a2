"""End-to-end harness: one real CI service per test, driven the way users and admins drive it.

A `CIService` is a temporary directory with its own database (a SQLite file there, or the
PostgreSQL database `CI_DATABASE_URL` names when the test passes it in `env`, e.g. the
`postgres_url` fixture's), a user and API key made by the
real `ci-admin`, a real server (uvicorn on a socket bound to port 0 and handed over, so there
is no port race) and real `ci-controller` processes. Helpers submit project directories over
HTTP (zipped like the CLI does), wait for jobs with deadlines, read logs, and look at the
Docker engine for this installation's containers. `close()` kills every process it started
and removes every container, dependency image and build network labelled with this
installation, so tests running in parallel on one engine never see each other's leftovers.

Import it from any test under tests/e2e (the e2e conftest puts this directory on sys.path):
`from harness import CIService, zip_project`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, cast

import asyncpg
import docker
import httpx
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
BIN = Path(sys.executable).parent
JOB_IMAGE = os.environ.get("CI_E2E_JOB_IMAGE", "ci-python:3.11")
JOB_IMAGES = os.environ.get("CI_E2E_JOB_IMAGES", "3.13=ci-python:3.13")
"""Offered beside `JOB_IMAGE` (the default); scripts/test builds ci-python:3.13."""
STARTUP_TIMEOUT = 20.0
JOB_TIMEOUT = 90.0
SETUP_HINT = (
    "the e2e tests need a Docker engine and the job image: run scripts/install-docker and "
    f"scripts/build-job-image (image {JOB_IMAGE}, and --python 3.13); CI runs both before the "
    "tests"
)

T = TypeVar("T")


def docker_client() -> docker.DockerClient:
    return docker.from_env(version="auto")


def check_docker_and_image() -> str | None:
    """None when the engine answers and the job image exists, else what to do."""
    try:
        client = docker_client()
        client.ping()  # pyright: ignore[reportUnknownMemberType]
    except DockerException as exc:
        return f"Docker engine unreachable ({exc}); {SETUP_HINT}"
    try:
        client.images.get(JOB_IMAGE)
    except ImageNotFound:
        return f"job image {JOB_IMAGE} missing; {SETUP_HINT}"
    finally:
        client.close()
    return None


def zip_project(directory: Path) -> bytes:
    """The project directory as the CLI uploads it: a zip of its root, caches left out."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory)
            if any(part in {"__pycache__", ".pytest_cache"} for part in relative.parts):
                continue
            if path.is_file():
                archive.write(path, relative.as_posix())
    return buffer.getvalue()


def wait_until(check: Callable[[], T | None], *, within: float, what: str) -> T:
    """Poll `check` every 20 ms until it returns something, or fail saying `what`."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        time.sleep(0.02)


MakeService = Callable[..., "CIService"]
"""The `make_service` fixture: `make_service(env={...}, server=True, controller=True)`."""


class StdoutLines:
    """A process's stdout lines, collected in a thread as they come, so a test can wait for
    one while the process runs on."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.lines: list[str] = []
        self._stdout = process.stdout
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stdout:
            self.lines.append(line)

    def has(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def text(self) -> str:
        """Everything, once the process has closed its stdout (or `JOB_TIMEOUT` passed)."""
        self._thread.join(timeout=JOB_TIMEOUT)
        return "".join(self.lines)


@dataclass
class ManagedProcess:
    """A process the harness started, with its output in a file."""

    name: str
    popen: subprocess.Popen[bytes]
    output_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def terminate(self, *, within: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)
            raise AssertionError(f"{self.name} ignored SIGTERM for {within:g} s") from None

    def wait_for_output(self, text: str, *, within: float = STARTUP_TIMEOUT) -> None:
        wait_until(lambda: text in self.output(), within=within, what=f"{text!r} in {self.name}")


@dataclass
class CIService:
    """One installation: database, account, server and controllers, all real."""

    root: Path
    env: dict[str, str]
    api_key: str = ""
    base_url: str = ""
    processes: list[ManagedProcess] = field(default_factory=lambda: list[ManagedProcess]())
    _http: httpx.Client | None = None

    @classmethod
    def create(cls, root: Path, *, env: Mapping[str, str] | None = None) -> CIService:
        """A database with one user and key (made by `ci-admin`); nothing running yet."""
        root.mkdir(parents=True, exist_ok=True)
        base = {
            **os.environ,
            "CI_DB_PATH": str(root / "ci.db"),
            "CI_JOB_IMAGE": JOB_IMAGE,
            "CI_JOB_IMAGES": JOB_IMAGES,
            "CI_RECONCILE_INTERVAL": "1",
            "PYTHONUNBUFFERED": "1",
        }
        service = cls(root=root, env={**base, **(env or {})})
        service.api_key = service.create_account("e2e", "e2e@example.com")
        return service

    @property
    def db_path(self) -> Path:
        return Path(self.env["CI_DB_PATH"])

    @property
    def database_url(self) -> str | None:
        """The PostgreSQL database when the service runs on one, else None (SQLite)."""
        return self.env.get("CI_DATABASE_URL") or None

    # Processes.

    def spawn(
        self,
        name: str,
        argv: list[str],
        *,
        env: Mapping[str, str] | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> ManagedProcess:
        output_path = self.root / f"{name}-{len(self.processes)}.log"
        with output_path.open("wb") as output:
            process = subprocess.Popen(
                argv,
                env={**self.env, **(env or {})},
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                pass_fds=pass_fds,
            )
        managed = ManagedProcess(name=name, popen=process, output_path=output_path)
        self.processes.append(managed)
        return managed

    def admin(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "ci-admin"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )

    def create_account(self, name: str, email: str) -> str:
        """A user and an API key, through the real `ci-admin`; returns the key."""
        made = self.admin("user", "create", "--name", name, "--email", email)
        assert made.returncode == 0, made.stderr
        key = self.admin("key", "create", "--email", email, "--name", "e2e")
        assert key.returncode == 0, key.stderr
        return next(
            line.removeprefix("API Key: ")
            for line in key.stdout.splitlines()
            if line.startswith("API Key: ")
        )

    def start_server(self, *, wait: bool = True) -> ManagedProcess:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit it: uvicorn takes an inherited fd for AF_UNIX, so asyncio
        # would not set it, and every second request on a connection would wait ~40 ms for
        # a delayed ACK (Nagle). `ci-server --port` gets it from asyncio.
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        fd = listener.fileno()
        server = self.spawn(
            "server",
            [
                str(BIN / "python"),
                "-m",
                "uvicorn",
                "ci_server.app:app",
                "--fd",
                str(fd),
                "--log-level",
                "warning",
            ],
            pass_fds=(fd,),
        )
        listener.close()
        self.base_url = f"http://127.0.0.1:{port}"
        if wait:
            self.wait_for_server()
        return server

    def restart_server(self) -> ManagedProcess:
        """Kill -9 every server of this service and start a new one (on a new port)."""
        for process in self.processes:
            if process.name == "server" and process.alive():
                process.kill9()
        if self._http is not None:
            self._http.close()
            self._http = None
        return self.start_server()

    def wait_for_server(self) -> None:
        wait_until(self._healthy, within=STARTUP_TIMEOUT, what=f"the server at {self.base_url}")

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start_controller(
        self, *, env: Mapping[str, str] | None = None, wait: bool = True
    ) -> ManagedProcess:
        """A `ci-controller`; by default once it has said it started."""
        controller = self.spawn("controller", [str(BIN / "ci-controller")], env=env)
        if wait:
            controller.wait_for_output("controller started")
        return controller

    def run_ci(
        self, *args: str, cwd: Path | None = None, server: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`ci` as a user runs it: this service's server (or `server`) and key from the
        environment, a private HOME, no colour settings inherited from the test run."""
        return subprocess.run(
            [str(BIN / "ci"), *args],
            env=self.ci_env(server=server),
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=JOB_TIMEOUT,
        )

    def ci_env(self, *, server: str | None = None) -> dict[str, str]:
        """The environment `run_ci` gives `ci`, for tests that start it themselves."""
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        env = {
            **self.env,
            "HOME": str(home),
            "CI_SERVER_URL": server or self.base_url,
            "CI_API_KEY": self.api_key,
        }
        env.pop("NO_COLOR", None)
        env.pop("FORCE_COLOR", None)
        env.pop("XDG_CONFIG_HOME", None)
        return env

    # HTTP.

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            assert self.base_url, "start_server() first"
            self._http = httpx.Client(
                base_url=self.base_url,
                headers={"Authorization": f"Bearer {self.api_key}"},
                timeout=httpx.Timeout(30, read=JOB_TIMEOUT),
                # Idle connections are dropped before the server's 5 s keep-alive timeout
                # closes them: reusing one the server is closing at that very moment fails
                # with "Server disconnected without sending a response".
                limits=httpx.Limits(keepalive_expiry=2.0),
            )
        return self._http

    def submit(self, project: Path | bytes) -> str:
        """`POST /submit-async`; returns the job id."""
        archive = project if isinstance(project, bytes) else zip_project(project)
        response = self.http.post(
            "/submit-async", files={"file": ("project.zip", archive, "application/zip")}
        )
        assert response.status_code == 202, response.text
        return str(response.json()["job_id"])

    def submit_stream(self, project: Path | bytes) -> Iterator[dict[str, object]]:
        """`POST /submit-stream`: the SSE messages as they come, ending with `complete`."""
        archive = project if isinstance(project, bytes) else zip_project(project)
        files = {"file": ("project.zip", archive, "application/zip")}
        with self.http.stream("POST", "/submit-stream", files=files) as response:
            assert response.status_code == 200, response.read().decode()
            for line in response.iter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:].strip())
                    yield message
                    if message.get("type") == "complete":
                        return

    def job(self, job_id: str) -> dict[str, object]:
        response = self.http.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_for_status(
        self, job_id: str, status: str, *, within: float = JOB_TIMEOUT
    ) -> dict[str, object]:
        return wait_until(
            lambda: job if (job := self.job(job_id))["status"] == status else None,
            within=within,
            what=f"job {job_id} to be {status}",
        )

    def wait_for_job(self, job_id: str, *, within: float = JOB_TIMEOUT) -> dict[str, object]:
        """The job once completed."""
        return self.wait_for_status(job_id, "completed", within=within)

    def logs(self, job_id: str) -> str:
        response = self.http.get(f"/jobs/{job_id}/logs")
        assert response.status_code == 200, response.text
        return response.text

    def cancel(self, job_id: str) -> dict[str, object]:
        response = self.http.post(f"/jobs/{job_id}/cancel")
        assert response.status_code in (200, 202), response.text
        return dict(response.json())

    # The database and the engine, as an operator would look at them.

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        """Rows of `sql` (`?` placeholders) from this service's database, either backend."""
        if self.database_url is not None:
            return asyncio.run(_postgres_query(self.database_url, sql, params))
        with sqlite3.connect(self.db_path, timeout=10) as conn:
            return list(conn.execute(sql, params).fetchall())

    def has_database(self) -> bool:
        return self.database_url is not None or self.db_path.exists()

    def installation_id(self) -> str:
        [(value,)] = self.query("SELECT value FROM meta WHERE key = 'installation_id'")
        return str(value)

    def containers(self) -> list[str]:
        """Ids of every container (any state) labelled with this installation."""
        client = docker_client()
        try:
            # The low-level list: the high-level one inspects each container and fails on
            # one removed meanwhile.
            found = cast(
                list[dict[str, object]],
                client.api.containers(  # pyright: ignore[reportUnknownMemberType] -- untyped SDK
                    all=True, filters={"label": f"ci.installation={self.installation_id()}"}
                ),
            )
            return [str(c["Id"]) for c in found]
        finally:
            client.close()

    def dangling_volumes(self) -> list[str]:
        """Names of volumes labelled with this installation that no container uses (a job
        container's workspace left behind)."""
        client = docker_client()
        try:
            found = cast(
                dict[str, list[dict[str, object]] | None],
                client.api.volumes(  # pyright: ignore[reportUnknownMemberType] -- untyped SDK
                    filters={"label": f"ci.installation={self.installation_id()}", "dangling": True}
                ),
            )
        finally:
            client.close()
        return [str(v["Name"]) for v in found.get("Volumes") or []]

    def job_containers(self) -> list[str]:
        """Every container of this installation except the unclaimed warm containers a running
        controller keeps for the next job: one warm container no job references per image
        (the job image's, and the last used dependency image's; a claimed one is a job's
        container and counts). Two or more unclaimed ones of an image (a dead controller's not
        yet removed) all count, so waiting for `[]` waits for that removal too."""
        client = docker_client()
        try:
            found = cast(
                list[dict[str, object]],
                client.api.containers(  # pyright: ignore[reportUnknownMemberType] -- untyped SDK
                    all=True, filters={"label": f"ci.installation={self.installation_id()}"}
                ),
            )
        finally:
            client.close()
        referenced = {row[0] for row in self.query("SELECT container_id FROM jobs")}
        warm: dict[str, list[str]] = {}
        for c in found:
            if (
                cast(dict[str, str], c.get("Labels") or {}).get("ci.role") == "warm"
                and c["Id"] not in referenced
            ):
                warm.setdefault(str(c["ImageID"]), []).append(str(c["Id"]))
        spare = [ids[0] for ids in warm.values() if len(ids) == 1]
        return [str(c["Id"]) for c in found if str(c["Id"]) not in spare]

    def close(self) -> None:
        """Kill what was started, remove what this installation left on the engine."""
        if self._http is not None:
            self._http.close()
        for process in self.processes:
            if process.alive():
                process.popen.kill()
                process.popen.wait(timeout=10)
        if not self.has_database():
            return
        label = f"ci.installation={self.installation_id()}"
        client = docker_client()
        try:
            for container_id in self.containers():
                with contextlib.suppress(NotFound, APIError):  # removal already in progress
                    client.api.remove_container(container_id, force=True, v=True)  # pyright: ignore[reportUnknownMemberType] -- untyped SDK
            for image in client.images.list(filters={"label": label}):
                for tag in image.tags:
                    with contextlib.suppress(NotFound, APIError):
                        client.images.remove(tag, noprune=False)  # pyright: ignore[reportUnknownMemberType] -- untyped SDK
            for network in client.networks.list(filters={"label": label}):  # its build network
                with contextlib.suppress(NotFound, APIError):
                    network.remove()  # pyright: ignore[reportUnknownMemberType] -- untyped SDK
        finally:
            client.close()


async def _postgres_query(
    url: str, sql: str, params: tuple[object, ...]
) -> list[tuple[object, ...]]:
    numbered = sql
    for n in range(1, len(params) + 1):
        numbered = numbered.replace("?", f"${n}", 1)
    conn = await asyncpg.connect(url)
    try:
        return [tuple(row.values()) for row in await conn.fetch(numbered, *params)]
    finally:
        await conn.close()

"""A throwaway PostgreSQL cluster on loopback, for the tests (and `scripts/install-postgres
--start`).

`PostgresCluster.start()` runs Debian's binaries (`/usr/lib/postgresql/*/bin`, installed by
`scripts/install-postgres`): `initdb` into a new temporary directory, then `postgres` itself on
127.0.0.1 at a free port, with a generated password (scram) for the role `ci`. `initdb` refuses
to run as root, so as root the cluster belongs to the `postgres` OS user. Durability is off
(`fsync`, `full_page_writes`, `synchronous_commit`): a crash loses a test's database, never
anything else, and each test's `CREATE DATABASE` costs a few milliseconds instead of fsyncs.

Attached (the pytest fixture), the server is this process's child and gets SIGQUIT when the
process that started it dies, so a killed test run leaves no server behind; detached
(`python tests/postgres_cluster.py start`), it outlives the command until `stop DIR`.

Standard library only: the script runs it before any virtualenv exists.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

OS_USER = "postgres"
ROLE = "ci"
START_TIMEOUT = 30.0
HINT = "run scripts/install-postgres (installs Debian's postgresql package)"
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "max_connections": "300",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}
_PR_SET_PDEATHSIG = 1


class ClusterError(Exception):
    """The cluster could not be started; the message says what to do."""


def bin_dir() -> Path:
    """The newest installed PostgreSQL's binaries (`CI_POSTGRES_BIN` overrides)."""
    if chosen := os.environ.get("CI_POSTGRES_BIN"):
        return Path(chosen)
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not found:
        raise ClusterError(f"PostgreSQL is not installed (no /usr/lib/postgresql/*/bin); {HINT}")
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    """In the child, after the switch to the OS user: SIGQUIT (PostgreSQL's immediate
    shutdown) when the parent goes away."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT)


@dataclass
class PostgresCluster:
    """A running cluster: its directory, port and password, and the server process."""

    root: Path
    port: int
    password: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{ROLE}:{self.password}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, *, detach: bool = False) -> PostgresCluster:
        binaries = bin_dir()
        as_root = os.geteuid() == 0
        owner = _os_user() if as_root else None
        # Not tempfile's default directory: a test may have pointed it somewhere private, and
        # the cluster's owner must be able to enter the directory.
        parent = os.environ.get("CI_TEST_POSTGRES_TMPDIR", "/tmp")
        root = Path(tempfile.mkdtemp(prefix="ci-postgres-", dir=parent))
        try:
            password = secrets.token_hex(16)
            (root / "password").write_text(password)
            if owner is not None:
                os.chown(root, owner.pw_uid, owner.pw_gid)
                os.chown(root / "password", owner.pw_uid, owner.pw_gid)
            _run_as(
                owner,
                [
                    str(binaries / "initdb"),
                    "--pgdata",
                    str(root / "data"),
                    "--username",
                    ROLE,
                    "--pwfile",
                    str(root / "password"),
                    "--auth",
                    "scram-sha-256",
                    "--encoding",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                    "--no-instructions",
                ],
            )
            cluster = cls(root=root, port=0, password=password)
            for _ in range(5):  # the free port may be taken before the server binds it
                cluster.port = free_port()
                cluster.process = cluster._spawn(binaries, owner, detach=detach)
                if cluster._wait_ready(binaries):
                    return cluster
            raise ClusterError(f"PostgreSQL did not start; its log:\n{cluster.log_tail()}")
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    def _spawn(
        self, binaries: Path, owner: pwd.struct_passwd | None, *, detach: bool
    ) -> subprocess.Popen[bytes]:
        options = [f"--{name.replace('_', '-')}={value}" for name, value in SETTINGS.items()]
        argv = [
            str(binaries / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-k",
            str(self.root),
            *options,
        ]
        with (self.root / "server.log").open("ab") as log:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=owner.pw_uid if owner else None,
                group=owner.pw_gid if owner else None,
                extra_groups=[] if owner else None,
                start_new_session=detach,
                preexec_fn=None if detach else _die_with_parent,
            )

    def _wait_ready(self, binaries: Path) -> bool:
        """True once it accepts connections; False when the server exited (port taken)."""
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            ready = subprocess.run(
                [str(binaries / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
            )
            if ready.returncode == 0:
                return True
            time.sleep(0.05)
        self.process.kill()
        raise ClusterError(f"PostgreSQL did not answer within {START_TIMEOUT:g} s")

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "server.log").read_text(errors="replace")[-3000:]
        return ""

    def stop(self) -> None:
        """Immediate shutdown, then the directory goes."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def stop_detached(root: Path) -> None:
    """Stop a cluster started with `start --detach` (its pid is in `postmaster.pid`)."""
    pid_file = root / "data" / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, ProcessLookupError):
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and pid_file.exists():
            time.sleep(0.05)
    shutil.rmtree(root, ignore_errors=True)


class DatabaseDropper:
    """Drops databases in the background: `DROP DATABASE` waits for a checkpoint (about a
    second), which a test need not wait for. `wait()` collects them all."""

    def __init__(self, server_url: str) -> None:
        self._url = server_url
        self._running: list[subprocess.Popen[bytes]] = []

    def drop(self, database: str) -> None:
        self._running = [p for p in self._running if p.poll() is None]
        self._running.append(
            subprocess.Popen(
                [
                    str(bin_dir() / "psql"),
                    "-q",
                    "-d",
                    self._url,
                    "-c",
                    f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        )

    def wait(self) -> None:
        for process in self._running:
            process.wait(timeout=60)
        self._running = []


def _os_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        raise ClusterError(f"there is no OS user {OS_USER!r} to own the cluster; {HINT}") from None


def _run_as(owner: pwd.struct_passwd | None, argv: list[str]) -> None:
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        user=owner.pw_uid if owner else None,
        group=owner.pw_gid if owner else None,
        extra_groups=[] if owner else None,
        cwd="/",
    )
    if done.returncode != 0:
        raise ClusterError(f"{Path(argv[0]).name} failed: {done.stderr.strip() or done.stdout}")


def main(argv: list[str]) -> int:
    """`start`: a detached cluster, printing `CI_TEST_DATABASE_URL=...` and
    `CI_TEST_POSTGRES_DIR=...`; `stop DIR`: stop it and remove its directory."""
    if argv[:1] == ["start"]:
        try:
            cluster = PostgresCluster.start(detach=True)
        except ClusterError as exc:
            print(f"[postgres] ERROR: {exc}", file=sys.stderr)
            return 1
        print(f"CI_TEST_DATABASE_URL={cluster.url()}")
        print(f"CI_TEST_POSTGRES_DIR={cluster.root}")
        return 0
    if argv[:1] == ["stop"] and len(argv) == 2:
        stop_detached(Path(argv[1]))
        return 0
    print("usage: postgres_cluster.py start | stop DIR", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

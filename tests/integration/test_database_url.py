"""`CI_DATABASE_URL` through the real commands: PostgreSQL when it is set, and a bad URL or an
unreachable database as one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ci_persistence.postgres import CONTROLLER_LOCK_KEY, AdvisoryLock

BIN = Path(sys.executable).parent


def run(command: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / command), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


COMMANDS = [
    ("ci-admin", ("user", "list")),
    ("ci-server", ("--port", "0")),
    ("ci-controller", ()),
]


@pytest.mark.parametrize(("command", "args"), COMMANDS)
@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://ci@127.0.0.1/ci", "CI_DATABASE_URL must look like postgresql://"),
        ("postgresql://ci@127.0.0.1:nope/ci", "CI_DATABASE_URL is not a valid URL"),
        (
            "postgresql://ci:s3cret@127.0.0.1:{port}/ci",
            "cannot connect to the database at postgresql://ci:***@127.0.0.1:",
        ),
    ],
)
def test_a_bad_or_unreachable_database_is_one_line_at_start(
    command: str, args: tuple[str, ...], url: str, says: str, tmp_path: Path
) -> None:
    env = {"CI_DATABASE_URL": url.format(port=closed_port()), "CI_DB_PATH": str(tmp_path / "x")}
    done = run(command, *args, env=env)

    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    assert says in lines[0]
    assert "s3cret" not in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x").exists()  # no SQLite file made on the side


def test_ci_admin_manages_users_in_postgresql(postgres_url: str, tmp_path: Path) -> None:
    env = {"CI_DATABASE_URL": postgres_url, "CI_DB_PATH": str(tmp_path / "ci.db")}
    made = run("ci-admin", "user", "create", "--name", "Ada", "--email", "ada@x.org", env=env)
    assert made.returncode == 0, made.stderr
    key = run("ci-admin", "key", "create", "--email", "ada@x.org", "--name", "laptop", env=env)
    assert key.returncode == 0, key.stderr

    listed = run("ci-admin", "user", "list", env=env)
    assert "ada@x.org" in listed.stdout
    assert not (tmp_path / "ci.db").exists()  # the URL wins over the file


async def test_a_second_controller_on_postgresql_waits_as_a_standby_and_says_for_whom(
    postgres_url: str,
) -> None:
    held = await AdvisoryLock.try_acquire(
        postgres_url, key=CONTROLLER_LOCK_KEY, holder_hint="", name="ci-controller pid 7 on a"
    )
    standby = await asyncio.create_subprocess_exec(
        str(BIN / "ci-controller"),
        env={**os.environ, "CI_DATABASE_URL": postgres_url},
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert standby.stderr is not None
        line = (await asyncio.wait_for(standby.stderr.readline(), 30)).decode()
        assert standby.returncode is None  # waiting, not refusing
        standby.send_signal(signal.SIGTERM)
        rest = (await asyncio.wait_for(standby.communicate(), 20))[1].decode()
    finally:
        if standby.returncode is None:
            standby.kill()
            await standby.wait()
        await held.release()

    assert "standby: ci-controller pid 7 on a, connected from 127.0.0.1 since " in line
    assert "holds the controller lock of engine 'default' on postgresql://ci:***@127.0.0.1:" in line
    assert line.rstrip().endswith("taking over when it stops")
    assert standby.returncode == 0 and "standby stopped before taking over" in rest
    assert "Traceback" not in rest

"""The `ci-server` command: serves the API, and refuses a bad configuration in one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

CI_SERVER = str(Path(sys.executable).with_name("ci-server"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("command", "db_option"),
    [([CI_SERVER], False), ([sys.executable, "-m", "ci_server"], True)],
    ids=["ci-server with CI_DB_PATH", "python -m ci_server --db-path"],
)
def test_ci_server_serves_the_api(db_path: Path, command: list[str], db_option: bool) -> None:
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if k != "CI_DB_PATH"}
    if db_option:
        command = [*command, "--db-path", str(db_path)]
    else:
        environment["CI_DB_PATH"] = str(db_path)
    server = subprocess.Popen(
        [*command, "--port", str(port), "--log-level", "warning"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert server.poll() is None, server.communicate()[0]
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "ci-server did not start"
                time.sleep(0.05)
        assert health.json() == {"status": "ok", "database": "ok"}
        unauthorized = httpx.get(f"http://127.0.0.1:{port}/jobs")
        assert unauthorized.status_code == 401
        assert db_path.exists()
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0]
    assert f"database {db_path}, listening on http://127.0.0.1:{port}" in output


def test_ci_server_refuses_an_unusable_database(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = subprocess.run(
        [CI_SERVER, "--port", str(free_port())],
        env={**os.environ, "CI_DB_PATH": str(blocker / "ci.db")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "cannot open the database" in result.stderr
    assert "set CI_DB_PATH to a writable file" in result.stderr
    assert "Traceback" not in result.stderr


def test_ci_server_refuses_a_bad_setting(tmp_path: Path) -> None:
    result = subprocess.run(
        [CI_SERVER],
        env={**os.environ, "CI_DB_PATH": str(tmp_path / "ci.db"), "CI_MAX_UPLOAD_MB": "lots"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "invalid CI_* setting" in result.stderr
    assert "max_upload_mb" in result.stderr

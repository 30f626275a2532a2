"""Another process holding SQLite's write lock: the service waits, answers 503s, and recovers.

A held write lock makes every write of the controller wait. The job below prints one line,
sleeps, prints another and ends while the lock is held, so the controller's delayed log flush
is still waiting for the lock when the job's log is closed: the exact moment that used to leave
the connection inside a transaction forever (issue 9, item 1).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from harness import CIService, wait_until

pytestmark = pytest.mark.e2e

LOCK_HELD_SECONDS = 5.0


def write_project(root: Path) -> Path:
    root.mkdir()
    (root / "requirements.txt").write_text("")
    (root / "test_slow_end.py").write_text(
        "import time\n\n\n"
        "def test_prints_around_a_pause() -> None:\n"
        "    print('first line', flush=True)\n"
        "    time.sleep(2)\n"
        "    print('last line', flush=True)\n"
    )
    (root / "pytest.ini").write_text("[pytest]\naddopts = -s\n")
    return root


def test_a_job_ending_while_another_process_holds_the_write_lock_completes_once(
    service: CIService, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "project")
    job_id = service.submit(project)
    wait_until(lambda: "first line" in service.logs(job_id), within=60, what="the first line")

    holder = sqlite3.connect(service.db_path, timeout=10, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        held_until = time.monotonic() + LOCK_HELD_SECONDS
        # Meanwhile the job prints its last line and exits; readers are not blocked.
        wait_until(lambda: service.job(job_id)["status"] == "running", within=5, what="running")
        health = httpx.get(f"{service.base_url}/health", timeout=10)
        assert health.status_code == 503
        assert health.json()["status"] == "unhealthy"
        assert "locked" in health.json()["database"]
        assert health.headers["Retry-After"]
        wait_until(lambda: time.monotonic() > held_until or None, within=10, what="the lock")
    finally:
        holder.rollback()
        holder.close()

    job = service.wait_for_job(job_id)
    assert job["conclusion"] == "success", service.logs(job_id)
    log = service.logs(job_id)
    assert log.count("first line") == 1 and log.count("last line") == 1
    assert log.index("first line") < log.index("last line")

    # The controller is not wedged: the next job runs, and the first one did not run again.
    second = service.wait_for_job(service.submit(project))
    assert second["conclusion"] == "success"
    assert service.logs(job_id).count("first line") == 1
    assert httpx.get(f"{service.base_url}/health", timeout=10).status_code == 200
    controller = next(p for p in service.processes if p.name == "controller")
    assert "within a transaction" not in controller.output()

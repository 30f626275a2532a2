"""LISTEN/NOTIFY wake-ups on PostgreSQL, with real processes: the controller hears of new jobs
and the server of new log chunks through them (the polling safety nets are set to 60 s here,
so only a notice can make a job start or stream within seconds), and cutting both listener
connections mid-job loses and repeats no line, falls back to polling meanwhile, and the
wake-ups come back."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from datetime import datetime

import asyncpg
import pytest
from harness import (
    BIN,
    EXAMPLES,
    JOB_TIMEOUT,
    CIService,
    MakeService,
    StdoutLines,
    wait_until,
)

pytestmark = pytest.mark.e2e

SAFETY_NET_SECONDS = "60"
PROMPT_SECONDS = 25.0
"""Far below the safety nets even on a loaded machine; without notices a job waits for them."""
DISPATCH_SECONDS = 5.0
LISTENERS = "%wake-ups"


def listener_pids(service: CIService) -> list[int]:
    """The backend pids of this database's listener sessions (server and controller)."""
    rows = service.query(
        "SELECT pid FROM pg_stat_activity WHERE application_name LIKE ? "
        "AND datname = current_database() ORDER BY pid",
        LISTENERS,
    )
    return [int(str(pid)) for (pid,) in rows]


def dispatch_seconds(service: CIService, job_id: str) -> float:
    """From the job's insert to the controller marking it running."""
    [(created, started)] = service.query(
        "SELECT created_at, started_at FROM jobs WHERE id = ?", job_id
    )
    assert isinstance(created, datetime) and isinstance(started, datetime)
    return (started - created).total_seconds()


def cut(service: CIService, pids: list[int]) -> None:
    async def terminate() -> None:
        assert service.database_url is not None
        conn = await asyncpg.connect(service.database_url)
        try:
            for pid in pids:
                assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await conn.close()

    asyncio.run(terminate())


def test_cutting_the_listeners_mid_job_loses_no_line_and_wake_ups_resume(
    make_postgres_service: MakeService,
) -> None:
    service = make_postgres_service(
        env={
            "CI_RECONCILE_INTERVAL": SAFETY_NET_SECONDS,
            "CI_LOG_FULL_CHECK_INTERVAL": SAFETY_NET_SECONDS,
        }
    )
    before = wait_until(
        lambda: pids if len(pids := listener_pids(service)) == 2 else None,
        within=10,
        what="the server's and the controller's listeners",
    )
    submitted = time.monotonic()
    process = subprocess.Popen(
        [str(BIN / "ci"), "submit", "test", str(EXAMPLES / "numbered")],
        env=service.ci_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = StdoutLines(process)
    wait_until(lambda: out.has("line 001"), within=PROMPT_SECONDS, what="the first line")
    assert time.monotonic() - submitted < PROMPT_SECONDS  # dispatched and streamed by notices
    wait_until(lambda: out.has("line 030"), within=JOB_TIMEOUT, what="line 030")

    cut(service, before)
    after = wait_until(
        lambda: pids if len(pids := listener_pids(service)) == 2 else None,
        within=10,
        what="both listeners back",
    )
    stdout = out.text()
    _, stderr = process.communicate(timeout=JOB_TIMEOUT)

    assert process.returncode == 0, stderr
    assert re.findall(r"line \d{3}", stdout) == [f"line {n:03d}" for n in range(1, 101)]
    job_id = re.search(r"Job submitted: (\S+)", stderr)
    assert job_id
    assert stdout == service.logs(job_id.group(1))
    assert not set(after) & set(before)  # new sessions, not the old ones surviving
    [controller] = [p for p in service.processes if p.name == "controller"]
    [server] = [p for p in service.processes if p.name == "server"]
    for process_output, channel in (
        (controller.output(), "ci_queue"),
        (server.output(), "ci_jobs"),
    ):
        assert f"no wake-ups on {channel} (" in process_output
        assert "polling the database until the listener reconnects" in process_output

    again = time.monotonic()
    second = service.run_ci("submit", "test", str(EXAMPLES / "passing"))
    assert second.returncode == 0, second.stderr
    assert time.monotonic() - again < PROMPT_SECONDS  # streamed: woken again, not by the nets
    second_id = re.search(r"Job submitted: (\S+)", second.stderr)
    assert second_id
    for job in (job_id.group(1), second_id.group(1)):
        assert dispatch_seconds(service, job) < DISPATCH_SECONDS

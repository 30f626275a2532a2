"""A standby controller on PostgreSQL: it waits on the advisory lock while another controller
runs, takes over within seconds of that one dying, and adopts its running job so that a
client following the job sees every line exactly once. A controller whose lock connection
breaks stops instead of running jobs without the lock."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time

import asyncpg
import pytest
from harness import BIN, EXAMPLES, JOB_TIMEOUT, CIService, MakeService, ManagedProcess, wait_until

pytestmark = pytest.mark.e2e

TAKEOVER_SECONDS = 10.0


def numbered_lines(text: str) -> list[str]:
    return re.findall(r"line \d{3}", text)


NUMBERED = [f"line {n:03d}" for n in range(1, 101)]


def controllers(service: CIService) -> list[ManagedProcess]:
    return [p for p in service.processes if p.name == "controller"]


def end_lock_session(service: CIService, pid: int) -> int:
    """pg_terminate_backend of the session holding controller `pid`'s lock; how many ended."""

    async def terminate() -> int:
        assert service.database_url is not None
        conn = await asyncpg.connect(service.database_url)
        try:
            rows = await conn.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name LIKE $1 AND datname = current_database()",
                f"ci-controller pid {pid} on %",
            )
            return len(rows)
        finally:
            await conn.close()

    return asyncio.run(terminate())


def test_the_standby_adopts_a_killed_controllers_job_and_the_client_sees_every_line_once(
    make_postgres_service: MakeService,
) -> None:
    service = make_postgres_service()
    [active] = controllers(service)
    standby = service.start_controller(wait=False)
    standby.wait_for_output("standby: ")
    assert f"ci-controller pid {active.pid} on " in standby.output()
    assert "controller started" not in standby.output()

    job_id = service.submit(EXAMPLES / "numbered")
    follower = subprocess.Popen(
        [str(BIN / "ci"), "wait", job_id, "--all"],
        env=service.ci_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(
        lambda: "line 020" in service.logs(job_id), within=JOB_TIMEOUT, what="line 020 stored"
    )
    [(container_id,)] = service.query("SELECT container_id FROM jobs WHERE id = ?", job_id)

    active.kill9()
    killed_at = time.monotonic()
    standby.wait_for_output("controller started", within=TAKEOVER_SECONDS)
    took = time.monotonic() - killed_at
    stdout, stderr = follower.communicate(timeout=JOB_TIMEOUT)

    assert follower.returncode == 0, stderr
    assert numbered_lines(stdout) == NUMBERED  # none lost, none doubled
    assert stdout == service.logs(job_id)
    assert service.job(job_id)["conclusion"] == "success"
    assert service.query("SELECT container_id FROM jobs WHERE id = ?", job_id) == [
        (container_id,)
    ]  # adopted, not run again
    assert took < TAKEOVER_SECONDS


def test_a_controller_whose_lock_connection_breaks_stops_and_the_standby_takes_over(
    make_postgres_service: MakeService,
) -> None:
    service = make_postgres_service()
    [active] = controllers(service)
    standby = service.start_controller(wait=False)
    standby.wait_for_output("standby: ")

    assert end_lock_session(service, active.pid) == 1
    code = active.popen.wait(timeout=10)

    assert code == 1
    assert "Error: lost the controller lock of postgresql://" in active.output()
    assert "two controllers never run the same jobs" in active.output()
    standby.wait_for_output("controller started", within=TAKEOVER_SECONDS)
    job_id = service.submit(EXAMPLES / "passing")
    assert service.wait_for_job(job_id)["conclusion"] == "success"

"""Three server replicas on one PostgreSQL database: a job submitted through one is followed
through another, and when the replica serving the stream is killed mid-job the client resumes
on the next one (behind a failover front, as behind a load balancer) with no line lost or
doubled; any replica then answers for the job alike."""

from __future__ import annotations

import re
import subprocess
from urllib.parse import urlsplit

import httpx
import pytest
from failover_proxy import FailoverProxy
from harness import (
    BIN,
    EXAMPLES,
    JOB_TIMEOUT,
    STARTUP_TIMEOUT,
    MakeService,
    ManagedProcess,
    StdoutLines,
    wait_until,
)

pytestmark = pytest.mark.e2e

NUMBERED = [f"line {n:03d}" for n in range(1, 101)]


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_replica_killed_mid_stream_and_the_client_resumes_on_another(
    make_postgres_service: MakeService,
) -> None:
    service = make_postgres_service(server=False)
    replicas: list[tuple[ManagedProcess, str]] = []
    for _ in range(3):  # started together: their start-ups overlap
        process = service.start_server(wait=False)
        replicas.append((process, service.base_url))
    for _, url in replicas:
        # Three start-ups share the machine: three times one's allowance.
        wait_until(lambda url=url: healthy(url), within=3 * STARTUP_TIMEOUT, what=f"replica {url}")
    (_, first_url), (second, second_url), (_, third_url) = replicas
    assert len({port_of(url) for _, url in replicas}) == 3

    submitted = service.run_ci(
        "submit", "test", str(EXAMPLES / "numbered"), "--async", "-q", server=first_url
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    front = FailoverProxy([port_of(second_url), port_of(third_url)])
    try:
        follower = subprocess.Popen(
            [str(BIN / "ci"), "wait", job_id, "--all"],
            env=service.ci_env(server=front.url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out = StdoutLines(follower)
        wait_until(lambda: out.has("line 020"), within=JOB_TIMEOUT, what="line 020 at the client")
        assert front.served[port_of(third_url)] == 0  # so far all through the second replica

        second.kill9()  # mid-stream, no goodbye
        stdout = out.text()
        _, stderr = follower.communicate(timeout=JOB_TIMEOUT)
    finally:
        front.close()

    assert follower.returncode == 0, stderr
    assert "Lost the stream of job" in stderr
    assert front.served[port_of(third_url)] >= 1  # resumed on the third
    assert re.findall(r"line \d{3}", stdout) == NUMBERED  # none lost, none doubled
    for url in (first_url, third_url):
        again = service.run_ci("wait", job_id, "--all", server=url)
        assert again.returncode == 0, again.stderr
        assert again.stdout == stdout  # every live replica tells the same story

"""`/metrics` of a real server and a real controller during and after real jobs: the queue
(from the database, so both agree), what the controller started and finished, the log stored,
and `CI_METRICS_TOKEN` on both."""

from __future__ import annotations

import socket

import httpx
import pytest
from harness import EXAMPLES, CIService, MakeService, wait_until
from metrics_text import sample

pytestmark = pytest.mark.e2e

TOKEN = "e2e-metrics-token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(url: str) -> str:
    refused = httpx.get(url, timeout=10)
    assert refused.status_code == 401, refused.text
    assert "CI_METRICS_TOKEN" in refused.json()["detail"]
    response = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.text


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_server_and_controller_metrics_follow_real_jobs(
    backend: str, request: pytest.FixtureRequest
) -> None:
    make_service: MakeService = request.getfixturevalue(
        "make_postgres_service" if backend == "postgres" else "make_service"
    )
    port = free_port()
    service: CIService = make_service(
        env={
            "CI_METRICS_TOKEN": TOKEN,
            "CI_CONTROLLER_METRICS_PORT": str(port),
            "CI_MAX_PARALLEL_JOBS": "1",  # the second job waits: a queue to see
        }
    )
    endpoints = {
        "server": f"{service.base_url}/metrics",
        "controller": f"http://127.0.0.1:{port}/metrics",
    }

    sleeper = service.submit(EXAMPLES / "sleeping")
    wait_until(lambda: "sleeping now" in service.logs(sleeper), within=60, what="the test")
    waiting = service.submit(EXAMPLES / "passing")

    for url in endpoints.values():  # during: one running, one queued, the running one's log
        during = scrape(url)
        assert (sample(during, "ci_jobs_running"), sample(during, "ci_jobs_queued")) == (1, 1)
        assert sample(during, "ci_oldest_queued_job_age_seconds") >= 0
        assert sample(during, "ci_log_bytes_stored") == len(service.logs(sleeper).encode())
    during = scrape(endpoints["controller"])
    assert sample(during, "ci_jobs_started_total") == 1
    assert sample(during, "ci_job_dispatch_latency_seconds_count") == 1

    service.cancel(sleeper)
    assert service.wait_for_job(waiting)["conclusion"] == "success"
    assert service.wait_for_job(sleeper)["conclusion"] == "cancelled"

    stored = sum(len(service.logs(job).encode()) for job in (sleeper, waiting))
    for url in endpoints.values():  # after: nothing queued or running, both logs
        after = scrape(url)
        assert (sample(after, "ci_jobs_running"), sample(after, "ci_jobs_queued")) == (0, 0)
        assert sample(after, "ci_oldest_queued_job_age_seconds") == 0
        assert sample(after, "ci_log_bytes_stored") == stored
        assert sample(after, "ci_repository_errors_total") == 0
    after = scrape(endpoints["controller"])
    assert sample(after, "ci_jobs_started_total") == 2
    finished = {
        conclusion: sample(after, "ci_jobs_finished_total", conclusion=conclusion)
        for conclusion in ("success", "failure", "error", "cancelled", "timed_out")
    }
    assert finished == {"success": 1, "failure": 0, "error": 0, "cancelled": 1, "timed_out": 0}
    assert sample(after, "ci_job_duration_seconds_count") == 2
    server_after = scrape(endpoints["server"])
    assert sample(server_after, "ci_sse_followers") == 0
    assert sample(server_after, "ci_jobs_finished_total", conclusion="cancelled") == 0

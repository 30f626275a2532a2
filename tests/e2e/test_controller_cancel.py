"""Cancelling jobs through the API, queued and running, with a real controller and Docker."""

from __future__ import annotations

import pytest
from harness import EXAMPLES, CIService, MakeService, wait_until

pytestmark = pytest.mark.e2e


def test_a_cancelled_queued_job_never_gets_a_container(make_service: MakeService) -> None:
    service = make_service(controller=False)
    job_id = service.submit(EXAMPLES / "passing")

    cancelled = service.cancel(job_id)
    assert (cancelled["status"], cancelled["conclusion"]) == ("completed", "cancelled")

    service.start_controller()
    follower = service.submit(EXAMPLES / "passing")  # proof the controller is working
    assert service.wait_for_job(follower)["conclusion"] == "success"
    assert service.job(job_id)["conclusion"] == "cancelled"
    assert service.query("SELECT container_id FROM jobs WHERE id = ?", job_id) == [(None,)]
    assert service.logs(job_id) == ""


def test_a_cancelled_running_job_is_stopped_and_its_container_removed(
    service: CIService,
) -> None:
    job_id = service.submit(EXAMPLES / "sleeping")
    wait_until(lambda: "sleeping now" in service.logs(job_id), within=60, what="the test")

    service.cancel(job_id)

    job = service.wait_for_job(job_id, within=20)
    assert (job["conclusion"], job["success"]) == ("cancelled", False)
    log = service.logs(job_id)
    assert log.index("sleeping now") < log.index("[ci] cancelled on request")
    wait_until(lambda: service.job_containers() == [], within=20, what="the container's removal")

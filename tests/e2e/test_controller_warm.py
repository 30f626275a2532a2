"""The warm container on a real engine: a job runs in it, it is replaced, it prints nothing
while it waits, and a controller killed right after a claim leaves no job stuck."""

from __future__ import annotations

import pytest
from harness import EXAMPLES, CIService, MakeService, docker_client, wait_until

pytestmark = pytest.mark.e2e


def warm_container(service: CIService) -> str:
    """The unclaimed warm container, once the controller has one."""
    return wait_until(
        lambda: next((c for c in service.containers() if c not in service.job_containers()), None),
        within=30,
        what="a warm container",
    )


def docker_logs(container_id: str) -> bytes:
    client = docker_client()
    try:
        return bytes(client.api.logs(container_id, stdout=True, stderr=True))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType] -- untyped SDK
    finally:
        client.close()


def test_a_job_runs_in_the_warm_container_which_is_then_replaced(service: CIService) -> None:
    warm = warm_container(service)
    assert docker_logs(warm) == b""  # the bootstrap prints nothing while it waits

    job_id = service.submit(EXAMPLES / "passing")
    job = service.wait_for_job(job_id)

    assert job["conclusion"] == "success", job
    [(container_id,)] = service.query("SELECT container_id FROM jobs WHERE id = ?", job_id)
    assert container_id == warm
    assert "passed" in service.logs(job_id)
    # Which Python, and no note beyond saying nothing was installed.
    notes = [line for line in service.logs(job_id).splitlines() if line.startswith("[ci]")]
    assert notes[0].startswith("[ci] Python 3.")
    assert notes[1:] == ["[ci] dependencies: requirements.txt declares none"]
    wait_until(lambda: warm not in service.containers(), within=20, what="its removal")
    replacement = warm_container(service)
    assert replacement != warm
    assert service.job_containers() == []


def test_with_warm_containers_off_jobs_run_in_their_own(make_service: MakeService) -> None:
    service = make_service(env={"CI_WARM_CONTAINERS": "false"})
    job_id = service.submit(EXAMPLES / "passing")

    assert service.wait_for_job(job_id)["conclusion"] == "success"
    wait_until(lambda: service.containers() == [], within=20, what="no container at all")


def test_a_controller_killed_right_after_a_claim_leaves_no_job_stuck(
    service: CIService,
) -> None:
    warm = warm_container(service)
    [controller] = [p for p in service.processes if p.name == "controller"]

    job_id = service.submit(EXAMPLES / "passing")
    wait_until(
        lambda: service.query("SELECT status FROM jobs WHERE id = ?", job_id) == [("running",)],
        within=30,
        what="the job to be claimed",
    )
    controller.kill9()  # somewhere between the claim and the project's arrival, or just after
    service.start_controller()

    job = service.wait_for_job(job_id, within=60)
    assert job["conclusion"] in ("success", "error"), job
    if job["conclusion"] == "error":
        assert "submit the job again" in str(job["error"])
    wait_until(lambda: warm not in service.containers(), within=20, what="the old warm one gone")
    wait_until(lambda: service.job_containers() == [], within=20, what="no job container left")

"""Crashes, restarts and strangers on the engine: the controller's promises under real failure."""

from __future__ import annotations

import re
import time

import docker
import pytest
from docker.models.containers import Container
from harness import BIN, EXAMPLES, JOB_IMAGE, CIService, MakeService, docker_client, wait_until

pytestmark = pytest.mark.e2e

NUMBERED_LINES = [f"line {number:03d}" for number in range(1, 101)]


def numbered_lines(log: str) -> list[str]:
    return re.findall(r"line \d{3}", log)


def wait_for_log_line(service: CIService, job_id: str, line: str) -> None:
    wait_until(
        lambda: line in service.logs(job_id), within=60, what=f"{line!r} in job {job_id}'s log"
    )


def container_of(service: CIService, job_id: str) -> str:
    [(container_id,)] = service.query("SELECT container_id FROM jobs WHERE id = ?", job_id)
    assert isinstance(container_id, str)
    return container_id


def test_a_controller_killed_mid_job_resumes_without_losing_or_repeating_a_line(
    service: CIService,
) -> None:
    job_id = service.submit(EXAMPLES / "numbered")
    container_id = wait_until(
        lambda: service.query("SELECT container_id FROM jobs WHERE id = ?", job_id)[0][0],
        within=60,
        what="the job's container",
    )

    for line in ("line 020", "line 055"):
        wait_for_log_line(service, job_id, line)
        [controller] = [p for p in service.processes if p.name == "controller" and p.alive()]
        controller.kill9()
        service.start_controller()  # the lock died with the process: starts at once

    job = service.wait_for_job(job_id)
    assert job["conclusion"] == "success"
    assert numbered_lines(service.logs(job_id)) == NUMBERED_LINES
    assert container_of(service, job_id) == container_id  # adopted, not rerun


def test_sigterm_leaves_the_job_running_and_the_next_controller_adopts_it(
    service: CIService,
) -> None:
    job_id = service.submit(EXAMPLES / "numbered")
    wait_for_log_line(service, job_id, "line 010")
    [controller] = [p for p in service.processes if p.name == "controller"]

    assert controller.terminate() == 0
    client = docker_client()
    try:
        container = client.containers.get(container_of(service, job_id))
        assert container.status == "running"
    finally:
        client.close()
    assert service.containers() == [container.id]  # the unclaimed warm one was removed
    service.start_controller()

    job = service.wait_for_job(job_id)
    assert job["conclusion"] == "success"
    assert numbered_lines(service.logs(job_id)) == NUMBERED_LINES


def test_a_job_that_ended_while_no_controller_ran_is_finalized_with_its_whole_log(
    service: CIService,
) -> None:
    job_id = service.submit(EXAMPLES / "numbered")
    wait_for_log_line(service, job_id, "line 005")
    [controller] = [p for p in service.processes if p.name == "controller"]
    controller.kill9()
    client = docker_client()
    try:
        client.containers.get(container_of(service, job_id)).wait(timeout=60)
    finally:
        client.close()

    service.start_controller()

    job = service.wait_for_job(job_id, within=30)
    assert (job["conclusion"], job["exit_code"]) == ("success", 0)
    assert numbered_lines(service.logs(job_id)) == NUMBERED_LINES
    wait_until(lambda: service.job_containers() == [], within=20, what="the container's removal")


def test_a_job_whose_container_vanished_ends_as_error(service: CIService) -> None:
    job_id = service.submit(EXAMPLES / "sleeping")
    wait_for_log_line(service, job_id, "sleeping now")
    [controller] = [p for p in service.processes if p.name == "controller"]
    controller.kill9()
    client = docker_client()
    try:
        client.containers.get(container_of(service, job_id)).remove(force=True, v=True)
    finally:
        client.close()

    service.start_controller()

    job = service.wait_for_job(job_id, within=30)
    assert job["conclusion"] == "error"
    assert "vanished" in str(job["error"])


def test_a_second_controller_on_the_same_database_refuses_to_start(
    service: CIService,
) -> None:
    [first] = [p for p in service.processes if p.name == "controller"]

    started = time.monotonic()
    second = service.spawn("second-controller", [str(BIN / "ci-controller")])
    code = second.popen.wait(timeout=20)

    assert code != 0
    assert time.monotonic() - started < 10
    assert "already running" in second.output()
    assert f"pid {first.pid}" in second.output()
    assert first.alive()


def test_only_this_installations_orphans_are_removed(service: CIService) -> None:
    client = docker_client()
    mine = theirs = None
    try:
        labels = {"ci.installation": service.installation_id(), "ci.job_id": "not-a-job"}
        mine = _sleeper(client, labels)
        theirs = _sleeper(client, {"ci.installation": "someone-else", "ci.job_id": "x"})

        wait_until(lambda: mine.id not in service.containers(), within=20, what="orphan removal")

        theirs.reload()
        assert theirs.status == "running"
    finally:
        if theirs is not None:
            theirs.remove(force=True)
        client.close()


def _sleeper(client: docker.DockerClient, labels: dict[str, str]) -> Container:
    return client.containers.run(
        JOB_IMAGE, ["sleep", "300"], labels=labels, detach=True, network_mode="none"
    )


def test_a_controller_restarted_right_after_kill_9_starts_at_once(
    make_service: MakeService,
) -> None:
    service = make_service(server=False)
    [first] = [p for p in service.processes if p.name == "controller"]
    first.kill9()

    started = time.monotonic()
    service.start_controller()

    assert time.monotonic() - started < 10


def test_two_installations_on_one_engine_leave_each_other_alone(
    make_service: MakeService,
) -> None:
    first, second = make_service(), make_service()
    jobs = [(service, service.submit(EXAMPLES / "sleeping")) for service in (first, second)]
    for service, job_id in jobs:
        wait_for_log_line(service, job_id, "sleeping now")
    containers = {service.installation_id(): service.containers() for service, _ in jobs}
    working = {service.installation_id(): service.job_containers() for service, _ in jobs}

    time.sleep(2.5)  # let each controller run two full reconciles (CI_RECONCILE_INTERVAL=1)

    for service, job_id in jobs:
        assert service.job(job_id)["status"] == "running"
        assert service.job_containers() == working[service.installation_id()]
        assert set(containers[service.installation_id()]) <= set(service.containers())
        service.cancel(job_id)
        assert service.wait_for_job(job_id, within=20)["conclusion"] == "cancelled"

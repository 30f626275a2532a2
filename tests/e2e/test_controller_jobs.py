"""Jobs through the real server, controller and Docker: what a user sees for each outcome."""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

import pytest
from harness import EXAMPLES, CIService, MakeService, docker_client, wait_until

pytestmark = pytest.mark.e2e


def test_a_passing_project_succeeds_and_streams_pytests_output(service: CIService) -> None:
    messages = list(service.submit_stream(EXAMPLES / "passing"))

    assert messages[0]["type"] == "job_id"
    job_id = str(messages[0]["job_id"])
    complete = messages[-1]
    assert (complete["conclusion"], complete["success"], complete["exit_code"]) == (
        "success",
        True,
        0,
    )
    streamed = "".join(str(m["data"]) for m in messages if m["type"] == "log")
    assert "2 passed" in streamed
    assert streamed == service.logs(job_id)
    service.wait_for_job(job_id)
    # The upload is deleted in the background just after the job completes.
    wait_until(lambda: _no_archives_left(service), within=10, what="the upload to be deleted")


def test_a_failing_project_fails_with_pytests_exit_code(service: CIService) -> None:
    job_id = service.submit(EXAMPLES / "failing")

    job = service.wait_for_job(job_id)

    assert (job["conclusion"], job["success"], job["exit_code"]) == ("failure", False, 1)
    log = service.logs(job_id)
    assert "arithmetic is broken" in log
    assert "1 failed, 1 passed" in log


def test_tests_run_as_an_unprivileged_user_without_network(
    service: CIService, tmp_path: Path
) -> None:
    project = tmp_path / "probe"
    project.mkdir()
    (project / "requirements.txt").write_text("")
    (project / "test_probe.py").write_text(
        "import os, socket, pathlib\n"
        "def test_probe():\n"
        "    assert os.getuid() == 1000\n"
        "    assert '.ci-ready' not in os.listdir('.')\n"
        "    pathlib.Path('written.txt').write_text('ok')\n"
        "    try:\n"
        "        socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
        "    except OSError:\n"
        "        return\n"
        "    raise AssertionError('the test container reached the network')\n"
    )

    job = service.wait_for_job(service.submit(project))

    assert job["conclusion"] == "success", service.logs(str(job["id"]))


def test_a_failing_pip_install_ends_the_job_as_error_with_pips_output(
    service: CIService,
) -> None:
    job_id = service.submit(EXAMPLES / "bad-requirements")

    job = service.wait_for_job(job_id, within=180)

    assert job["conclusion"] == "error"
    assert job["exit_code"] is None
    assert "requirements.txt" in str(job["error"])
    log = service.logs(job_id)
    assert "ci-e2e-this-package-does-not-exist-7f3a" in log
    assert any(  # the installer's own words: uv's, or pip's on an image without uv
        words in log
        for words in ("was not found in the package registry", "No matching distribution")
    ), log
    assert str(job["error"]) in log


def test_a_job_past_its_timeout_is_stopped_as_timed_out(make_service: MakeService) -> None:
    service = make_service(env={"CI_JOB_TIMEOUT": "3"})
    job_id = service.submit(EXAMPLES / "sleeping")

    job = service.wait_for_job(job_id, within=30)

    assert job["conclusion"] == "timed_out"
    log = service.logs(job_id)
    assert "sleeping now" in log
    assert "timed out after 3 s (CI_JOB_TIMEOUT)" in log


def test_a_missing_job_image_ends_the_job_as_error_saying_how_to_build_one(
    make_service: MakeService,
) -> None:
    service = make_service(env={"CI_JOB_IMAGE": "ci-e2e-no-such-image:never"})
    job_id = service.submit(EXAMPLES / "passing")

    job = service.wait_for_job(job_id, within=60)

    assert job["conclusion"] == "error"
    assert "scripts/build-job-image" in str(job["error"])
    assert "scripts/build-job-image" in service.logs(job_id)


def test_no_container_is_left_after_many_jobs(make_service: MakeService) -> None:
    service = make_service(env={"CI_MAX_PARALLEL_JOBS": "2"})
    projects = [EXAMPLES / "passing", EXAMPLES / "failing"] * 4
    job_ids = [service.submit(project) for project in projects]

    jobs = [service.wait_for_job(job_id) for job_id in job_ids]

    assert [job["conclusion"] for job in jobs] == ["success", "failure"] * 4, "\n".join(
        f"{job['id']}: {job['conclusion']} (exit code {job['exit_code']}): {job['error']}"
        for job in jobs
    )
    wait_until(lambda: service.job_containers() == [], within=20, what="containers to be removed")
    assert service.dangling_volumes() == []  # their workspaces went with them
    wait_until(lambda: _no_archives_left(service), within=10, what="the uploads to be deleted")


def test_dependencies_are_installed_once_and_reused(service: CIService) -> None:
    first = service.submit(EXAMPLES / "with-dependencies")
    assert service.wait_for_job(first, within=180)["conclusion"] == "success", service.logs(first)
    second = service.submit(EXAMPLES / "with-dependencies")
    assert service.wait_for_job(second)["conclusion"] == "success"

    # A cold job installs in its own container; the image the second one reuses is made after.
    assert "[ci] installing the dependencies in this job's container" in service.logs(first)
    assert "six" in service.logs(first)
    assert "[ci] installing" not in service.logs(second)


def test_requirements_the_job_image_has_need_no_install(service: CIService, tmp_path: Path) -> None:
    project = tmp_path / "pytest-only"
    project.mkdir()
    (project / "requirements.txt").write_text("pytest\n")
    (project / "test_it.py").write_text("def test_it():\n    pass\n")

    job_id = service.submit(project)

    assert service.wait_for_job(job_id)["conclusion"] == "success"
    assert "[ci] installing" not in service.logs(job_id)


def test_least_recently_used_dependency_images_are_collected(
    make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service(env={"CI_MAX_DEPENDENCY_IMAGES": "1"})
    for version in ("1.16.0", "1.15.0"):
        project = tmp_path / f"six-{version}"
        project.mkdir()
        (project / "requirements.txt").write_text(f"six=={version}\n")
        (project / "test_six.py").write_text(
            f"import six\ndef test_version():\n    assert six.__version__ == {version!r}\n"
        )
        job_id = service.submit(project)
        assert service.wait_for_job(job_id, within=180)["conclusion"] == "success", service.logs(
            job_id
        )

    def dependency_images() -> list[str]:
        client = docker_client()
        try:
            label = f"ci.installation={service.installation_id()}"
            return [
                tag for image in client.images.list(filters={"label": label}) for tag in image.tags
            ]
        finally:
            client.close()

    wait_until(lambda: len(dependency_images()) == 1, within=30, what="collection")


def test_output_is_readable_within_a_quarter_second_of_being_printed(
    service: CIService, tmp_path: Path
) -> None:
    project = tmp_path / "clock"
    project.mkdir()
    (project / "requirements.txt").write_text("")
    (project / "pytest.ini").write_text("[pytest]\naddopts = -s\n")
    (project / "test_clock.py").write_text(
        "import time\n"
        "def test_clock():\n"
        "    for _ in range(25):\n"
        "        print(f'stamp {time.time():.3f}', flush=True)\n"
        "        time.sleep(0.1)\n"
    )
    job_id = service.submit(project)

    delays: dict[str, float] = {}
    deadline = time.monotonic() + 60
    while service.job(job_id)["status"] != "completed" and time.monotonic() < deadline:
        now = time.time()
        for stamp in re.findall(r"stamp (\d+\.\d+)", service.logs(job_id)):
            delays.setdefault(stamp, now - float(stamp))
        time.sleep(0.01)

    assert len(delays) >= 20
    assert statistics.median(delays.values()) < 0.25, sorted(delays.values())


def _no_archives_left(service: CIService) -> bool:
    return service.query("SELECT COUNT(*) FROM job_archives") == [(0,)]

"""The real `ci` command against a real server, controller and Docker: what a user sees and
the exit code a script gets, for each way a job can end, and every command around a job."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from harness import BIN, EXAMPLES, JOB_TIMEOUT, CIService, MakeService, wait_until

pytestmark = pytest.mark.e2e

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def ci(service: CIService, *args: str) -> subprocess.CompletedProcess[str]:
    return service.run_ci(*args)


def submitted_id(output: str) -> str:
    match = re.search(r"Job submitted: (\S+)", output)
    assert match, output
    assert UUID.fullmatch(match.group(1)), match.group(1)
    return match.group(1)


def test_a_passing_project_exits_0_with_pytests_output_on_stdout(service: CIService) -> None:
    result = ci(service, "submit", "test", str(EXAMPLES / "sample-project"))

    assert result.returncode == 0, result.stderr
    assert "6 passed" in result.stdout
    assert "test_total_sums_every_item PASSED" in result.stdout
    job_id = submitted_id(result.stderr)
    assert "Job submitted" not in result.stdout
    assert service.job(job_id)["conclusion"] == "success"
    assert result.stdout == service.logs(job_id)


def test_a_failing_project_exits_1(service: CIService) -> None:
    result = ci(service, "submit", "test", str(EXAMPLES / "failing"))

    assert result.returncode == 1, result.stderr
    assert "1 failed, 1 passed" in result.stdout
    assert "some tests failed" in result.stderr


def test_a_project_without_tests_exits_5(service: CIService, tmp_path: Path) -> None:
    project = tmp_path / "empty"
    project.mkdir()
    (project / "requirements.txt").write_text("")
    (project / "helper.py").write_text("VALUE = 1\n")

    result = ci(service, "submit", "test", str(project))

    assert result.returncode == 5, result.stderr
    assert "no tests were collected" in result.stderr


def test_a_job_that_cannot_install_its_dependencies_exits_70_with_the_reason(
    service: CIService,
) -> None:
    result = ci(service, "submit", "test", str(EXAMPLES / "bad-requirements"))

    assert result.returncode == 70, result.stderr
    job = service.job(submitted_id(result.stderr))
    assert job["conclusion"] == "error"
    assert f"could not run: {job['error']}" in result.stderr
    assert "ci-e2e-this-package-does-not-exist-7f3a" in result.stdout  # pip's own output


def test_a_job_past_its_timeout_exits_124(make_service: MakeService) -> None:
    service = make_service(env={"CI_JOB_TIMEOUT": "3"})

    result = ci(service, "submit", "test", str(EXAMPLES / "sleeping"))

    assert result.returncode == 124, result.stderr
    assert "sleeping now" in result.stdout
    assert "timed out" in result.stderr


def test_async_then_wait_then_list_and_logs(service: CIService) -> None:
    submitted = ci(service, "submit", "test", "--async", str(EXAMPLES / "passing"))
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted_id(submitted.stdout)
    assert submitted.stdout == f"Job submitted: {job_id}\n"

    waited = ci(service, "wait", job_id, "--all")
    assert waited.returncode == 0, waited.stderr
    assert "2 passed" in waited.stdout

    listed = ci(service, "list")
    assert listed.returncode == 0
    [row] = [line.split() for line in listed.stdout.splitlines()[1:]]
    # ID, PROJECT (the directory's name), COMMIT and BRANCH (of this checkout), STATUS, ...
    assert [row[0], row[1], *row[4:6]] == [job_id[:8], "passing", "completed", "success"]

    logs = ci(service, "logs", job_id[:8])
    assert (logs.returncode, logs.stdout) == (0, service.logs(job_id))

    status = ci(service, "status", job_id, "--json")
    assert '"exit_code": 0' in status.stdout


def test_cancel_a_running_job_and_wait_exits_130(service: CIService) -> None:
    submitted = ci(service, "submit", "test", "--async", str(EXAMPLES / "sleeping"))
    job_id = submitted_id(submitted.stdout)
    service.wait_for_status(job_id, "running")
    wait_until(
        lambda: "sleeping now" in service.logs(job_id), within=JOB_TIMEOUT, what="the test to run"
    )

    cancelled = ci(service, "cancel", job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert job_id in cancelled.stderr

    waited = ci(service, "wait", job_id)
    assert waited.returncode == 130, waited.stderr
    assert "cancelled" in waited.stderr
    assert service.job(job_id)["conclusion"] == "cancelled"
    wait_until(lambda: not service.job_containers(), within=JOB_TIMEOUT, what="no containers left")


def test_an_unknown_job_exits_66_and_a_bad_key_77(service: CIService) -> None:
    unknown = ci(service, "status", "00000000-0000-4000-8000-000000000000")
    assert unknown.returncode == 66
    bad_key = subprocess.run(
        [str(BIN / "ci"), "list", "--server", service.base_url, "--api-key", "ci_" + "x" * 43],
        env={**service.env, "HOME": str(service.root)},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert bad_key.returncode == 77
    assert "rejected the API key" in bad_key.stderr

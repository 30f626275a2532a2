"""Scripts' view of the real `ci` and `ci-admin`: ids to take from their output, `--json`,
short ids resolved by the server over all of a user's jobs, `ci logs -f`."""

from __future__ import annotations

import json
import uuid

import pytest
from harness import EXAMPLES, CIService, MakeService

pytestmark = pytest.mark.e2e


def test_a_script_submits_waits_and_finds_a_failed_job_by_its_short_id(
    service: CIService,
) -> None:
    submitted = service.run_ci("submit", "test", str(EXAMPLES / "failing"), "--async", "--json")
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["job_id"]
    short = job_id[:8]

    waited = service.run_ci("wait", short, "--json")
    assert waited.returncode == 1, waited.stderr
    assert json.loads(waited.stdout)["id"] == job_id

    failed = json.loads(service.run_ci("list", "--conclusion", "failure", "--json").stdout)
    assert [job["id"] for job in failed] == [job_id]
    assert json.loads(service.run_ci("list", "--conclusion", "success", "--json").stdout) == []
    status = json.loads(service.run_ci("status", short, "--json").stdout)
    assert (status["id"], status["conclusion"]) == (job_id, "failure")

    followed = service.run_ci("logs", "-f", short)
    assert followed.returncode == 1
    assert followed.stdout == service.logs(job_id)
    assert "failed" in followed.stdout

    quiet = service.run_ci("submit", "test", str(EXAMPLES / "passing"), "--async", "-q")
    assert quiet.returncode == 0
    assert str(uuid.UUID(quiet.stdout.strip())) == quiet.stdout.strip()


def test_ci_admin_ids_are_uuids_that_scripts_take_from_its_output(
    make_service: MakeService,
) -> None:
    service = make_service(controller=False)  # no job runs here
    made = service.admin("user", "create", "--name", "Bo", "--email", "bo@example.org", "--json")
    assert made.returncode == 0, made.stderr
    user = json.loads(made.stdout)
    assert str(uuid.UUID(user["id"])) == user["id"]
    key = json.loads(
        service.admin("key", "create", "--user-id", user["id"][:8], "--name", "s", "--json").stdout
    )
    me = service.run_ci("--api-key", key["key"], "whoami", "--json")
    assert json.loads(me.stdout) == {"id": user["id"], "name": "Bo", "email": "bo@example.org"}
    assert service.admin("key", "revoke", key["id"][:8]).returncode == 0
    assert service.run_ci("--api-key", key["key"], "whoami").returncode == 77

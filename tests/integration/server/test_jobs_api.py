"""The JSON and text endpoints: submit-async, list, get, logs, cancel, and isolation."""

from __future__ import annotations

import json
from uuid import UUID

import httpx
import pytest

from ci_common.models import JobConclusion, JobId, JobStatus
from ci_common.repository import Repository
from ci_persistence import SqliteRepository
from ci_persistence.postgres import PostgresRepository

from .conftest import Account, project_zip, zip_upload

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)

JOB_VIEW_FIELDS = {
    "artifacts",
    "id",
    "status",
    "conclusion",
    "success",
    "exit_code",
    "error",
    "cancel_requested",
    "created_at",
    "started_at",
    "finished_at",
    "attempts",
    "project",
    "extras",
    "groups",
    "git",
    "pytest_args",
    "env",
    "python",
    "engine",
    "tests",
    "content_hash",
    "rerun_of",
}


async def submit(api: httpx.AsyncClient, account: Account) -> str:
    response = await api.post(
        "/submit-async", headers=account.headers, files=zip_upload(project_zip())
    )
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


async def test_submit_async_stores_a_queued_job_with_its_archive(
    api: httpx.AsyncClient, repo: Repository, alice: Account
) -> None:
    archive = project_zip()
    response = await api.post("/submit-async", headers=alice.headers, files=zip_upload(archive))

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    job = await repo.get_job(JobId(body["job_id"]))
    assert job.user_id == alice.user.id
    assert job.status is JobStatus.QUEUED
    assert await repo.get_archive(job.id) == archive


async def test_pyproject_is_enough(
    api: httpx.AsyncClient, repo: Repository, alice: Account
) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("pyproject.toml", "[project]\nname = 'x'\n")
        archive.writestr("src/", "")
        archive.writestr("tests/test_x.py", "def test_x(): pass\n")
    response = await api.post(
        "/submit-async", headers=alice.headers, files=zip_upload(buffer.getvalue())
    )
    assert response.status_code == 202, response.text


async def test_get_job_returns_the_documented_fields(
    api: httpx.AsyncClient, alice: Account
) -> None:
    job_id = await submit(api, alice)
    response = await api.get(f"/jobs/{job_id}", headers=alice.headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == JOB_VIEW_FIELDS
    assert body["id"] == job_id
    assert body["status"] == "queued"
    assert body["conclusion"] is None and body["success"] is None


async def test_get_job_accepts_an_upper_case_id(api: httpx.AsyncClient, alice: Account) -> None:
    job_id = await submit(api, alice)
    response = await api.get(f"/jobs/{job_id.upper()}", headers=alice.headers)
    assert response.status_code == 200
    assert response.json()["id"] == job_id


async def test_list_is_newest_first_and_only_the_callers(
    api: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    first = await submit(api, alice)
    second = await submit(api, alice)
    await submit(api, bob)

    response = await api.get("/jobs", headers=alice.headers)
    assert response.status_code == 200
    assert [job["id"] for job in response.json()] == [second, first]


async def test_list_filters_by_status_and_limits(
    api: httpx.AsyncClient, repo: Repository, alice: Account
) -> None:
    ids = [await submit(api, alice) for _ in range(3)]
    await repo.mark_running(JobId(ids[0]), container_id=None)

    running = await api.get("/jobs", params={"status": "running"}, headers=alice.headers)
    assert [job["id"] for job in running.json()] == [ids[0]]
    limited = await api.get("/jobs", params={"limit": 2}, headers=alice.headers)
    assert [job["id"] for job in limited.json()] == [ids[2], ids[1]]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"limit": 0}, "query limit: Input should be greater than or equal to 1"),
        ({"limit": 501}, "query limit: Input should be less than or equal to 500"),
        ({"limit": "many"}, "query limit: Input should be a valid integer"),
        ({"status": "done"}, "query status: Input should be 'queued', 'running' or 'completed'"),
    ],
)
async def test_bad_list_parameters_are_422_with_a_readable_detail(
    api: httpx.AsyncClient, alice: Account, params: dict[str, str | int], fragment: str
) -> None:
    response = await api.get("/jobs", params=params, headers=alice.headers)
    assert response.status_code == 422
    assert fragment in response.json()["detail"]


async def test_logs_are_the_concatenated_chunks_as_text(
    api: httpx.AsyncClient, repo: Repository, alice: Account
) -> None:
    job_id = JobId(await submit(api, alice))
    empty = await api.get(f"/jobs/{job_id}/logs", headers=alice.headers)
    assert empty.status_code == 200
    assert empty.text == ""
    for line in ["collecting ... ", "1 item\n", "test_ok.py . ✓\n"]:
        await repo.append_log(job_id, line, cursor=None)

    response = await api.get(f"/jobs/{job_id}/logs", headers=alice.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "collecting ... 1 item\ntest_ok.py . ✓\n"


async def test_cancel_a_queued_job_completes_it_at_once(
    api: httpx.AsyncClient, repo: Repository, alice: Account
) -> None:
    job_id = await submit(api, alice)
    response = await api.post(f"/jobs/{job_id}/cancel", headers=alice.headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["conclusion"], body["success"]) == (
        "completed",
        "cancelled",
        False,
    )
    assert body["cancel_requested"] is True

    again = await api.post(f"/jobs/{job_id}/cancel", headers=alice.headers)
    assert again.status_code == 200
    assert again.json() == body


async def test_cancel_a_running_job_flags_it_for_the_controller(
    api: httpx.AsyncClient, repo: Repository, alice: Account
) -> None:
    job_id = JobId(await submit(api, alice))
    await repo.mark_running(job_id, container_id="c1")
    response = await api.post(f"/jobs/{job_id}/cancel", headers=alice.headers)
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["cancel_requested"]) == ("running", True)
    assert (await repo.get_job(job_id)).cancel_requested


async def test_cancel_a_completed_job_changes_nothing(
    api: httpx.AsyncClient, repo: Repository, alice: Account
) -> None:
    job_id = JobId(await submit(api, alice))
    await repo.mark_running(job_id, container_id=None)
    await repo.complete_job(job_id, conclusion=JobConclusion.FAILURE, exit_code=1)
    response = await api.post(f"/jobs/{job_id}/cancel", headers=alice.headers)
    assert response.status_code == 200
    assert (response.json()["conclusion"], response.json()["cancel_requested"]) == (
        "failure",
        False,
    )


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("GET", "/logs"), ("GET", "/stream"), ("POST", "/cancel")],
)
async def test_another_users_job_is_404_everywhere(
    api: httpx.AsyncClient,
    repo: Repository,
    alice: Account,
    bob: Account,
    method: str,
    suffix: str,
) -> None:
    job_id = JobId(await submit(api, alice))
    await repo.complete_job(job_id, conclusion=JobConclusion.SUCCESS, exit_code=0)

    response = await api.request(method, f"/jobs/{job_id}{suffix}", headers=bob.headers)
    assert response.status_code == 404
    assert response.json() == {"detail": f"job {job_id} not found; `ci list` shows your jobs"}
    assert (await repo.get_job(job_id)).cancel_requested is False
    assert (await api.get("/jobs", headers=bob.headers)).json() == []


@pytest.mark.parametrize(
    "job_id", ["nope", "12345678", "00000000-0000-4000-8000-000000000000", "%20"]
)
@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("GET", "/logs"), ("POST", "/cancel")])
async def test_unknown_or_malformed_ids_are_404(
    api: httpx.AsyncClient, alice: Account, job_id: str, method: str, suffix: str
) -> None:
    response = await api.request(method, f"/jobs/{job_id}{suffix}", headers=alice.headers)
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]


async def test_openapi_documents_every_endpoint_and_field(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    assert set(schema["paths"]) == {
        "/submit",
        "/submit-stream",
        "/submit-async",
        "/jobs",
        "/jobs/{job_id}",
        "/jobs/{job_id}/stream",
        "/jobs/{job_id}/logs",
        "/jobs/{job_id}/cancel",
        "/jobs/{job_id}/tests",
        "/tests/flaky",
        "/jobs/{job_id}/artifacts",
        "/jobs/{job_id}/artifacts/{path}",
        "/limits",
        "/runtimes",
        "/engines",
        "/whoami",
        "/health",
        "/metrics",
    }
    listed = schema["paths"]["/jobs/{job_id}/artifacts"]["get"]["responses"]["200"]
    assert "ArtifactView" in json.dumps(listed)
    download = schema["paths"]["/jobs/{job_id}/artifacts/{path}"]["get"]["responses"]
    assert "application/octet-stream" in download["200"]["content"]
    assert "404" in download
    job_view = schema["components"]["schemas"]["JobView"]["properties"]
    assert set(job_view) == JOB_VIEW_FIELDS
    assert all(field.get("description") for field in job_view.values())
    assert "ApiKey" in schema["components"]["securitySchemes"]
    assert (await api.get("/docs")).status_code == 200


async def _job_with_id(repo: Repository, account: Account, job_id: str) -> str:
    """A job of `account` whose id is chosen (random ids rarely share 8 characters)."""
    made = await repo.create_job(user_id=account.user.id, archive=project_zip())
    await repo.delete_archive(made.id)
    # A test choosing colliding ids reaches past the protocol, in each backend's own SQL.
    if isinstance(repo, PostgresRepository):
        await repo._db.execute("UPDATE jobs SET id = $1 WHERE id = $2", UUID(job_id), UUID(made.id))  # pyright: ignore[reportPrivateUsage]
    else:
        assert isinstance(repo, SqliteRepository)
        await repo._db.execute("UPDATE jobs SET id = ? WHERE id = ?", (job_id, made.id))  # pyright: ignore[reportPrivateUsage]
    return job_id


async def test_a_unique_prefix_of_8_names_any_of_your_jobs_and_an_ambiguous_one_is_409(
    api: httpx.AsyncClient, repo: Repository, alice: Account, bob: Account
) -> None:
    first = await _job_with_id(repo, alice, "abcdef01-1111-4111-8111-111111111111")
    await _job_with_id(repo, alice, "abcdef01-2222-4222-8222-222222222222")
    only = await _job_with_id(repo, alice, "12345678-3333-4333-8333-333333333333")
    for _ in range(3):  # older than the newest jobs: a prefix is not limited to recent ones
        await submit(api, alice)
    await _job_with_id(repo, bob, "99999999-4444-4444-8444-444444444444")

    found = await api.get("/jobs/12345678", headers=alice.headers)
    assert found.status_code == 200 and found.json()["id"] == only
    assert (await api.get("/jobs/12345678/logs", headers=alice.headers)).status_code == 200
    assert (await api.get("/jobs/abcdef01-1", headers=alice.headers)).json()["id"] == first

    ambiguous = await api.get("/jobs/abcdef01", headers=alice.headers)
    assert ambiguous.status_code == 409
    assert "ambiguous" in ambiguous.json()["detail"]
    assert (await api.get("/jobs/1234567", headers=alice.headers)).status_code == 404
    assert (await api.get("/jobs/99999999", headers=alice.headers)).status_code == 404
    assert (await api.get("/jobs/99999999", headers=bob.headers)).status_code == 200


async def test_list_filters_by_conclusion(
    api: httpx.AsyncClient, repo: Repository, alice: Account
) -> None:
    failed = await submit(api, alice)
    await submit(api, alice)
    await repo.mark_running(JobId(failed), container_id=None)
    await repo.complete_job(JobId(failed), conclusion=JobConclusion.FAILURE, exit_code=1)
    listed = await api.get("/jobs?conclusion=failure", headers=alice.headers)
    assert [job["id"] for job in listed.json()] == [failed]
    assert (await api.get("/jobs?conclusion=bogus", headers=alice.headers)).status_code == 422


async def test_whoami_names_the_keys_owner(api: httpx.AsyncClient, alice: Account) -> None:
    response = await api.get("/whoami", headers=alice.headers)
    assert response.status_code == 200
    assert response.json() == {
        "id": alice.user.id,
        "name": alice.user.name,
        "email": alice.user.email,
    }
    assert (await api.get("/whoami")).status_code == 401

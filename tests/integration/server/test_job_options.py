"""What a submit asks of its job beyond the files: pytest arguments, environment, project and
git provenance, on every submit endpoint; the 422s for what breaks a rule; `GET /limits`; and
`GET /jobs?project=`."""

from __future__ import annotations

import json

import httpx
import pytest

from ci_common.job_options import (
    MAX_ENV_VALUE_BYTES,
    MAX_PYTEST_ARG_BYTES,
    MAX_PYTEST_ARGS,
    MAX_PYTEST_ARGS_BYTES,
)
from ci_common.models import GitInfo, JobConclusion
from ci_persistence import SqliteRepository

from .conftest import Account, project_zip, zip_upload

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OPTIONS = {
    "pytest_args": json.dumps(["-k", "parse and not slow", "-x"]),
    "env": json.dumps({"FOO": "bar", "EMPTY": "", "_under": "ü"}),
    "project": "inventory",
    "git": json.dumps({"commit": COMMIT, "branch": "main", "dirty": True}),
    "extras": json.dumps(["test", "docs"]),
    "groups": json.dumps([]),
    "artifacts": json.dumps(["coverage.xml", "htmlcov/**"]),
}
TIMEOUT = httpx.Timeout(10.0)


@pytest.mark.parametrize("endpoint", ["/submit", "/submit-stream", "/submit-async"])
async def test_every_submit_endpoint_stores_the_options_with_the_job(
    live_server: str, repo: SqliteRepository, alice: Account, endpoint: str
) -> None:
    async with (
        httpx.AsyncClient(base_url=live_server, timeout=TIMEOUT) as client,
        client.stream(
            "POST", endpoint, headers=alice.headers, files=zip_upload(project_zip()), data=OPTIONS
        ) as response,
    ):
        assert response.status_code in (200, 202)
        [job] = await repo.list_jobs()
        await repo.complete_job(job.id, conclusion=JobConclusion.CANCELLED)  # ends the streams
        await response.aread()
    assert job.pytest_args == ("-k", "parse and not slow", "-x")
    assert job.env == {"FOO": "bar", "EMPTY": "", "_under": "ü"}
    assert job.project == "inventory"
    assert job.git == GitInfo(commit=COMMIT, branch="main", dirty=True)
    assert (job.extras, job.groups) == (("test", "docs"), ())
    assert job.artifacts == ("coverage.xml", "htmlcov/**")


async def test_the_job_json_shows_what_was_asked_and_tested(
    api: httpx.AsyncClient, alice: Account
) -> None:
    response = await api.post(
        "/submit-async", headers=alice.headers, files=zip_upload(project_zip()), data=OPTIONS
    )
    assert response.status_code == 202, response.text
    body = (await api.get(f"/jobs/{response.json()['job_id']}", headers=alice.headers)).json()
    assert body["pytest_args"] == ["-k", "parse and not slow", "-x"]
    assert body["env"] == {"FOO": "bar", "EMPTY": "", "_under": "ü"}
    assert body["project"] == "inventory"
    assert body["git"] == {"commit": COMMIT, "branch": "main", "dirty": True}
    assert (body["extras"], body["groups"]) == (["test", "docs"], [])


async def test_a_submit_without_options_asks_for_nothing(
    api: httpx.AsyncClient, alice: Account
) -> None:
    response = await api.post(
        "/submit-async", headers=alice.headers, files=zip_upload(project_zip())
    )
    body = (await api.get(f"/jobs/{response.json()['job_id']}", headers=alice.headers)).json()
    assert (body["pytest_args"], body["env"], body["project"], body["git"]) == ([], {}, None, None)
    assert (body["extras"], body["groups"]) == (None, None)  # the automatic choice


BAD_OPTIONS = [
    ({"pytest_args": "-k parse"}, "pytest_args is not valid JSON"),
    ({"pytest_args": '"-k"'}, "pytest_args must be a JSON array of strings"),
    ({"pytest_args": "[1, 2]"}, "pytest_args must be a JSON array of strings"),
    ({"pytest_args": json.dumps(["a\0b"])}, "pytest_args[0] contains a NUL"),
    ({"pytest_args": json.dumps(["x"] * (MAX_PYTEST_ARGS + 1))}, "more than the 256 allowed"),
    (
        {"pytest_args": json.dumps(["x" * (MAX_PYTEST_ARG_BYTES + 1)])},
        "over the 4096-byte limit per argument",
    ),
    (
        {"pytest_args": json.dumps(["x" * 4000] * (MAX_PYTEST_ARGS_BYTES // 4000 + 1))},
        "pytest_args total",
    ),
    ({"pytest_args": '["\\ud800"]'}, "not valid Unicode"),
    ({"env": '["FOO=bar"]'}, "env must be a JSON object of strings"),
    ({"env": '{"FOO": 1}'}, "env must be a JSON object of strings"),
    ({"env": '{"1FOO": "x"}'}, "'1FOO' is not a valid variable name"),
    ({"env": '{"FOO-BAR": "x"}'}, "is not a valid variable name"),
    ({"env": '{"": "x"}'}, "is not a valid variable name"),
    ({"env": '{"CI": "false"}'}, "env name CI is set by the CI service itself"),
    ({"env": '{"CI_JOB_ID": "x"}'}, "env name CI_JOB_ID is set by the CI service itself"),
    ({"env": '{"FOO": "a\\u0000b"}'}, "env FOO contains a NUL"),
    ({"env": json.dumps({"FOO": "x" * (MAX_ENV_VALUE_BYTES + 1)})}, "per value"),
    ({"project": "a\nb"}, "project must be a name"),
    ({"project": "p" * 256}, "project must be a name"),
    ({"git": '{"commit": "abc"}'}, "git.commit must be a full lowercase commit hash"),
    ({"git": json.dumps({"commit": COMMIT, "branch": "main"})}, "git.dirty must be true"),
    ({"git": json.dumps({"commit": COMMIT, "dirty": 0})}, "git.dirty must be true"),
    ({"git": json.dumps({"commit": COMMIT, "dirty": False, "x": 1})}, "git has unknown keys"),
    ({"git": "[]"}, "git must be a JSON object"),
    ({"extras": '"test"'}, "extras must be a JSON array of strings"),
    ({"extras": '["te st"]'}, "extras: 'te st' is not a valid name"),
    ({"groups": json.dumps(["-lint"])}, "groups: '-lint' is not a valid name"),
    ({"groups": json.dumps([f"g{i}" for i in range(33)])}, "more than the 32 allowed"),
    ({"artifacts": "coverage.xml"}, "artifacts is not valid JSON"),
    ({"artifacts": '"coverage.xml"'}, "artifacts must be a JSON array of glob patterns"),
    ({"artifacts": json.dumps(["../etc/passwd"])}, "must stay inside the project"),
    ({"artifacts": json.dumps(["/etc/*"])}, "must stay inside the project"),
    ({"artifacts": json.dumps(["a\\b"])}, "a backslash"),
    ({"artifacts": json.dumps([""])}, "must be a glob pattern of 1 to 1024"),
    ({"artifacts": json.dumps(["x"] * 33)}, "more than the 32 allowed"),
]


@pytest.mark.parametrize(("fields", "words"), BAD_OPTIONS)
async def test_options_that_break_a_rule_are_422_saying_what_to_fix(
    api: httpx.AsyncClient,
    repo: SqliteRepository,
    alice: Account,
    fields: dict[str, str],
    words: str,
) -> None:
    response = await api.post(
        "/submit-async", headers=alice.headers, files=zip_upload(project_zip()), data=fields
    )
    assert response.status_code == 422, response.text
    assert words in response.json()["detail"]
    assert await repo.list_jobs() == []


@pytest.mark.parametrize("endpoint", ["/submit", "/submit-stream"])
async def test_the_streaming_endpoints_refuse_bad_options_too(
    api: httpx.AsyncClient, repo: SqliteRepository, alice: Account, endpoint: str
) -> None:
    response = await api.post(
        endpoint,
        headers=alice.headers,
        files=zip_upload(project_zip()),
        data={"env": '{"CI": "x"}'},
    )
    assert response.status_code == 422
    assert "reserved" in response.json()["detail"]
    assert await repo.list_jobs() == []


async def test_without_a_key_bad_options_are_still_401(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/submit-async", files=zip_upload(project_zip()), data={"env": "not json"}
    )
    assert response.status_code == 401


async def test_limits_tell_a_client_what_the_server_accepts(
    api: httpx.AsyncClient, alice: Account
) -> None:
    response = await api.get("/limits", headers=alice.headers)
    assert response.status_code == 200
    assert response.json() == {
        "max_upload_bytes": 1024 * 1024,  # the fixture's CI_MAX_UPLOAD_MB=1
        "max_unpacked_bytes": 2 * 1024 * 1024,
        "max_upload_entries": 50,
        "max_pytest_args": 256,
        "max_pytest_arg_bytes": 4096,
        "max_pytest_args_bytes": 32 * 1024,
        "max_env_vars": 100,
        "max_env_value_bytes": 32 * 1024,
        "max_env_bytes": 64 * 1024,
        "env_name_pattern": "[A-Za-z_][A-Za-z0-9_]*",
        "reserved_env_names": ["CI", "CI_JOB_ID", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"],
    }
    assert (await api.get("/limits")).status_code == 401


async def test_jobs_can_be_listed_by_project(
    api: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    async def submit(account: Account, project: str | None) -> str:
        data = {"project": project} if project else {}
        response = await api.post(
            "/submit-async", headers=account.headers, files=zip_upload(project_zip()), data=data
        )
        return str(response.json()["job_id"])

    first, _, third = [await submit(alice, name) for name in ("alpha", "beta", "alpha")]
    await submit(alice, None)
    await submit(bob, "alpha")

    listed = await api.get("/jobs", params={"project": "alpha"}, headers=alice.headers)
    assert [job["id"] for job in listed.json()] == [third, first]
    everything = await api.get("/jobs", headers=alice.headers)
    assert [job["project"] for job in everything.json()] == [None, "alpha", "beta", "alpha"]

"""`GET /runtimes` lists what the controller published, and a submit gets its Python there:
the version asked for (a 422 listing those there are when nobody offers it), else the newest
satisfying requires-python, else the default."""

from __future__ import annotations

import httpx
import pytest

from ci_common.python_versions import PythonRuntime
from ci_persistence import SqliteRepository

from .conftest import Account, project_zip, zip_upload

PY311 = PythonRuntime(version="3.11", python="3.11.2", image="ci-python:3.11", default=True)
PY313 = PythonRuntime(version="3.13", python="3.13.5", image="ci-python:3.13")


def pyproject(requires: str) -> dict[str, bytes]:
    return {"pyproject.toml": f'[project]\nname = "p"\nrequires-python = "{requires}"\n'.encode()}


async def submitted_python(
    api: httpx.AsyncClient,
    account: Account,
    *,
    data: dict[str, str] | None = None,
    extra: dict[str, bytes] | None = None,
) -> object:
    response = await api.post(
        "/submit-async",
        headers=account.headers,
        files=zip_upload(project_zip(extra)),
        data=data or {},
    )
    assert response.status_code == 202, response.text
    job = await api.get(f"/jobs/{response.json()['job_id']}", headers=account.headers)
    return job.json()["python"]


async def test_runtimes_lists_the_published_versions(
    api: httpx.AsyncClient, repo: SqliteRepository, alice: Account
) -> None:
    assert (await api.get("/runtimes", headers=alice.headers)).json() == []
    await repo.publish_runtimes([PY311, PY313])
    response = await api.get("/runtimes", headers=alice.headers)
    assert response.json() == [
        {"version": "3.11", "python": "3.11.2", "image": "ci-python:3.11", "default": True},
        {"version": "3.13", "python": "3.13.5", "image": "ci-python:3.13", "default": False},
    ]
    assert (await api.get("/runtimes")).status_code == 401


async def test_a_submit_gets_the_asked_the_required_or_the_default_python(
    api: httpx.AsyncClient, repo: SqliteRepository, alice: Account
) -> None:
    await repo.publish_runtimes([PY311, PY313])
    assert await submitted_python(api, alice, data={"python": "3.13"}) == "3.13"
    assert await submitted_python(api, alice, extra=pyproject(">=3.12")) == "3.13"
    assert await submitted_python(api, alice, extra=pyproject(">=3.8,<3.13")) == "3.11"
    assert await submitted_python(api, alice, extra=pyproject(">=3.14")) == "3.11"
    assert await submitted_python(api, alice) == "3.11"
    explicit = {"python": "3.11"}
    assert await submitted_python(api, alice, data=explicit, extra=pyproject(">=3.12")) == "3.11"


async def test_before_any_controller_published_a_job_gets_the_controllers_default(
    api: httpx.AsyncClient, alice: Account
) -> None:
    assert await submitted_python(api, alice, extra=pyproject(">=3.12")) is None


@pytest.mark.parametrize(
    ("data", "extra", "detail"),
    [
        (
            {"python": "3.12"},
            None,
            "Python 3.12 is not offered here; the versions there are: 3.11, 3.13",
        ),
        ({"python": "three"}, None, "python must be a version like 3.13"),
        ({}, {"pyproject.toml": b'[project]\nrequires-python = ">=x"\n'}, "requires-python"),
    ],
)
async def test_a_version_nobody_offers_is_refused_with_those_there_are(
    api: httpx.AsyncClient,
    repo: SqliteRepository,
    alice: Account,
    data: dict[str, str],
    extra: dict[str, bytes] | None,
    detail: str,
) -> None:
    await repo.publish_runtimes([PY311, PY313])
    response = await api.post(
        "/submit-async", headers=alice.headers, files=zip_upload(project_zip(extra)), data=data
    )
    assert response.status_code == 422
    assert detail in response.json()["detail"]
    assert await repo.list_jobs() == []

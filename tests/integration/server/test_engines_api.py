"""`GET /engines` (admins only) and the engine a job ran on, in its JSON."""

from __future__ import annotations

import httpx
import pytest

from ci_common.models import JobId
from ci_common.repository import Repository

from .conftest import Account, project_zip


async def submitted(repo: Repository, account: Account) -> JobId:
    job = await repo.create_job(user_id=account.user.id, archive=project_zip())
    return job.id


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_engines_list_capacity_and_running_jobs_to_admins_only(
    api: httpx.AsyncClient, repo: Repository, alice: Account, bob: Account
) -> None:
    await repo.record_engine("default", capacity=2)
    await repo.record_engine("second", capacity=3)
    job_id = await submitted(repo, bob)
    assert await repo.mark_running(job_id, container_id=None, engine="second")
    assert not await repo.mark_running(job_id, container_id=None, engine="default")  # once

    refused = await api.get("/engines", headers={"Authorization": f"Bearer {bob.key}"})
    assert refused.status_code == 403
    assert "admin" in refused.json()["detail"]

    await repo.set_user_admin(alice.user.id, is_admin=True)
    listed = await api.get("/engines", headers={"Authorization": f"Bearer {alice.key}"})
    assert listed.status_code == 200
    engines = {e["name"]: e for e in listed.json()}
    assert (engines["default"]["capacity"], engines["default"]["running"]) == (2, 0)
    assert (engines["second"]["capacity"], engines["second"]["running"]) == (3, 1)
    assert engines["second"]["alive"] is True

    job = await api.get(f"/jobs/{job_id}", headers={"Authorization": f"Bearer {bob.key}"})
    assert job.json()["engine"] == "second"

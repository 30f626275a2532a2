"""`GET /metrics` on the server: the queue read from the database (so replicas agree), this
process's followers and cancels, and `CI_METRICS_TOKEN`."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from metrics_text import sample
from pydantic import SecretStr

from ci_common.models import JobConclusion
from ci_common.repository import Repository
from ci_server import ServerSettings, create_app

from .conftest import Account, hub_of

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


async def scrape(api: httpx.AsyncClient, **headers: str) -> str:
    response = await api.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


async def test_two_replicas_report_the_same_queue_from_the_database(
    settings: ServerSettings, repo: Repository, alice: Account
) -> None:
    first = await repo.create_job(user_id=alice.user.id, archive=b"1")
    second = await repo.create_job(user_id=alice.user.id, archive=b"2")
    await repo.mark_running(first.id, container_id=None)
    await repo.append_log(first.id, "x" * 1000, cursor=None)
    replicas = [create_app(settings), create_app(settings)]  # registries of their own

    for app in replicas:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            ) as api,
        ):
            text = await scrape(api)
        assert sample(text, "ci_jobs_queued") == 1
        assert sample(text, "ci_jobs_running") == 1
        assert sample(text, "ci_log_bytes_stored") == 1000
        assert sample(text, "ci_oldest_queued_job_age_seconds") > 0
        assert sample(text, "ci_repository_errors_total") == 0
    await repo.complete_job(second.id, conclusion=JobConclusion.CANCELLED)


async def test_followers_of_this_process_are_counted(
    app: FastAPI, api: httpx.AsyncClient, repo: Repository, alice: Account
) -> None:
    job = await repo.create_job(user_id=alice.user.id, archive=b"1")
    assert sample(await scrape(api), "ci_sse_followers") == 0
    async with hub_of(app).follow(job), hub_of(app).follow(job):
        assert sample(await scrape(api), "ci_sse_followers") == 2
    assert sample(await scrape(api), "ci_sse_followers") == 0


async def test_a_queued_job_cancelled_here_is_counted_as_finished(
    api: httpx.AsyncClient, repo: Repository, alice: Account
) -> None:
    queued = await repo.create_job(user_id=alice.user.id, archive=b"1")
    running = await repo.create_job(user_id=alice.user.id, archive=b"2")
    await repo.mark_running(running.id, container_id=None)

    for job in (queued, queued, running):  # again: idempotent; running: the controller's
        response = await api.post(f"/jobs/{job.id}/cancel", headers=alice.headers)
        assert response.status_code == 200

    text = await scrape(api)
    assert sample(text, "ci_jobs_finished_total", conclusion="cancelled") == 1
    assert sample(text, "ci_jobs_queued") == 0


async def test_with_a_token_set_metrics_need_it(settings: ServerSettings, alice: Account) -> None:
    app = create_app(settings.model_copy(update={"metrics_token": SecretStr("s3cret")}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        for headers in ({}, {"Authorization": "Bearer wrong"}, alice.headers):
            refused = await api.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            assert "CI_METRICS_TOKEN" in refused.json()["detail"]
        text = await scrape(api, Authorization="Bearer s3cret")
    assert sample(text, "ci_jobs_queued") == 0


async def test_without_a_token_metrics_are_open(api: httpx.AsyncClient) -> None:
    assert sample(await scrape(api), "ci_jobs_running") == 0
